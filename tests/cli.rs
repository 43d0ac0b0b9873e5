//! The `maskgate image` command as a user runs it: JSON lines, annotated output, bad inputs.

mod common;

use std::process::Command;

/// `maskgate image --threads N`.
fn maskgate() -> Command {
    let mut c = common::maskgate_bin();
    c.arg("image")
        .arg("--threads")
        .arg(common::threads().to_string());
    c
}

#[test]
fn json_lines_have_the_documented_shape() {
    let out = maskgate()
        .args(["--json", "samples/astronaut.jpg", "samples/chelsea.png"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let a = &lines[0];
    assert_eq!(a["image"], "samples/astronaut.jpg");
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(512), Some(512))
    );
    let keys: Vec<&str> = a.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["image", "width", "height", "faces", "timing_ms"]);
    let f = &a["faces"][0];
    let fk: Vec<&str> = f.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(fk, ["box", "score", "mask", "mask_prob", "landmarks"]);
    assert_eq!(f["box"].as_array().unwrap().len(), 4);
    assert_eq!(f["landmarks"].as_array().unwrap().len(), 5);
    assert_eq!(f["mask"], false);
    let t = &a["timing_ms"];
    assert!(t["total"].as_f64().unwrap() >= t["detect"].as_f64().unwrap());
    assert_eq!(lines[1]["faces"].as_array().unwrap().len(), 0);
}

#[test]
fn bad_inputs_are_named_and_the_rest_still_processed() {
    let bad = [
        "empty.jpg",
        "not_an_image.jpg",
        "truncated.jpg",
        "huge_dimensions.png",
    ];
    let mut c = maskgate();
    c.arg("--json").arg("samples/astronaut.jpg");
    for b in bad {
        c.arg(format!("tests/data/bad/{b}"));
    }
    c.arg("tests/data/one_pixel.png")
        .arg("tests/data/missing.jpg");
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit code 3 = some inputs failed"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for b in bad {
        assert!(err.contains(b), "stderr names {b}: {err}");
    }
    assert!(err.contains("missing.jpg"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let images: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["image"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        images,
        ["samples/astronaut.jpg", "tests/data/one_pixel.png"]
    );
}

#[test]
fn annotated_output_is_written_with_red_box_for_no_mask() {
    let dir = std::env::temp_dir().join(format!("maskgate-cli-{}", std::process::id()));
    let out = maskgate()
        .args(["--out"])
        .arg(&dir)
        .args(["samples/astronaut.jpg", "samples/camera.png"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(dir.join("astronaut.jpg")).unwrap().to_rgb8();
    // count strongly red pixels: the no-mask box and label
    let red = img
        .pixels()
        .filter(|p| p.0[0] > 180 && p.0[1] < 60 && p.0[2] < 60)
        .count();
    assert!(red > 300, "red box pixels: {red}");
    assert!(dir.join("camera.jpg").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_models_fail_fast_with_a_hint() {
    let out = maskgate()
        .args(["--models-dir", "/nonexistent", "samples/astronaut.jpg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not found") && err.contains("--models-dir"),
        "{err}"
    );
}
