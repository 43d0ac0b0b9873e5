//! Detector + classifier → classified faces for one frame, with per-stage timing.
//! Owns every buffer it uses: after the first frame, `process` allocates nothing.

use std::path::Path;
use std::time::Instant;

use heapless::Vec as HVec;

use super::classifier::Classifier;
use super::detector::Detector;
use super::{Detection, Face, ImageView, MAX_FACES};
use crate::engine::EngineError;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PipelineConfig {
    /// Minimum face probability (default 0.7: see `maskgate image --help`).
    pub score_threshold: f32,
    /// NMS overlap.
    pub nms_iou: f32,
    /// P(mask) at or above this is "mask".
    pub mask_threshold: f32,
    /// Faces narrower than this (original pixels) are reported but not classified
    /// (`mask_prob` is NaN in memory, `null` in JSON) — too few pixels to judge.
    pub min_classify_px: f32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            score_threshold: 0.7,
            nms_iou: 0.4,
            mask_threshold: 0.5,
            min_classify_px: 0.0,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timing {
    pub detect_ms: f64,
    pub classify_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Default)]
pub struct FrameResult {
    pub faces: HVec<Face, MAX_FACES>,
    pub timing: Timing,
}

pub struct Pipeline {
    pub detector: Detector,
    pub classifier: Classifier,
    pub config: PipelineConfig,
    dets: HVec<Detection, MAX_FACES>,
    result: FrameResult,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Pipeline {
    pub fn new(detector: Detector, classifier: Classifier, config: PipelineConfig) -> Self {
        Self {
            detector,
            classifier,
            config,
            dets: HVec::new(),
            result: FrameResult::default(),
        }
    }

    pub fn load(
        detector: &Path,
        classifier: &Path,
        threads: usize,
        config: PipelineConfig,
    ) -> Result<Self, EngineError> {
        Ok(Self::new(
            Detector::load(detector, threads)?,
            Classifier::load(classifier, threads)?,
            config,
        ))
    }

    /// The result of the last [`Pipeline::process`] call.
    pub fn last(&self) -> &FrameResult {
        &self.result
    }

    /// Finds and classifies every face in `img`. The result lives until the next call.
    pub fn process(&mut self, img: ImageView) -> Result<&FrameResult, EngineError> {
        let t0 = Instant::now();
        let c = self.config;
        self.detector
            .detect(img, c.score_threshold, c.nms_iou, &mut self.dets)?;
        let detect_ms = ms(t0);
        let t1 = Instant::now();
        self.result.faces.clear();
        for d in self.dets.iter() {
            let mask_prob = if d.bbox.width() >= c.min_classify_px {
                self.classifier.classify(img, &d.bbox)?
            } else {
                f32::NAN
            };
            // capacities are equal, so this cannot overflow
            let _ = self.result.faces.push(Face {
                det: *d,
                mask_prob,
                mask: mask_prob >= c.mask_threshold,
            });
        }
        self.result.timing = Timing {
            detect_ms,
            classify_ms: ms(t1),
            total_ms: ms(t0),
        };
        Ok(&self.result)
    }
}
