//! Flags become settings: every subcommand ends up with one [`Config`], built from the
//! built-in defaults, the board profile and config file (`run`), then the flags; the pipeline
//! is always made from `Config::model` by `door::pipeline`.

use std::path::PathBuf;

use clap::Args;
use maskgate::config::Config;
use maskgate::error::InvalidSetting;
use maskgate::models;

/// The model flags of `image`, `video` and `serve` (`run` takes its model from the config).
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Folder holding the shipped models (default: searched next to the binary, then ./models/quantized).
    #[arg(long, env = "MASKGATE_MODELS")]
    models_dir: Option<PathBuf>,
    /// Detector model input size, WIDTHxHEIGHT (a shipped size: 640x480 or 320x240).
    #[arg(long, default_value = "640x480", value_parser = models::parse_size)]
    input_size: (u32, u32),
    /// Detector model file (overrides --input-size).
    #[arg(long)]
    detector: Option<PathBuf>,
    /// Classifier model file.
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Inference threads (default: CPU cores, at most 4).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Minimum face probability. 0.7: the lowest score at which the fine-tuned detector makes no
    /// more false positives than the official weights did at 0.7 (models/README.md trade-off).
    #[arg(long, default_value_t = 0.7)]
    score_threshold: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.4)]
    nms_iou: f32,
    /// P(mask) at or above which a face counts as masked.
    #[arg(long, default_value_t = 0.5)]
    mask_threshold: f32,
}

/// CPU cores, at most 4: the default inference threads of `image`, `video` and `serve`.
pub fn auto_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

impl ModelArgs {
    /// The defaults with these flags over `[model]`; `threads` unset = [`auto_threads`].
    /// Checked like a config file ([`Config::validate`]): an out-of-range flag is refused.
    pub fn settings(&self) -> Result<Config, InvalidSetting> {
        let mut cfg = Config::default();
        let m = &mut cfg.model;
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        m.models_dir = path(&self.models_dir).unwrap_or_default();
        m.detector = path(&self.detector).unwrap_or_default();
        m.classifier = path(&self.classifier).unwrap_or_default();
        m.input_size = format!("{}x{}", self.input_size.0, self.input_size.1);
        m.threads = self.threads.unwrap_or_else(auto_threads);
        m.score_threshold = self.score_threshold;
        m.nms_iou = self.nms_iou;
        m.mask_threshold = self.mask_threshold;
        cfg.validate()?;
        Ok(cfg)
    }
}
