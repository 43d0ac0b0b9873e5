//! The JSON the CLI prints (one object per image) and the HTTP API returns.

use serde::Serialize;

use crate::vision::pipeline::FrameResult;

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct FaceJson {
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub score: f32,
    pub mask: bool,
    /// `None` (JSON null) when the face was too small to classify.
    pub mask_prob: Option<f32>,
    pub landmarks: [[f32; 2]; 5],
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct TimingJson {
    pub detect: f64,
    pub classify: f64,
    pub total: f64,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ImageReport {
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<FaceJson>,
    pub timing_ms: TimingJson,
}

/// Pixels to 0.1 px, probabilities to 1e-4, milliseconds to 1 µs: enough for any consumer,
/// short enough to read.
fn round_to(v: f32, steps_per_unit: f32) -> f32 {
    (v * steps_per_unit).round() / steps_per_unit
}
fn round_ms(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl ImageReport {
    pub fn new(image: impl Into<String>, width: u32, height: u32, res: &FrameResult) -> Self {
        let faces = res
            .faces
            .iter()
            .map(|f| {
                let b = f.det.bbox;
                FaceJson {
                    bbox: [
                        round_to(b.x1, 10.0),
                        round_to(b.y1, 10.0),
                        round_to(b.x2, 10.0),
                        round_to(b.y2, 10.0),
                    ],
                    score: round_to(f.det.score, 1e4),
                    mask: f.mask,
                    mask_prob: (!f.mask_prob.is_nan()).then(|| round_to(f.mask_prob, 1e4)),
                    landmarks: f
                        .det
                        .landmarks
                        .map(|p| [round_to(p[0], 10.0), round_to(p[1], 10.0)]),
                }
            })
            .collect();
        let t = res.timing;
        Self {
            image: image.into(),
            width,
            height,
            faces,
            timing_ms: TimingJson {
                detect: round_ms(t.detect_ms),
                classify: round_ms(t.classify_ms),
                total: round_ms(t.total_ms),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::{BBox, Detection, Face};

    #[test]
    fn unclassified_faces_have_null_mask_prob() {
        let mut res = FrameResult::default();
        let det = Detection {
            bbox: BBox {
                x1: 0.0,
                y1: 0.0,
                x2: 4.0,
                y2: 4.0,
            },
            score: 0.9,
            landmarks: [[0.0; 2]; 5],
        };
        res.faces
            .push(Face {
                det,
                mask_prob: f32::NAN,
                mask: false,
            })
            .unwrap();
        let j = serde_json::to_value(ImageReport::new("a", 8, 8, &res)).unwrap();
        assert!(j["faces"][0]["mask_prob"].is_null());
        assert_eq!(j["faces"][0]["mask"], false);
    }

    #[test]
    fn json_shape_is_exactly_the_documented_one() {
        let mut res = FrameResult::default();
        res.faces
            .push(Face {
                det: Detection {
                    bbox: BBox {
                        x1: 1.04,
                        y1: 2.0,
                        x2: 30.0,
                        y2: 40.0,
                    },
                    score: 0.98765,
                    landmarks: [[5.0, 6.0]; 5],
                },
                mask_prob: 0.25,
                mask: false,
            })
            .unwrap();
        res.timing.total_ms = 1.23456;
        let j = serde_json::to_string(&ImageReport::new("a.jpg", 64, 48, &res)).unwrap();
        assert_eq!(
            j,
            r#"{"image":"a.jpg","width":64,"height":48,"faces":[{"box":[1.0,2.0,30.0,40.0],"score":0.9877,"mask":false,"mask_prob":0.25,"landmarks":[[5.0,6.0],[5.0,6.0],[5.0,6.0],[5.0,6.0],[5.0,6.0]]}],"timing_ms":{"detect":0.0,"classify":0.0,"total":1.235}}"#
        );
    }
}
