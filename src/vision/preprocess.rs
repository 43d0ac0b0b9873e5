//! Letterbox resize straight into the detector's quantized input tensor: keep the aspect ratio,
//! put the image at the top-left, fill the rest with the pad colour, bilinear sampling at pixel
//! centres, and quantize each channel through the model's own input parameters (as a LUT).
//! `tools/pipeline/common.py::letterbox` is the same geometry in numpy (float weights; the fixed-point
//! weights here differ from it by at most one pixel level).

use super::ImageView;

/// Bilinear tap: two source indices and the weight of the second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Tap {
    pub i0: u32,
    pub i1: u32,
    pub f: f32,
}

/// Fills `taps` (cleared first) for `dst` output samples over `src` input samples at `scale`,
/// starting at source coordinate `offset`; edge samples clamp. Never grows past `dst`.
pub(crate) fn bilinear_taps(taps: &mut Vec<Tap>, dst: u32, src: u32, scale: f32, offset: f32) {
    taps.clear();
    let max = (src - 1) as f32;
    for d in 0..dst {
        let x = ((d as f32 + 0.5) / scale - 0.5 + offset).clamp(0.0, max);
        let i0 = x.floor();
        taps.push(Tap {
            i0: i0 as u32,
            i1: (i0 as u32 + 1).min(src - 1),
            f: x - i0,
        });
    }
}

impl Letterboxer {
    /// Same-size input (a camera already delivering the model's size): quantize and copy.
    fn copy_unscaled(
        &self,
        src: ImageView,
        dst: &mut [i8],
        lut: &[i8; 256],
        pad: [u8; 3],
        lb: Letterbox,
    ) -> Letterbox {
        let row_bytes = self.dst_w as usize * 3;
        let content = src.width as usize * 3;
        let padq = pad_code(lut, pad);
        for (y, row) in dst.chunks_exact_mut(row_bytes).enumerate() {
            let (c, rest) = row.split_at_mut(content);
            if y < src.height as usize {
                for (d, s) in c.iter_mut().zip(&src.data[y * content..(y + 1) * content]) {
                    *d = lut[*s as usize];
                }
            } else {
                fill(c, padq);
            }
            fill(rest, padq);
        }
        lb
    }
}

/// The pad colour's int8 codes.
fn pad_code(lut: &[i8; 256], pad: [u8; 3]) -> [i8; 3] {
    pad.map(|v| lut[v as usize])
}

/// Fills packed RGB int8 pixels with one colour.
fn fill(px: &mut [i8], code: [i8; 3]) {
    for p in px.chunks_exact_mut(3) {
        p.copy_from_slice(&code);
    }
}

/// A bilinear fraction 0..1 as an 8-bit weight 0..=256.
#[inline]
fn weight8(f: f32) -> u32 {
    (f * 256.0 + 0.5) as u32
}

/// Where the image landed inside the model input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// Input pixels per original pixel.
    pub scale: f32,
    pub content_w: u32,
    pub content_h: u32,
}

/// Geometry of the letterbox for an image of `w` x `h` into `dst_w` x `dst_h`.
pub fn letterbox_geometry(w: u32, h: u32, dst_w: u32, dst_h: u32) -> Letterbox {
    let s = (dst_w as f32 / w as f32).min(dst_h as f32 / h as f32);
    let cw = ((w as f32 * s + 0.5).floor() as u32).clamp(1, dst_w);
    let ch = ((h as f32 * s + 0.5).floor() as u32).clamp(1, dst_h);
    Letterbox {
        scale: s,
        content_w: cw,
        content_h: ch,
    }
}

/// Reusable letterbox resampler for one model input size; its tables are allocated once.
pub struct Letterboxer {
    pub dst_w: u32,
    pub dst_h: u32,
    xs: Vec<Tap>,
    ys: Vec<Tap>,
    /// Per output column: byte offsets of the two source pixels and the 8-bit weight of the second.
    cols: Vec<(usize, usize, u32)>,
}

impl Letterboxer {
    pub fn new(dst_w: u32, dst_h: u32) -> Self {
        Self {
            dst_w,
            dst_h,
            xs: Vec::with_capacity(dst_w as usize),
            ys: Vec::with_capacity(dst_h as usize),
            cols: Vec::with_capacity(dst_w as usize),
        }
    }

    /// Writes `src` into `dst` (`dst_h * dst_w * 3` int8, NHWC, RGB) through `lut`
    /// (pixel value → int8 code); the uncovered area gets `pad` (RGB).
    pub fn run(
        &mut self,
        src: ImageView,
        dst: &mut [i8],
        lut: &[i8; 256],
        pad: [u8; 3],
    ) -> Letterbox {
        let (dw, dh) = (self.dst_w as usize, self.dst_h as usize);
        assert_eq!(dst.len(), dw * dh * 3, "input tensor size");
        let lb = letterbox_geometry(src.width, src.height, self.dst_w, self.dst_h);
        let sx = lb.content_w as f32 / src.width as f32;
        let sy = lb.content_h as f32 / src.height as f32;
        if lb.content_w == src.width && lb.content_h == src.height {
            return self.copy_unscaled(src, dst, lut, pad, lb);
        }
        bilinear_taps(&mut self.xs, lb.content_w, src.width, sx, 0.0);
        bilinear_taps(&mut self.ys, lb.content_h, src.height, sy, 0.0);
        self.cols.clear();
        self.cols.extend(
            self.xs
                .iter()
                .map(|t| (t.i0 as usize * 3, t.i1 as usize * 3, weight8(t.f))),
        );
        let padq = pad_code(lut, pad);
        let stride = src.width as usize * 3;
        for (y, row) in dst.chunks_exact_mut(dw * 3).enumerate() {
            let Some(ty) = self.ys.get(y) else {
                fill(row, padq);
                continue;
            };
            let r0 = &src.data[ty.i0 as usize * stride..][..stride];
            let r1 = &src.data[ty.i1 as usize * stride..][..stride];
            // Fixed point: 8-bit weights per axis, one rounding at the end (16 fractional bits).
            let wy = weight8(ty.f);
            let wy0 = 256 - wy;
            let (content, rest) = row.split_at_mut(lb.content_w as usize * 3);
            for (px, &(a, b, wx)) in content.chunks_exact_mut(3).zip(self.cols.iter()) {
                let wx0 = 256 - wx;
                let (p0, p1, q0, q1) = (&r0[a..a + 3], &r0[b..b + 3], &r1[a..a + 3], &r1[b..b + 3]);
                for c in 0..3 {
                    let top = p0[c] as u32 * wx0 + p1[c] as u32 * wx;
                    let bot = q0[c] as u32 * wx0 + q1[c] as u32 * wx;
                    let v = (top * wy0 + bot * wy + (1 << 15)) >> 16;
                    px[c] = lut[v as usize & 255];
                }
            }
            fill(rest, padq);
        }
        lb
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::QParams;

    const ID: QParams = QParams {
        scale: 1.0,
        zero_point: -128,
    };

    #[test]
    fn geometry_by_hand() {
        assert_eq!(
            letterbox_geometry(1280, 720, 640, 480),
            Letterbox {
                scale: 0.5,
                content_w: 640,
                content_h: 360
            }
        );
        assert_eq!(
            letterbox_geometry(300, 400, 640, 480),
            Letterbox {
                scale: 1.2,
                content_w: 360,
                content_h: 480
            }
        );
        assert_eq!(
            letterbox_geometry(640, 480, 640, 480),
            Letterbox {
                scale: 1.0,
                content_w: 640,
                content_h: 480
            }
        );
    }

    #[test]
    fn identity_size_copies_pixels_exactly() {
        let data: Vec<u8> = (0..4 * 2 * 3).map(|v| (v * 10) as u8).collect();
        let src = ImageView::new(&data, 4, 2).unwrap();
        let mut lb = Letterboxer::new(4, 2);
        let mut dst = vec![0i8; 24];
        let g = lb.run(src, &mut dst, &ID.pixel_lut(), [0, 0, 0]);
        assert_eq!(g.scale, 1.0);
        let back: Vec<u8> = dst.iter().map(|&q| (q as i32 + 128) as u8).collect();
        assert_eq!(back, data);
    }

    #[test]
    fn downscale_by_two_averages_and_pads() {
        // 4x2 -> fits 2x1 inside a 2x2 input; bottom row is padding.
        // Output pixel 0 samples x = (0+0.5)*2-0.5 = 0.5 -> average of columns 0 and 1, row 0.5 ->
        // average of rows 0 and 1.
        let mut data = vec![0u8; 4 * 2 * 3];
        for (i, v) in [10u8, 30, 50, 70].iter().enumerate() {
            data[i * 3] = *v; // red channel of row 0
            data[12 + i * 3] = *v + 100; // row 1
        }
        let src = ImageView::new(&data, 4, 2).unwrap();
        let mut lb = Letterboxer::new(2, 2);
        let mut dst = vec![0i8; 12];
        let g = lb.run(src, &mut dst, &ID.pixel_lut(), [1, 2, 3]);
        assert_eq!((g.content_w, g.content_h), (2, 1));
        let back: Vec<u8> = dst.iter().map(|&q| (q as i32 + 128) as u8).collect();
        // red: (10+30+110+130)/4 = 70, (50+70+150+170)/4 = 110
        assert_eq!(back, vec![70, 0, 0, 110, 0, 0, 1, 2, 3, 1, 2, 3]);
    }
}
