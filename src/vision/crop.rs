//! The classifier's view of a face: a square centred on the detector box, side
//! `max(w, h) * (1 + 2 * margin)`, bilinear-sampled to the model's input size; whatever falls
//! outside the image is black. The classifier was trained on exactly this framing
//! (`tools/pipeline/common.py::crop_square`, with crops made by the same detector).

use super::preprocess::Tap;
use super::{BBox, ImageView};

/// Margin used in training (`CROP_MARGIN` in tools/pipeline/common.py).
pub const CROP_MARGIN: f32 = 0.15;

/// The square region (left, top, side) in original pixels that the classifier sees.
pub fn crop_square(b: &BBox, margin: f32) -> (f32, f32, f32) {
    let side = b.width().max(b.height()) * (1.0 + 2.0 * margin);
    let cx = (b.x1 + b.x2) / 2.0;
    let cy = (b.y1 + b.y2) / 2.0;
    (cx - side / 2.0, cy - side / 2.0, side)
}

/// Reusable cropper for one classifier input size.
pub struct Cropper {
    pub size: u32,
    xs: Vec<(Tap, [bool; 2])>,
    ys: Vec<(Tap, [bool; 2])>,
}

impl Cropper {
    pub fn new(size: u32) -> Self {
        let n = size as usize;
        Self {
            size,
            xs: Vec::with_capacity(n),
            ys: Vec::with_capacity(n),
        }
    }

    /// Taps at pixel centres like the letterbox, but unclamped: a tap outside 0..n is black.
    fn axis(out: &mut Vec<(Tap, [bool; 2])>, size: u32, start: f32, scale: f32, n: u32) {
        out.clear();
        for d in 0..size {
            let x = (d as f32 + 0.5) / scale - 0.5 + start;
            let i0 = x.floor();
            let f = x - i0;
            let (a, b) = (i0 as i64, i0 as i64 + 1);
            let ok = |i: i64| i >= 0 && i < n as i64;
            let cl = |i: i64| i.clamp(0, n as i64 - 1) as u32;
            out.push((
                Tap {
                    i0: cl(a),
                    i1: cl(b),
                    f,
                },
                [ok(a), ok(b)],
            ));
        }
    }

    /// Writes the crop of `b` from `src` into `dst` (`size * size * 3` int8, RGB) via `lut`.
    pub fn run(&mut self, src: ImageView, b: &BBox, margin: f32, dst: &mut [i8], lut: &[i8; 256]) {
        let n = self.size as usize;
        assert_eq!(dst.len(), n * n * 3, "classifier input size");
        let (left, top, side) = crop_square(b, margin);
        let scale = self.size as f32 / side.max(1e-3);
        Self::axis(&mut self.xs, self.size, left, scale, src.width);
        Self::axis(&mut self.ys, self.size, top, scale, src.height);
        for (row, (ty, vy)) in dst.chunks_exact_mut(n * 3).zip(self.ys.iter()) {
            for (px, (tx, vx)) in row.chunks_exact_mut(3).zip(self.xs.iter()) {
                let tap = |y: u32, x: u32, ok: bool| {
                    if ok {
                        src.px(x as usize, y as usize)
                    } else {
                        [0; 3]
                    }
                };
                let p00 = tap(ty.i0, tx.i0, vy[0] && vx[0]);
                let p01 = tap(ty.i0, tx.i1, vy[0] && vx[1]);
                let p10 = tap(ty.i1, tx.i0, vy[1] && vx[0]);
                let p11 = tap(ty.i1, tx.i1, vy[1] && vx[1]);
                for c in 0..3 {
                    let t = p00[c] as f32 * (1.0 - tx.f) + p01[c] as f32 * tx.f;
                    let u = p10[c] as f32 * (1.0 - tx.f) + p11[c] as f32 * tx.f;
                    let v = (t * (1.0 - ty.f) + u * ty.f + 0.5) as usize;
                    px[c] = lut[v.min(255)];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::QParams;

    #[test]
    fn square_by_hand() {
        let b = BBox {
            x1: 10.0,
            y1: 20.0,
            x2: 30.0,
            y2: 60.0,
        }; // 20 x 40, centre (20, 40)
        let (l, t, s) = crop_square(&b, 0.25); // side 40 * 1.5 = 60
        assert_eq!((l, t, s), (-10.0, 10.0, 60.0));
    }

    #[test]
    fn crop_samples_inside_and_blackens_outside() {
        // 4x4 image, red = 20 + 10x + 50y
        let mut data = vec![0u8; 4 * 4 * 3];
        for y in 0..4 {
            for x in 0..4 {
                data[(y * 4 + x) * 3] = (20 + 10 * x + 50 * y) as u8;
            }
        }
        let src = ImageView::new(&data, 4, 4).unwrap();
        let lut = QParams {
            scale: 1.0,
            zero_point: -128,
        }
        .pixel_lut();
        let red = |dst: &[i8]| {
            dst.chunks(3)
                .map(|p| (p[0] as i32 + 128) as u8)
                .collect::<Vec<u8>>()
        };
        let mut c = Cropper::new(2);
        let mut dst = vec![0i8; 12];
        let b = BBox {
            x1: 0.0,
            y1: 0.0,
            x2: 4.0,
            y2: 4.0,
        };
        // No margin: side 4, samples at 0.5 and 2.5 on each axis -> 2x2 block means.
        c.run(src, &b, 0.0, &mut dst, &lut);
        assert_eq!(red(&dst), vec![50, 70, 150, 170]);
        // Margin 0.5: side 8 from -2, samples at -0.5 and 3.5: one tap of four inside each time.
        // (0,0)=20 -> 5; (3,0)=50 -> 12.5 -> 13; (0,3)=170 -> 42.5 -> 43; (3,3)=200 -> 50
        c.run(src, &b, 0.5, &mut dst, &lut);
        assert_eq!(red(&dst), vec![5, 13, 43, 50]);
    }
}
