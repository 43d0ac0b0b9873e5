//! maskgate: finds faces with an int8 RetinaFace, asks an int8 ResNet "mask or no mask", and
//! tells the person. The modules follow the data flow
//! `source` → `vision` (detect, classify) → `kiosk` (decide) → `indicator` (LEDs, buzzer, OLED)
//! → sinks (`serve`, `publish`, JSON lines), with `door` assembling them from the `config`:
//!
//! * [`source`]    — frames from a V4L2 camera, a video file, a directory or an image.
//! * [`engine`]    — TFLite interpreter wrapper: load, validate tensors, invoke.
//! * [`quant`]     — affine int8 maths shared by the engine and the vision code.
//! * [`vision`]    — pure geometry (priors, decode, NMS, crop, preprocess) and the two models.
//! * [`verdict`]   — what the door announces, shared by kiosk, indicator and serve.
//! * [`kiosk`]     — per-person decision, the frame loop, its events and their sinks.
//! * [`indicator`] — LEDs, buzzer and SSD1306 behind embedded-hal traits, real or simulated.
//! * [`serve`]     — the HTTP API (detect, classify, verdict, health, metrics).
//! * [`publish`]   — the door's events to an MQTT broker and Home Assistant.
//! * [`report`]    — the JSON shape the CLI and the HTTP API print.
//! * [`encode`]    — annotated video out (ffmpeg over a pipe).
//! * [`config`]    — TOML configuration and board profiles; [`models`]: where models are found.
//! * [`door`]      — the kiosk assembled from its config, run and shut down in order.
//! * [`systemd`]   — READY / STATUS / STOPPING and watchdog pings, all in one place.
//! * [`clock`]     — real or simulated time; [`error`]: errors shared by several seams.
//! * [`bounded_read`] — whole-file reads with a size limit, for every file a user names.

pub mod bounded_read;
pub mod clock;
pub mod config;
pub mod door;
pub mod encode;
pub mod engine;
pub mod error;
pub mod indicator;
pub mod kiosk;
pub mod models;
pub mod publish;
pub mod quant;
pub mod report;
pub mod serve;
pub mod source;
pub mod systemd;
pub mod verdict;
pub mod vision;

pub use vision::pipeline::{FrameResult, Pipeline, PipelineConfig};
pub use vision::{BBox, Detection, Face, ImageView};
