//! Subcommands other than `image` (which lives in main.rs with the shared model flags).

pub mod run;
pub mod serve;
pub mod video;
