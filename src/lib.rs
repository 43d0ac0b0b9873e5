//! maskgate: finds faces with an int8 RetinaFace, asks an int8 ResNet "mask or no mask", and
//! reports it. The modules follow the data flow:
//! `source` → `vision` (detect, classify) → `kiosk::decide` → `signal` (LEDs, buzzer, OLED).
//!
//! * [`source`]   — frames from a V4L2 camera, a directory or an image.
//! * [`engine`]   — TFLite interpreter wrapper: load, validate tensors, quantization, invoke.
//! * [`vision`]   — pure geometry (priors, decode, NMS, crop, preprocess) and the two models.
//! * [`report`]   — the JSON shape the CLI and the HTTP API print.
//! * [`models`]   — where the shipped models are found at run time.
//! * [`voc`]      — Pascal VOC annotations, for measuring on labelled scene sets.
//! * [`kiosk`]    — the door: per-person decision and the frame loop.
//! * [`signal`]   — LEDs, buzzer and SSD1306 behind embedded-hal traits, with test doubles.
//! * [`serve`]    — the HTTP API (detect, classify, verdict, health, metrics).
//! * [`config`]   — TOML configuration and board profiles.
//! * [`clock`]    — real or simulated time.

pub mod clock;
pub mod config;
pub mod engine;
pub mod kiosk;
pub mod models;
pub mod report;
pub mod serve;
pub mod signal;
pub mod source;
pub mod vision;
pub mod voc;

pub use vision::pipeline::{FrameResult, Pipeline, PipelineConfig};
pub use vision::{BBox, Detection, Face, ImageView};
