//! Side-by-side with the AIZOO FaceMaskDetection peer (one SSD, face + mask, 260x260 float) on
//! the same images, same runtime (TFLite + XNNPACK) and the same thread count, maskgate at both
//! detector sizes in the same run: median per-image time from decoded pixels to final faces, and
//! on the VOC-labelled scene set face recall (IoU >= 0.5, each model's default threshold) split
//! masked / unmasked, all faces and faces >= 40 px wide in a 640x480 frame, and mask / no-mask
//! accuracy on the faces each one found (`mask_weared_incorrect` counts as no mask). By default
//! the images are the detector's held-out third (never trained or calibrated on).
//!
//! cargo run --release --example peers -- [--images ../shared/data/face-mask-detection] [--split heldout|all] [--n N] [--threads 2]

#[path = "../tests/common/voc.rs"]
mod voc;

use std::path::PathBuf;
use std::time::Instant;

use heapless::Vec as HVec;
use maskgate::engine::Engine;
use maskgate::models;
use maskgate::vision::decode::nms;
use maskgate::vision::image_io;
use maskgate::{BBox, Detection, ImageView, Pipeline, PipelineConfig};

/// AIZOO anchors: 5 levels, 4 anchors per cell (two sizes at ratio 1, the first size at 0.62, 0.42).
fn aizoo_anchors() -> Vec<[f32; 4]> {
    let maps = [33usize, 17, 9, 5, 3];
    let sizes = [
        [0.04f32, 0.056],
        [0.08, 0.11],
        [0.16, 0.22],
        [0.32, 0.45],
        [0.64, 0.72],
    ];
    let ratios = [1.0f32, 0.62, 0.42];
    let mut out = Vec::new();
    for (k, &n) in maps.iter().enumerate() {
        let mut wh = Vec::new();
        for s in sizes[k] {
            wh.push((s * ratios[0].sqrt(), s / ratios[0].sqrt()));
        }
        for r in &ratios[1..] {
            wh.push((sizes[k][0] * r.sqrt(), sizes[k][0] / r.sqrt()));
        }
        for y in 0..n {
            for x in 0..n {
                let (cx, cy) = ((x as f32 + 0.5) / n as f32, (y as f32 + 0.5) / n as f32);
                for &(w, h) in &wh {
                    out.push([cx, cy, w, h]);
                }
            }
        }
    }
    out
}

struct Aizoo {
    engine: Engine,
    anchors: Vec<[f32; 4]>,
}

impl Aizoo {
    /// Faces with (score, is_mask), as in AIZOO's own inference code: resize to 260x260, /255,
    /// class 0 = mask, 1 = no mask, threshold 0.5, NMS 0.4.
    fn run(&mut self, img: &image::RgbImage) -> Vec<(Detection, bool)> {
        let small = image::imageops::resize(img, 260, 260, image::imageops::FilterType::Triangle);
        for (d, s) in self.engine.input_f32(0).iter_mut().zip(small.as_raw()) {
            *d = *s as f32 / 255.0;
        }
        self.engine.invoke().unwrap();
        let (loc, cls) = (self.engine.output(0), self.engine.output(1));
        let (w, h) = (img.width() as f32, img.height() as f32);
        let mut cands: HVec<Detection, 2048> = HVec::new();
        for (i, a) in self.anchors.iter().enumerate() {
            let (m, nm) = (cls.get(i * 2), cls.get(i * 2 + 1));
            let score = m.max(nm);
            if score < 0.5 {
                continue;
            }
            let cx = loc.get(i * 4) * 0.1 * a[2] + a[0];
            let cy = loc.get(i * 4 + 1) * 0.1 * a[3] + a[1];
            let bw = (loc.get(i * 4 + 2) * 0.2).exp() * a[2];
            let bh = (loc.get(i * 4 + 3) * 0.2).exp() * a[3];
            let bbox = BBox {
                x1: ((cx - bw / 2.0) * w).max(0.0),
                y1: ((cy - bh / 2.0) * h).max(0.0),
                x2: ((cx + bw / 2.0) * w).min(w),
                y2: ((cy + bh / 2.0) * h).min(h),
            };
            // class rides in the landmark slot so NMS keeps it with its box
            let mut landmarks = [[0.0; 2]; 5];
            landmarks[0][0] = if m >= nm { 1.0 } else { 0.0 };
            let _ = cands.push(Detection {
                bbox,
                score,
                landmarks,
            });
        }
        let mut out: HVec<Detection, 64> = HVec::new();
        nms(&mut cands, 0.4, &mut out);
        out.iter().map(|d| (*d, d.landmarks[0][0] > 0.5)).collect()
    }
}

/// (VOC label, box) per labelled face.
fn labelled(xml: &str) -> (String, Vec<(String, BBox)>) {
    let a = voc::parse(xml).expect("VOC annotation");
    (a.filename, a.objects)
}

/// Face classes as the door sees them (`mask_weared_incorrect` is no mask for the verdict, and
/// its own row for recall).
const CLASSES: [&str; 3] = ["with_mask", "without_mask", "mask_weared_incorrect"];

#[derive(Default)]
struct Score {
    /// per class: labelled faces, found; the same for faces >= 40 px wide in a 640x480 frame
    gt: [usize; 3],
    found: [usize; 3],
    gt40: [usize; 3],
    found40: [usize; 3],
    mask_right: usize,
    times: Vec<f64>,
}

impl Score {
    /// `frame_scale`: the factor that puts this image into a 640x480 frame (face size bins).
    fn add(&mut self, truth: &[(String, BBox)], got: &[(BBox, bool)], frame_scale: f32, ms: f64) {
        self.times.push(ms);
        let mut used = vec![false; got.len()];
        for (label, b) in truth {
            let c = CLASSES.iter().position(|n| n == label).unwrap_or(1);
            let big = (b.x2 - b.x1) * frame_scale >= 40.0;
            self.gt[c] += 1;
            self.gt40[c] += big as usize;
            let best = (0..got.len())
                .filter(|k| !used[*k])
                .max_by(|a, c| got[*a].0.iou(b).total_cmp(&got[*c].0.iou(b)));
            if let Some(k) = best {
                if got[k].0.iou(b) >= 0.5 {
                    used[k] = true;
                    self.found[c] += 1;
                    self.found40[c] += big as usize;
                    if got[k].1 == (c == 0) {
                        self.mask_right += 1;
                    }
                }
            }
        }
    }
    fn median(&mut self) -> f64 {
        self.times.sort_by(f64::total_cmp);
        self.times[self.times.len() / 2]
    }
    fn recall(found: usize, gt: usize) -> f64 {
        found as f64 / gt.max(1) as f64
    }
    fn line(&mut self, name: &str) -> String {
        let m = self.median();
        let all: usize = self.found.iter().sum();
        let n: usize = self.gt.iter().sum();
        format!(
            "{name:16} median {m:7.2} ms/image  recall {:.3}  masked {:.3} unmasked {:.3}  \
             >=40 px: masked {:.3} ({}/{}) unmasked {:.3} ({}/{})  mask accuracy on found {:.3}",
            Self::recall(all, n),
            Self::recall(self.found[0], self.gt[0]),
            Self::recall(self.found[1], self.gt[1]),
            Self::recall(self.found40[0], self.gt40[0]),
            self.found40[0],
            self.gt40[0],
            Self::recall(self.found40[1], self.gt40[1]),
            self.found40[1],
            self.gt40[1],
            self.mask_right as f64 / all.max(1) as f64
        )
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .map(|i| args[i + 1].clone())
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let images = arg("--images")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/data/face-mask-detection"));
    let n: usize = arg("--n")
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let threads: usize = arg("--threads").and_then(|v| v.parse().ok()).unwrap_or(2);
    // the detector's held-out third (tools/pipeline/detector.py split: image i with i % 3 == 2), or all
    let all = arg("--split").as_deref() == Some("all");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/quantized");
    let sizes = [(640u32, 480u32), (320, 240)];
    let mut pipes: Vec<Pipeline> = sizes
        .iter()
        .map(|&(w, h)| {
            Pipeline::load(
                &dir.join(models::detector_file(w, h)),
                &dir.join(models::CLASSIFIER_FILE),
                threads,
                PipelineConfig::default(),
            )
            .unwrap()
        })
        .collect();
    let peer_path = root.join("../shared/models/peers/aizoo/face_mask_detection.tflite");
    let mut peer = Aizoo {
        engine: Engine::load(&peer_path, threads).expect("AIZOO peer model (../shared)"),
        anchors: aizoo_anchors(),
    };
    assert_eq!(peer.anchors.len(), 5972);
    let mut xmls: Vec<PathBuf> = std::fs::read_dir(images.join("annotations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    xmls.sort();
    let mut ours: Vec<Score> = sizes.iter().map(|_| Score::default()).collect();
    let mut theirs = Score::default();
    let picked = xmls
        .iter()
        .enumerate()
        .filter(|(i, _)| all || i % 3 == 2)
        .take(n);
    for (_, xml) in picked {
        let (file, truth) = labelled(&std::fs::read_to_string(xml).unwrap());
        let img = image_io::load(&images.join("images").join(&file)).unwrap();
        let frame_scale = (640.0 / img.width() as f32).min(480.0 / img.height() as f32);
        for (pipe, score) in pipes.iter_mut().zip(ours.iter_mut()) {
            let t = Instant::now();
            let got: Vec<(BBox, bool)> = pipe
                .process(ImageView::from_rgb(&img))
                .unwrap()
                .faces
                .iter()
                .map(|f| (f.det.bbox, f.mask))
                .collect();
            score.add(&truth, &got, frame_scale, t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        let got: Vec<(BBox, bool)> = peer
            .run(&img)
            .into_iter()
            .map(|(d, m)| (d.bbox, m))
            .collect();
        theirs.add(&truth, &got, frame_scale, t.elapsed().as_secs_f64() * 1e3);
    }
    let mt = theirs.median();
    println!(
        "images: {} ({})  threads: {threads}  faces: {:?} (with_mask, without_mask, incorrect)",
        theirs.times.len(),
        if all {
            "all"
        } else {
            "detector held-out third"
        },
        theirs.gt
    );
    for (&(w, h), s) in sizes.iter().zip(ours.iter_mut()) {
        println!("{}", s.line(&format!("maskgate {w}x{h}")));
    }
    println!("{}", theirs.line("aizoo"));
    for (&(w, h), s) in sizes.iter().zip(ours.iter_mut()) {
        println!(
            "ratio aizoo / maskgate {w}x{h} median time: {:.2}",
            mt / s.median()
        );
    }
}
