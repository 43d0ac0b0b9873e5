//! Side-by-side with the AIZOO FaceMaskDetection peer (one SSD, face + mask, 260x260 float) on
//! the same images, same runtime (TFLite + XNNPACK) and the same thread count: median per-image
//! time from decoded pixels to final faces, and on the VOC-labelled scene set face recall
//! (IoU >= 0.5, score >= 0.5) and mask / no-mask accuracy on the faces each one found.
//!
//! cargo run --release --example peers -- [--images ../shared/data/face-mask-detection] [--n N] [--threads 2]

use std::path::PathBuf;
use std::time::Instant;

use heapless::Vec as HVec;
use maskgate::engine::Engine;
use maskgate::models;
use maskgate::vision::decode::nms;
use maskgate::vision::image_io;
use maskgate::voc;
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

/// (is "with_mask", box) per labelled face: incorrectly worn masks count as no mask.
fn labelled(xml: &str) -> (String, Vec<(bool, BBox)>) {
    let a = voc::parse(xml).expect("VOC annotation");
    (
        a.filename,
        a.objects
            .into_iter()
            .map(|(n, b)| (n == "with_mask", b))
            .collect(),
    )
}

#[derive(Default)]
struct Score {
    gt: usize,
    found: usize,
    mask_right: usize,
    times: Vec<f64>,
}

impl Score {
    fn add(&mut self, truth: &[(bool, BBox)], got: &[(BBox, bool)], ms: f64) {
        self.times.push(ms);
        let mut used = vec![false; got.len()];
        for (is_mask, b) in truth {
            self.gt += 1;
            let best = (0..got.len())
                .filter(|k| !used[*k])
                .max_by(|a, c| got[*a].0.iou(b).total_cmp(&got[*c].0.iou(b)));
            if let Some(k) = best {
                if got[k].0.iou(b) >= 0.5 {
                    used[k] = true;
                    self.found += 1;
                    if got[k].1 == *is_mask {
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
    let size = arg("--input-size").unwrap_or_else(|| "640x480".into());
    let (w, h) = size
        .split_once('x')
        .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
        .unwrap();
    let dir = models::repo_models_dir();
    let mut pipe = Pipeline::load(
        &dir.join(models::detector_file(w, h)),
        &dir.join(models::CLASSIFIER_FILE),
        threads,
        PipelineConfig::default(),
    )
    .unwrap();
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
    let (mut ours, mut theirs) = (Score::default(), Score::default());
    for xml in xmls.iter().take(n) {
        let (file, truth) = labelled(&std::fs::read_to_string(xml).unwrap());
        let img = image_io::load(&images.join("images").join(&file)).unwrap();
        let t = Instant::now();
        let got: Vec<(BBox, bool)> = pipe
            .process(ImageView::from_rgb(&img))
            .unwrap()
            .faces
            .iter()
            .map(|f| (f.det.bbox, f.mask))
            .collect();
        ours.add(&truth, &got, t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let got: Vec<(BBox, bool)> = peer
            .run(&img)
            .into_iter()
            .map(|(d, m)| (d.bbox, m))
            .collect();
        theirs.add(&truth, &got, t.elapsed().as_secs_f64() * 1e3);
    }
    let (mo, mt) = (ours.median(), theirs.median());
    println!(
        "images: {}  threads: {threads}  maskgate detector {w}x{h}",
        ours.times.len()
    );
    for (name, s, m) in [("maskgate", &ours, mo), ("aizoo", &theirs, mt)] {
        println!(
            "{name:9} median {m:7.2} ms/image  face recall {:.4} ({}/{})  mask accuracy on found {:.4}",
            s.found as f64 / s.gt as f64,
            s.found,
            s.gt,
            s.mask_right as f64 / s.found.max(1) as f64
        );
    }
    println!("ratio aizoo / maskgate median time: {:.2}", mt / mo);
}
