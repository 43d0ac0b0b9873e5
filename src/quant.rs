//! Affine int8 quantization maths: `real = scale * (q - zero_point)`.
//! Parameters always come from the model's tensors, never from copies in the code.

/// Quantization parameters of one int8 tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl QParams {
    /// Nearest int8 for a real value (round half away from zero, saturating).
    #[inline]
    pub fn quantize(&self, v: f32) -> i8 {
        let q = (v / self.scale).round() as i32 + self.zero_point;
        q.clamp(-128, 127) as i8
    }

    #[inline]
    pub fn dequantize(&self, q: i8) -> f32 {
        self.scale * (q as i32 - self.zero_point) as f32
    }

    /// Table from pixel value 0..=255 to the input tensor's int8 code, built once per model:
    /// per-pixel quantization then costs one lookup.
    pub fn pixel_lut(&self) -> [i8; 256] {
        let mut lut = [0i8; 256];
        for (v, q) in lut.iter_mut().enumerate() {
            *q = self.quantize(v as f32);
        }
        lut
    }
}

/// A read-only view of a model output, int8 (dequantized on read) or float.
#[derive(Clone, Copy, Debug)]
pub enum OutputView<'a> {
    I8(&'a [i8], QParams),
    F32(&'a [f32]),
}

impl OutputView<'_> {
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            OutputView::I8(d, q) => q.dequantize(d[i]),
            OutputView::F32(d) => d[i],
        }
    }

    pub fn len(&self) -> usize {
        match self {
            OutputView::I8(d, _) => d.len(),
            OutputView::F32(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_input_with_unit_scale_shifts_by_128() {
        let q = QParams {
            scale: 1.0,
            zero_point: -128,
        };
        let lut = q.pixel_lut();
        assert_eq!(lut[0], -128);
        assert_eq!(lut[128], 0);
        assert_eq!(lut[255], 127);
    }

    #[test]
    fn quantize_rounds_and_saturates() {
        let q = QParams {
            scale: 0.5,
            zero_point: 3,
        };
        assert_eq!(q.quantize(1.0), 5);
        assert_eq!(q.quantize(1.25), 6); // 2.5 rounds away from zero
        assert_eq!(q.quantize(-1.0), 1);
        assert_eq!(q.quantize(1000.0), 127);
        assert_eq!(q.quantize(-1000.0), -128);
        assert_eq!(q.dequantize(5), 1.0);
        assert_eq!(q.dequantize(-128), -65.5);
    }

    #[test]
    fn softmax_output_scale_maps_codes_to_probabilities() {
        // TFLite's int8 softmax output is always scale 1/256, zero point -128.
        let v = [-128i8, 0, 127];
        let out = OutputView::I8(
            &v,
            QParams {
                scale: 1.0 / 256.0,
                zero_point: -128,
            },
        );
        assert_eq!(out.get(0), 0.0);
        assert_eq!(out.get(1), 0.5);
        assert_eq!(out.get(2), 255.0 / 256.0);
        assert_eq!(out.len(), 3);
    }
}
