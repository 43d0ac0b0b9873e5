//! Every shipped model loads through tflitec and has the tensors the code expects; wrong,
//! corrupt and missing models are refused with errors that name the file.

mod common;

use maskgate::engine::{DType, Engine, EngineError};
use maskgate::models::{self, DETECTOR_SIZES};
use maskgate::vision::classifier::Classifier;
use maskgate::vision::detector::Detector;
use maskgate::vision::priors::MNET025;

#[test]
fn shipped_detectors_have_the_expected_tensors() {
    for (w, h) in DETECTOR_SIZES {
        let path = common::detector_path(w, h);
        let e = Engine::load(&path, 1).unwrap();
        let i = &e.inputs()[0];
        assert_eq!(i.shape, vec![1, h as usize, w as usize, 3]);
        assert_eq!(i.dtype, DType::Int8);
        let q = i.quant.unwrap();
        // plain pixels in: scale 1, zero point -128 (the mean is subtracted inside the model)
        assert_eq!((q.scale, q.zero_point), (1.0, -128), "{}", path.display());
        let n = MNET025.count(w, h);
        let mut shapes: Vec<Vec<usize>> = e.outputs().iter().map(|t| t.shape.clone()).collect();
        shapes.sort();
        assert_eq!(shapes, vec![vec![1, n, 2], vec![1, n, 4], vec![1, n, 10]]);
        assert!(e
            .outputs()
            .iter()
            .all(|t| t.dtype == DType::Int8 && t.quant.is_some()));
        let d = Detector::new(e).unwrap();
        assert_eq!((d.width, d.height), (w, h));
    }
}

#[test]
fn shipped_classifier_has_the_expected_tensors() {
    let e = Engine::load(&common::classifier_path(), 1).unwrap();
    let i = &e.inputs()[0];
    assert_eq!(i.dtype, DType::Int8);
    assert_eq!(i.shape[0], 1);
    assert_eq!(i.shape[1], i.shape[2]);
    assert_eq!(i.shape[3], 3);
    assert_eq!(e.outputs()[0].shape, vec![1, 2]);
    assert_eq!(e.outputs()[0].dtype, DType::Int8);
    let c = Classifier::new(e).unwrap();
    assert!(c.size >= 48 && c.size <= 160, "classifier input {}", c.size);
}

#[test]
fn wrong_corrupt_and_missing_models_are_clear_errors() {
    // the classifier offered as the detector
    let e = Engine::load(&common::classifier_path(), 1).unwrap();
    let msg = Detector::new(e).err().expect("must be refused").to_string();
    assert!(
        msg.contains(models::CLASSIFIER_FILE) && msg.contains("RetinaFace"),
        "{msg}"
    );
    // the detector offered as the classifier
    let e = Engine::load(&common::detector_path(320, 240), 1).unwrap();
    let msg = Classifier::new(e)
        .err()
        .expect("must be refused")
        .to_string();
    assert!(msg.contains("mask classifier"), "{msg}");
    // not a model at all
    let junk = common::data("bad/not_an_image.jpg");
    assert!(matches!(
        Engine::load(&junk, 1),
        Err(EngineError::Invalid { .. })
    ));
    // a truncated model
    let dir = std::env::temp_dir().join(format!("maskgate-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(common::classifier_path()).unwrap();
    let cut = dir.join("cut.tflite");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = Engine::load(&cut, 1)
        .err()
        .expect("truncated model must be refused");
    assert!(
        matches!(
            err,
            EngineError::Invalid { .. } | EngineError::Runtime { .. }
        ),
        "{err}"
    );
    // missing
    let err = Engine::load(&dir.join("nope.tflite"), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("nope.tflite") && err.contains("cannot read"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
