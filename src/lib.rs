//! maskgate: finds faces with an int8 RetinaFace, asks an int8 ResNet "mask or no mask", and
//! reports it. The modules follow the data flow: `source` → `vision` (detect, classify) → report.
//!
//! * [`engine`]   — TFLite interpreter wrapper: load, validate tensors, quantization, invoke.
//! * [`vision`]   — pure geometry (priors, decode, NMS, crop, preprocess) and the two models.
//! * [`report`]   — the JSON shape the CLI and the HTTP API print.
//! * [`models`]   — where the shipped models are found at run time.
//! * [`voc`]      — Pascal VOC annotations, for measuring on labelled scene sets.

pub mod engine;
pub mod models;
pub mod report;
pub mod vision;
pub mod voc;

pub use vision::pipeline::{FrameResult, Pipeline, PipelineConfig};
pub use vision::{BBox, Detection, Face, ImageView};
