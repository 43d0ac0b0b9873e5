//! End to end on real photos: the committed public-domain samples, and (when `../shared` is
//! here) a slice of the 853-image scene set with recall and mask-accuracy floors taken from the
//! measurements in models/README.md.

mod common;
#[path = "common/voc.rs"]
mod voc;

use maskgate::vision::image_io;
use maskgate::{BBox, ImageView};

#[test]
fn astronaut_is_one_unmasked_face_where_the_face_is() {
    // NASA portrait of Eileen Collins (public domain), 512x512; her face spans roughly
    // x 165..265, y 70..190 in this image (checked by eye on the annotated output).
    let img = image_io::load(&common::sample("astronaut.jpg")).unwrap();
    for (w, h) in [(640, 480), (320, 240)] {
        let mut p = common::pipeline(w, h);
        let res = p.process(ImageView::from_rgb(&img)).unwrap();
        assert_eq!(res.faces.len(), 1, "{w}x{h}: {:?}", res.faces);
        let f = res.faces[0];
        let truth = BBox {
            x1: 165.0,
            y1: 70.0,
            x2: 265.0,
            y2: 190.0,
        };
        assert!(f.det.bbox.iou(&truth) > 0.5, "{w}x{h}: {:?}", f.det.bbox);
        assert!(f.det.score > 0.9);
        assert!(
            !f.mask && f.mask_prob < 0.5,
            "{w}x{h}: unmasked face read as mask: {}",
            f.mask_prob
        );
        // landmarks: eyes above nose above mouth, all inside the box
        let lm = f.det.landmarks;
        assert!(lm[0][1] < lm[2][1] && lm[2][1] < lm[3][1]);
        assert!(lm
            .iter()
            .all(|p| p[0] > f.det.bbox.x1 && p[0] < f.det.bbox.x2));
    }
}

#[test]
fn exif_orientation_is_honoured() {
    // The same photo stored rotated, with EXIF orientation 6 telling viewers to turn it back.
    let img = image_io::load(&common::data("astronaut_exif_rot.jpg")).unwrap();
    assert_eq!((img.width(), img.height()), (512, 512));
    let mut p = common::pipeline(640, 480);
    let res = p.process(ImageView::from_rgb(&img)).unwrap();
    assert_eq!(res.faces.len(), 1);
    let b = res.faces[0].det.bbox;
    assert!(
        b.iou(&BBox {
            x1: 165.0,
            y1: 70.0,
            x2: 265.0,
            y2: 190.0
        }) > 0.5,
        "{b:?}"
    );
}

#[test]
fn a_cat_is_not_a_face_and_grayscale_and_tiny_images_work() {
    let mut p = common::pipeline(640, 480);
    let cat = image_io::load(&common::sample("chelsea.png")).unwrap();
    assert_eq!(p.process(ImageView::from_rgb(&cat)).unwrap().faces.len(), 0);
    // grayscale cameraman: one face
    let cam = image_io::load(&common::sample("camera.png")).unwrap();
    let res = p.process(ImageView::from_rgb(&cam)).unwrap();
    assert_eq!(res.faces.len(), 1, "{:?}", res.faces);
    let one = image_io::load(&common::data("one_pixel.png")).unwrap();
    assert_eq!(p.process(ImageView::from_rgb(&one)).unwrap().faces.len(), 0);
}

/// What one detector size scores on the scene-set slice.
#[derive(Debug, Default)]
struct Slice {
    faces: usize,
    found: usize,
    /// `with_mask` faces >= 40 px wide in a 640x480 frame (the ones the door judges), and found
    masked40: usize,
    masked40_found: usize,
    mask_right: usize,
}

/// Scene-set slice: the detector's held-out images among the first 300 (`tools/pipeline/detector.py
/// split`: image i with i % 3 == 2, never trained or calibrated on); a labelled face is found
/// by a face at IoU >= 0.5 (default score threshold).
fn scene_slice(shared: &std::path::Path, w: u32, h: u32) -> Slice {
    let base = shared.join("data").join("face-mask-detection");
    let mut p = common::pipeline(w, h);
    let mut s = Slice::default();
    let mut names: Vec<_> = std::fs::read_dir(base.join("annotations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for (i, xml) in names.iter().enumerate().take(300) {
        if i % 3 != 2 {
            continue;
        }
        let ann = voc::parse(&std::fs::read_to_string(xml).unwrap()).expect("VOC annotation");
        let img = image_io::load(&base.join("images").join(&ann.filename)).unwrap();
        let frame_scale = (640.0 / img.width() as f32).min(480.0 / img.height() as f32);
        let res = p.process(ImageView::from_rgb(&img)).unwrap();
        let mut used = vec![false; res.faces.len()];
        for (label, b) in ann.objects {
            s.faces += 1;
            let masked40 = label == "with_mask" && (b.x2 - b.x1) * frame_scale >= 40.0;
            s.masked40 += masked40 as usize;
            let best = res
                .faces
                .iter()
                .enumerate()
                .filter(|(k, _)| !used[*k])
                .map(|(k, f)| (k, f.det.bbox.iou(&b)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((k, iou)) = best {
                if iou >= 0.5 {
                    used[k] = true;
                    s.found += 1;
                    s.masked40_found += masked40 as usize;
                    if res.faces[k].mask == (label == "with_mask") {
                        s.mask_right += 1;
                    }
                }
            }
        }
    }
    s
}

/// Floors a few points under what the shipped models measure here (x86, 2 threads; 506 faces,
/// 183 of them masked and >= 40 px): 640x480 recall 0.759, masked >= 40 px 0.918, mask accuracy
/// 0.969; 320x240 masked >= 40 px 0.820. A regression fails while float noise across runtimes
/// does not. The official RetinaFace weights score 0.741 / 0.902 / 0.963 and 0.716 at 320x240,
/// under that floor: the 320x240 masked-face floor checks the mask-aware detector itself.
#[test]
fn scene_slice_recall_and_mask_accuracy_floors() {
    let Some(shared) = common::shared() else {
        return;
    };
    for (w, h, masked_floor) in [
        (640, 480, MASKED40_FLOOR_640),
        (320, 240, MASKED40_FLOOR_320),
    ] {
        let s = scene_slice(&shared, w, h);
        let recall = s.found as f64 / s.faces as f64;
        let masked = s.masked40_found as f64 / s.masked40 as f64;
        let acc = s.mask_right as f64 / s.found as f64;
        eprintln!(
            "scene slice {w}x{h}: {} faces, recall {recall:.3}, masked >= 40 px {masked:.3} \
             ({}/{}), mask accuracy {acc:.3} on {} found",
            s.faces, s.masked40_found, s.masked40, s.found
        );
        assert!(
            masked >= masked_floor,
            "{w}x{h}: masked-face recall {masked:.3} < {masked_floor}"
        );
        if (w, h) == (640, 480) {
            assert!(
                recall >= RECALL_FLOOR,
                "recall {recall:.3} < {RECALL_FLOOR}"
            );
            assert!(
                acc >= MASK_ACC_FLOOR,
                "mask accuracy {acc:.3} < {MASK_ACC_FLOOR}"
            );
        }
    }
}

const RECALL_FLOOR: f64 = 0.73;
const MASK_ACC_FLOOR: f64 = 0.94;
const MASKED40_FLOOR_640: f64 = 0.89;
const MASKED40_FLOOR_320: f64 = 0.79;
