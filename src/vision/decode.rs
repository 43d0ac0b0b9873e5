//! RetinaFace outputs → faces: score threshold, variance decoding of boxes and five landmarks,
//! greedy NMS, and mapping from model-input pixels back to original-image pixels.
//! Fixed-capacity collections only: decoding a frame allocates nothing.

use heapless::Vec as HVec;

use super::priors::{Prior, PriorConfig};
use super::{BBox, Detection, MAX_FACES};
use crate::quant::OutputView;

/// Candidates kept before NMS. A crowded frame at a low threshold can exceed this; the
/// highest-scoring candidates are kept, so NMS still sees every strong face.
pub const MAX_CANDIDATES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeParams {
    /// Minimum face probability.
    pub score_threshold: f32,
    /// Boxes overlapping a better one by more than this IoU are dropped.
    pub nms_iou: f32,
    /// Model input size in pixels.
    pub input_w: u32,
    pub input_h: u32,
    /// Letterbox factor (input pixels per original pixel); the image sits at the top-left.
    pub scale: f32,
    /// Original image size, for clamping.
    pub orig_w: u32,
    pub orig_h: u32,
}

/// Reusable buffers for [`decode`].
#[derive(Default)]
pub struct DecodeScratch {
    candidates: HVec<Detection, MAX_CANDIDATES>,
}

/// The three RetinaFace outputs of one frame.
#[derive(Clone, Copy, Debug)]
pub struct RawOutputs<'a> {
    /// `[N,4]` box regressions.
    pub loc: OutputView<'a>,
    /// `[N,2]` softmax, index 1 = face.
    pub conf: OutputView<'a>,
    /// `[N,10]` landmark regressions.
    pub landm: OutputView<'a>,
}

/// Decodes one frame's raw outputs into `out` (cleared first), best score first.
pub fn decode(
    cfg: &PriorConfig,
    priors: &[Prior],
    raw: RawOutputs,
    p: &DecodeParams,
    scratch: &mut DecodeScratch,
    out: &mut HVec<Detection, MAX_FACES>,
) {
    out.clear();
    let RawOutputs { loc, conf, landm } = raw;
    let cands = &mut scratch.candidates;
    cands.clear();
    let [v0, v1] = cfg.variances;
    let (iw, ih) = (p.input_w as f32, p.input_h as f32);
    let (max_x, max_y) = (p.orig_w as f32, p.orig_h as f32);
    for (i, pr) in priors.iter().enumerate() {
        let score = conf.get(i * 2 + 1);
        if score < p.score_threshold {
            continue;
        }
        let cx = pr.cx + loc.get(i * 4) * v0 * pr.w;
        let cy = pr.cy + loc.get(i * 4 + 1) * v0 * pr.h;
        let w = pr.w * (loc.get(i * 4 + 2) * v1).exp();
        let h = pr.h * (loc.get(i * 4 + 3) * v1).exp();
        let to_x = |v: f32| (v * iw / p.scale).clamp(0.0, max_x);
        let to_y = |v: f32| (v * ih / p.scale).clamp(0.0, max_y);
        let bbox = BBox {
            x1: to_x(cx - w / 2.0),
            y1: to_y(cy - h / 2.0),
            x2: to_x(cx + w / 2.0),
            y2: to_y(cy + h / 2.0),
        };
        let mut landmarks = [[0.0f32; 2]; 5];
        for (k, lm) in landmarks.iter_mut().enumerate() {
            lm[0] = (pr.cx + landm.get(i * 10 + 2 * k) * v0 * pr.w) * iw / p.scale;
            lm[1] = (pr.cy + landm.get(i * 10 + 2 * k + 1) * v0 * pr.h) * ih / p.scale;
        }
        push_bounded(
            cands,
            Detection {
                bbox,
                score,
                landmarks,
            },
        );
    }
    nms(cands, p.nms_iou, out);
}

/// Inserts `d`, or when full replaces the weakest candidate if `d` beats it.
fn push_bounded<const N: usize>(v: &mut HVec<Detection, N>, d: Detection) {
    if let Err(d) = v.push(d) {
        let (imin, min) = v
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.score.total_cmp(&b.1.score))
            .map(|(i, c)| (i, c.score))
            .expect("capacity > 0");
        if d.score > min {
            v[imin] = d;
        }
    }
}

/// Greedy non-maximum suppression: sorts `cands` by score (descending; ties by box position, so
/// the order is total and the result deterministic), then keeps each box that overlaps no kept
/// box by more than `iou`. The sort is in place: a stable sort allocates scratch space once
/// more than ~68 candidates pass the threshold, which a close face at 320x240 can do.
pub fn nms<const N: usize, const M: usize>(
    cands: &mut HVec<Detection, N>,
    iou: f32,
    out: &mut HVec<Detection, M>,
) {
    out.clear();
    cands.sort_unstable_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.bbox.y1.total_cmp(&b.bbox.y1))
            .then(a.bbox.x1.total_cmp(&b.bbox.x1))
            .then(a.bbox.y2.total_cmp(&b.bbox.y2))
            .then(a.bbox.x2.total_cmp(&b.bbox.x2))
    });
    for c in cands.iter() {
        if out.iter().all(|k| k.bbox.iou(&c.bbox) <= iou) && out.push(*c).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::QParams;
    use crate::vision::priors::MNET025;

    fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox { x1, y1, x2, y2 },
            score,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn iou_by_hand() {
        let a = BBox {
            x1: 0.0,
            y1: 0.0,
            x2: 10.0,
            y2: 10.0,
        };
        let b = BBox {
            x1: 5.0,
            y1: 0.0,
            x2: 15.0,
            y2: 10.0,
        };
        assert_eq!(a.iou(&b), 50.0 / 150.0);
        assert_eq!(a.iou(&a), 1.0);
        let c = BBox {
            x1: 20.0,
            y1: 20.0,
            x2: 30.0,
            y2: 30.0,
        };
        assert_eq!(a.iou(&c), 0.0);
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_disjoint() {
        let mut c: HVec<Detection, 8> = HVec::new();
        c.push(det(0.0, 0.0, 10.0, 10.0, 0.8)).unwrap();
        c.push(det(1.0, 0.0, 11.0, 10.0, 0.9)).unwrap(); // IoU 9/11 with the first
        c.push(det(5.0, 0.0, 15.0, 10.0, 0.7)).unwrap(); // IoU 1/3 with the first, 6/14 with second
        c.push(det(50.0, 50.0, 60.0, 60.0, 0.6)).unwrap();
        let mut out: HVec<Detection, 8> = HVec::new();
        nms(&mut c, 0.4, &mut out);
        let scores: Vec<f32> = out.iter().map(|d| d.score).collect();
        // 0.9 kept; 0.8 suppressed (0.818 > 0.4); 0.7 vs 0.9: 6/14 = 0.4286 > 0.4 suppressed; 0.6 kept
        assert_eq!(scores, vec![0.9, 0.6]);
        nms(&mut c, 0.5, &mut out);
        let scores: Vec<f32> = out.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.7, 0.6]);
    }

    #[test]
    fn nms_output_capacity_is_respected() {
        let mut c: HVec<Detection, 8> = HVec::new();
        for i in 0..5 {
            c.push(det(
                i as f32 * 20.0,
                0.0,
                i as f32 * 20.0 + 10.0,
                10.0,
                0.5 + i as f32 * 0.1,
            ))
            .unwrap();
        }
        let mut out: HVec<Detection, 2> = HVec::new();
        nms(&mut c, 0.4, &mut out);
        assert_eq!(out.len(), 2);
        assert!((out[0].score - 0.9).abs() < 1e-6 && (out[1].score - 0.8).abs() < 1e-6);
    }

    #[test]
    fn bounded_push_keeps_the_strongest() {
        let mut v: HVec<Detection, 2> = HVec::new();
        push_bounded(&mut v, det(0.0, 0.0, 1.0, 1.0, 0.5));
        push_bounded(&mut v, det(0.0, 0.0, 1.0, 1.0, 0.7));
        push_bounded(&mut v, det(0.0, 0.0, 1.0, 1.0, 0.6)); // replaces 0.5
        push_bounded(&mut v, det(0.0, 0.0, 1.0, 1.0, 0.1)); // ignored
        let mut s: Vec<f32> = v.iter().map(|d| d.score).collect();
        s.sort_by(f32::total_cmp);
        assert_eq!(s, vec![0.6, 0.7]);
    }

    /// One prior with hand-picked regression values: the decoded box and landmarks are
    /// computed here by hand from the RetinaFace formulas.
    #[test]
    fn decodes_one_prior_by_hand() {
        let cfg = MNET025;
        let priors = [Prior {
            cx: 0.5,
            cy: 0.5,
            w: 0.1,
            h: 0.2,
        }];
        // loc: dx=1, dy=-2, dw=0, dh=ln(2)/0.2 -> h doubles
        let loc = [1.0f32, -2.0, 0.0, std::f32::consts::LN_2 / 0.2];
        let conf = [0.1f32, 0.9];
        let landm = [0.0f32, 0.0, 1.0, 1.0, -1.0, 0.0, 0.0, 2.0, 10.0, -10.0];
        let p = DecodeParams {
            score_threshold: 0.5,
            nms_iou: 0.4,
            input_w: 200,
            input_h: 100,
            scale: 0.5, // original image is 400x200
            orig_w: 400,
            orig_h: 200,
        };
        let mut scratch = DecodeScratch::default();
        let mut out = HVec::new();
        let raw = RawOutputs {
            loc: OutputView::F32(&loc),
            conf: OutputView::F32(&conf),
            landm: OutputView::F32(&landm),
        };
        decode(&cfg, &priors, raw, &p, &mut scratch, &mut out);
        assert_eq!(out.len(), 1);
        let d = out[0];
        // cx = 0.5 + 1*0.1*0.1 = 0.51; cy = 0.5 - 2*0.1*0.2 = 0.46; w = 0.1; h = 0.4
        // x1 = (0.51-0.05)*200/0.5 = 184; x2 = 224; y1 = (0.46-0.2)*100/0.5 = 52; y2 = 132
        let close = |a: f32, b: f32| (a - b).abs() < 1e-3;
        assert!(
            close(d.bbox.x1, 184.0) && close(d.bbox.x2, 224.0),
            "{:?}",
            d.bbox
        );
        assert!(
            close(d.bbox.y1, 52.0) && close(d.bbox.y2, 132.0),
            "{:?}",
            d.bbox
        );
        assert_eq!(d.score, 0.9);
        // landmark 1: (0.5 + 1*0.1*0.1, 0.5 + 1*0.1*0.2) -> (0.51*400, 0.52*200) = (204, 104)
        assert!(close(d.landmarks[0][0], 200.0) && close(d.landmarks[0][1], 100.0));
        assert!(close(d.landmarks[1][0], 204.0) && close(d.landmarks[1][1], 104.0));
        assert!(close(d.landmarks[4][0], (0.5 + 10.0 * 0.01) * 400.0));
        assert!(close(d.landmarks[4][1], (0.5 - 10.0 * 0.02) * 200.0));
    }

    #[test]
    fn threshold_and_clamping_and_int8_outputs() {
        let cfg = MNET025;
        let priors = [
            Prior {
                cx: 0.0,
                cy: 0.0,
                w: 0.5,
                h: 0.5,
            },
            Prior {
                cx: 0.5,
                cy: 0.5,
                w: 0.1,
                h: 0.1,
            },
        ];
        let loc = [0i8; 8];
        // softmax quantization: scale 1/256, zp -128; face prob of prior 0 = 200/256, prior 1 = 64/256
        let conf = [0i8, 72, 0, -64];
        let q = QParams {
            scale: 1.0 / 256.0,
            zero_point: -128,
        };
        let landm = [0i8; 20];
        let lq = QParams {
            scale: 0.1,
            zero_point: 0,
        };
        let p = DecodeParams {
            score_threshold: 0.5,
            nms_iou: 0.4,
            input_w: 100,
            input_h: 100,
            scale: 1.0,
            orig_w: 100,
            orig_h: 100,
        };
        let mut scratch = DecodeScratch::default();
        let mut out = HVec::new();
        let raw = RawOutputs {
            loc: OutputView::I8(&loc, lq),
            conf: OutputView::I8(&conf, q),
            landm: OutputView::I8(&landm, lq),
        };
        decode(&cfg, &priors, raw, &p, &mut scratch, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].score, 200.0 / 256.0);
        // box centred at (0,0) with size 50: clamped to the image -> (0,0)-(25,25)
        assert_eq!(
            out[0].bbox,
            BBox {
                x1: 0.0,
                y1: 0.0,
                x2: 25.0,
                y2: 25.0
            }
        );
    }
}
