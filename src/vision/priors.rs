//! RetinaFace anchor ("prior") boxes, generated for the exact input size of the detector model.
//! Order matches the model's outputs: level by level, row-major over the feature map, then the
//! anchors of each cell.

/// The anchor configuration of a RetinaFace model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PriorConfig {
    pub min_sizes: [[f32; 2]; 3],
    pub steps: [u32; 3],
    pub variances: [f32; 2],
}

/// Official mobilenet0.25 configuration (biubug6/Pytorch_Retinaface `cfg_mnet`).
pub const MNET025: PriorConfig = PriorConfig {
    min_sizes: [[16.0, 32.0], [64.0, 128.0], [256.0, 512.0]],
    steps: [8, 16, 32],
    variances: [0.1, 0.2],
};

/// One prior: centre and size, normalised to the input width / height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prior {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

impl PriorConfig {
    /// Feature-map size for one level: stride-2 convolutions with padding 1 round up.
    pub fn feature_map(&self, level: usize, width: u32, height: u32) -> (u32, u32) {
        let s = self.steps[level];
        (width.div_ceil(s), height.div_ceil(s))
    }

    pub fn count(&self, width: u32, height: u32) -> usize {
        (0..3)
            .map(|k| {
                let (fw, fh) = self.feature_map(k, width, height);
                (fw * fh) as usize * self.min_sizes[k].len()
            })
            .sum()
    }

    /// All priors for a `width` x `height` input (computed once when the detector is built).
    pub fn generate(&self, width: u32, height: u32) -> Vec<Prior> {
        let mut out = Vec::with_capacity(self.count(width, height));
        let (w, h) = (width as f32, height as f32);
        for k in 0..3 {
            let (fw, fh) = self.feature_map(k, width, height);
            let step = self.steps[k] as f32;
            for i in 0..fh {
                for j in 0..fw {
                    for &m in &self.min_sizes[k] {
                        out.push(Prior {
                            cx: (j as f32 + 0.5) * step / w,
                            cy: (i as f32 + 0.5) * step / h,
                            w: m / w,
                            h: m / h,
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_the_model_outputs() {
        // 640x640: (80*80 + 40*40 + 20*20) * 2 = 16800, as in the official ONNX export.
        assert_eq!(MNET025.count(640, 640), 16800);
        // 640x480: (80*60 + 40*30 + 20*15) * 2 = 12600.
        assert_eq!(MNET025.count(640, 480), 12600);
        // 320x240: 40*30 + 20*15 + 10*8 (240/32 rounds up) -> (1200 + 300 + 80) * 2 = 3160.
        assert_eq!(MNET025.count(320, 240), 3160);
        assert_eq!(MNET025.generate(320, 240).len(), 3160);
    }

    #[test]
    fn first_and_last_priors_by_hand() {
        let p = MNET025.generate(640, 480);
        // level 0, cell (0,0), min size 16 then 32
        assert_eq!(
            p[0],
            Prior {
                cx: 4.0 / 640.0,
                cy: 4.0 / 480.0,
                w: 16.0 / 640.0,
                h: 16.0 / 480.0
            }
        );
        assert_eq!(
            p[1],
            Prior {
                cx: 4.0 / 640.0,
                cy: 4.0 / 480.0,
                w: 32.0 / 640.0,
                h: 32.0 / 480.0
            }
        );
        // level 0, cell (row 0, col 1)
        assert_eq!(p[2].cx, 12.0 / 640.0);
        // first prior of level 1 comes after 80*60*2 level-0 priors
        assert_eq!(
            p[9600],
            Prior {
                cx: 8.0 / 640.0,
                cy: 8.0 / 480.0,
                w: 64.0 / 640.0,
                h: 64.0 / 480.0
            }
        );
        // last: level 2, cell (row 14, col 19), min size 512
        let last = p.last().unwrap();
        assert_eq!(
            *last,
            Prior {
                cx: 624.0 / 640.0,
                cy: 464.0 / 480.0,
                w: 512.0 / 640.0,
                h: 512.0 / 480.0
            }
        );
    }
}
