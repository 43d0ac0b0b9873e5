//! Per-stage timing at both detector sizes: preprocess (letterbox + quantize), detector invoke,
//! decode + NMS, and crop + classify per face; plus the whole frame.
//! `cargo bench --bench stages` (threads: MASKGATE_BENCH_THREADS, default 2).

use criterion::{criterion_group, criterion_main, Criterion};
use heapless::Vec as HVec;
use maskgate::models;
use maskgate::vision::classifier::Classifier;
use maskgate::vision::detector::Detector;
use maskgate::vision::image_io;
use maskgate::{Detection, ImageView, Pipeline, PipelineConfig};

fn threads() -> usize {
    std::env::var("MASKGATE_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn stages(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/quantized");
    let img = image_io::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/astronaut.jpg"),
    )
    .unwrap();
    let view = ImageView::from_rgb(&img);
    for (w, h) in models::DETECTOR_SIZES {
        let mut det = Detector::load(&dir.join(models::detector_file(w, h)), threads()).unwrap();
        let mut g = c.benchmark_group(format!("{w}x{h}"));
        g.bench_function("preprocess", |b| b.iter(|| det.preprocess(view)));
        // a camera frame already at the model's size takes the copy path
        let frame = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
        g.bench_function("preprocess_native_size", |b| {
            b.iter(|| det.preprocess(ImageView::from_rgb(&frame)))
        });
        let lb = det.preprocess(view);
        g.bench_function("detect_invoke", |b| b.iter(|| det.invoke().unwrap()));
        let mut out: HVec<Detection, 64> = HVec::new();
        g.bench_function("decode_nms", |b| {
            b.iter(|| det.postprocess(&lb, view, 0.5, 0.4, &mut out))
        });
        assert_eq!(out.len(), 1);
        let mut cls = Classifier::load(&dir.join(models::CLASSIFIER_FILE), threads()).unwrap();
        let face = out[0].bbox;
        g.bench_function("crop_classify_per_face", |b| {
            b.iter(|| cls.classify(view, &face).unwrap())
        });
        let mut p = Pipeline::new(det, cls, PipelineConfig::default());
        g.bench_function("frame_total", |b| {
            b.iter(|| p.process(view).unwrap().faces.len())
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = stages
}
criterion_main!(benches);
