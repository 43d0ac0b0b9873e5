//! One file per subcommand; [`settings`] turns flags into the one `Config` they all use.

pub mod image;
pub mod run;
pub mod serve;
pub mod settings;
pub mod video;

use std::io::IsTerminal;

/// Log lines on stderr for every subcommand, filtered by `MASKGATE_LOG` (default "info").
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MASKGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // under systemd journald stamps every line itself; colours only on a terminal
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        b.without_time().with_ansi(false).init();
    } else {
        b.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
