//! The int8 RetinaFace detector: checks the model against what the decoder expects, letterboxes
//! frames into its input, invokes, and decodes faces.

use std::path::Path;

use heapless::Vec as HVec;

use super::decode::{decode, DecodeParams, DecodeScratch, RawOutputs};
use super::preprocess::{Letterbox, Letterboxer};
use super::priors::{Prior, PriorConfig, MNET025};
use super::{Detection, ImageView, MAX_FACES};
use crate::engine::{DType, Engine, EngineError};

/// Colour of the letterbox padding: the detector's mean pixel (RGB), which the model subtracts
/// first, so padding reads as zero to the network (as in calibration and training).
pub const PAD_RGB: [u8; 3] = [123, 117, 104];

/// A square-input model with one 2-value output: what the classifier is.
fn looks_like_classifier(engine: &Engine) -> bool {
    let (ins, outs) = (engine.inputs(), engine.outputs());
    ins.len() == 1
        && matches!(ins[0].shape.as_slice(), [1, h, w, 3] if h == w)
        && outs.len() == 1
        && outs[0].shape == [1, 2]
}

pub struct Detector {
    engine: Engine,
    cfg: PriorConfig,
    priors: Vec<Prior>,
    lut: [i8; 256],
    letterbox: Letterboxer,
    scratch: DecodeScratch,
    /// Output index of loc [N,4], conf [N,2], landmarks [N,10].
    outs: [usize; 3],
    pub width: u32,
    pub height: u32,
}

impl Detector {
    pub fn load(path: &Path, threads: usize) -> Result<Self, EngineError> {
        Self::new(Engine::load(path, threads)?)
    }

    /// Accepts an engine whose tensors are a RetinaFace: int8 `[1,H,W,3]` in, `[1,N,4]`,
    /// `[1,N,2]`, `[1,N,10]` out with N the prior count for H x W.
    pub fn new(engine: Engine) -> Result<Self, EngineError> {
        if looks_like_classifier(&engine) {
            return Err(engine.mismatch(
                "this is the mask classifier (one [1,2] output), not a RetinaFace detector: \
                 the two model files are swapped",
            ));
        }
        let ins = engine.inputs();
        if ins.len() != 1
            || ins[0].dtype != DType::Int8
            || ins[0].shape.len() != 4
            || ins[0].shape[0] != 1
            || ins[0].shape[3] != 3
        {
            return Err(engine.mismatch(format!(
                "expected one int8 input [1,H,W,3] (a RetinaFace detector), found {:?}",
                ins.iter().map(|t| (&t.shape, t.dtype)).collect::<Vec<_>>()
            )));
        }
        let quant = ins[0]
            .quant
            .ok_or_else(|| engine.mismatch("input has no quantization parameters"))?;
        let (h, w) = (ins[0].shape[1] as u32, ins[0].shape[2] as u32);
        let cfg = MNET025;
        let n = cfg.count(w, h);
        let mut outs = [usize::MAX; 3];
        for (i, t) in engine.outputs().iter().enumerate() {
            let slot = match t.shape.as_slice() {
                [1, m, 4] if *m == n => 0,
                [1, m, 2] if *m == n => 1,
                [1, m, 10] if *m == n => 2,
                _ => continue,
            };
            if matches!(t.dtype, DType::Int8 | DType::Float32) {
                outs[slot] = i;
            }
        }
        if outs.contains(&usize::MAX) {
            return Err(engine.mismatch(format!(
                "expected outputs [1,{n},4], [1,{n},2], [1,{n},10] (int8 or float) for a {w}x{h} RetinaFace, found {:?}",
                engine.outputs().iter().map(|t| (&t.shape, t.dtype)).collect::<Vec<_>>()
            )));
        }
        Ok(Self {
            priors: cfg.generate(w, h),
            cfg,
            lut: quant.pixel_lut(),
            letterbox: Letterboxer::new(w, h),
            scratch: DecodeScratch::default(),
            outs,
            width: w,
            height: h,
            engine,
        })
    }

    /// Letterboxes `img` into the input tensor.
    pub fn preprocess(&mut self, img: ImageView) -> Letterbox {
        let lut = self.lut;
        let dst = self.engine.input_i8(0);
        self.letterbox.run(img, dst, &lut, PAD_RGB)
    }

    pub fn invoke(&mut self) -> Result<(), EngineError> {
        self.engine.invoke()
    }

    /// Decodes the last invoke's outputs into `out`.
    pub fn postprocess(
        &mut self,
        lb: &Letterbox,
        img: ImageView,
        score_threshold: f32,
        nms_iou: f32,
        out: &mut HVec<Detection, MAX_FACES>,
    ) {
        let p = DecodeParams {
            score_threshold,
            nms_iou,
            input_w: self.width,
            input_h: self.height,
            scale: lb.scale,
            orig_w: img.width,
            orig_h: img.height,
        };
        let [l, c, m] = self.outs;
        let raw = RawOutputs {
            loc: self.engine.output(l),
            conf: self.engine.output(c),
            landm: self.engine.output(m),
        };
        decode(&self.cfg, &self.priors, raw, &p, &mut self.scratch, out);
    }

    /// Whole detection of one frame.
    pub fn detect(
        &mut self,
        img: ImageView,
        score_threshold: f32,
        nms_iou: f32,
        out: &mut HVec<Detection, MAX_FACES>,
    ) -> Result<(), EngineError> {
        let lb = self.preprocess(img);
        self.invoke()?;
        self.postprocess(&lb, img, score_threshold, nms_iou, out);
        Ok(())
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
