//! The int8 ResNet mask classifier: one square face crop in, P(mask) out.

use std::path::Path;

use super::crop::{Cropper, CROP_MARGIN};
use super::{BBox, ImageView};
use crate::engine::{DType, Engine, EngineError};

/// Output index of the "mask" class; index 0 is "no mask" (which includes masks worn under the
/// nose or on the chin: see models/README.md).
pub const MASK_CLASS: usize = 1;

pub struct Classifier {
    engine: Engine,
    lut: [i8; 256],
    cropper: Cropper,
    pub size: u32,
}

impl Classifier {
    pub fn load(path: &Path, threads: usize) -> Result<Self, EngineError> {
        Self::new(Engine::load(path, threads)?)
    }

    /// Accepts an engine with an int8 `[1,S,S,3]` input and a `[1,2]` probability output.
    pub fn new(engine: Engine) -> Result<Self, EngineError> {
        let ins = engine.inputs();
        let ok_in = ins.len() == 1
            && ins[0].dtype == DType::Int8
            && matches!(ins[0].shape.as_slice(), [1, h, w, 3] if h == w);
        let outs = engine.outputs();
        let ok_out = outs.len() == 1
            && outs[0].shape == [1, 2]
            && matches!(outs[0].dtype, DType::Int8 | DType::Float32);
        if outs.len() == 3
            && outs
                .iter()
                .any(|t| matches!(t.shape.as_slice(), [1, _, 10]))
        {
            return Err(engine.mismatch(
                "this is a RetinaFace detector (box, score and landmark outputs), not the mask \
                 classifier: the two model files are swapped",
            ));
        }
        if !ok_in || !ok_out {
            return Err(engine.mismatch(format!(
                "expected int8 input [1,S,S,3] and output [1,2] (a mask classifier), found inputs {:?} outputs {:?}",
                ins.iter().map(|t| (&t.shape, t.dtype)).collect::<Vec<_>>(),
                outs.iter().map(|t| (&t.shape, t.dtype)).collect::<Vec<_>>()
            )));
        }
        let quant = ins[0]
            .quant
            .ok_or_else(|| engine.mismatch("input has no quantization parameters"))?;
        let size = ins[0].shape[1] as u32;
        Ok(Self {
            lut: quant.pixel_lut(),
            cropper: Cropper::new(size),
            size,
            engine,
        })
    }

    /// P(mask) for the face in `bbox`.
    pub fn classify(&mut self, img: ImageView, bbox: &BBox) -> Result<f32, EngineError> {
        let lut = self.lut;
        let dst = self.engine.input_i8(0);
        self.cropper.run(img, bbox, CROP_MARGIN, dst, &lut);
        self.engine.invoke()?;
        let out = self.engine.output(0);
        Ok(out.get(MASK_CLASS))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
