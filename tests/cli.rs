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

#[test]
fn out_of_range_numbers_are_refused_by_flag_and_by_config_alike() {
    for (flags, key) in [
        (&["--threads", "16384"][..], "model.threads"),
        (&["--threads", "0"][..], "model.threads"),
        (&["--score-threshold", "7"][..], "model.score_threshold"),
        (&["--score-threshold=-1"][..], "model.score_threshold"),
        (&["--score-threshold", "NaN"][..], "model.score_threshold"),
        (&["--mask-threshold", "2"][..], "model.mask_threshold"),
        (&["--mask-threshold", "NaN"][..], "model.mask_threshold"),
        (&["--nms-iou", "2"][..], "model.nms_iou"),
        (&["--nms-iou=-5"][..], "model.nms_iou"),
    ] {
        let out = common::maskgate_bin()
            .arg("image")
            .args(flags)
            .arg("samples/astronaut.jpg")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(
            err.contains(key) && err.contains("must be"),
            "{flags:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{flags:?}: nothing processed");
    }
    // the same numbers in a config file
    let d = common::scratch("cli-ranges");
    for (toml, key) in [
        ("[model]\nscore_threshold = 7\n", "model.score_threshold"),
        ("[model]\nmask_threshold = -1\n", "model.mask_threshold"),
        ("[model]\nthreads = 100000\n", "model.threads"),
        ("[decision]\nmin_face_px = 100000\n", "decision.min_face_px"),
        (
            "[service]\nverdict_images_max_mb = 0\n",
            "service.verdict_images_max_mb",
        ),
        ("[camera]\nwidth = 0\n", "camera.width must be 16..=8192"),
        (
            "[camera]\nheight = 100000\n",
            "camera.height must be 16..=8192",
        ),
        ("[camera]\nfps = 1000\n", "camera.fps must be 1..=240"),
        ("[camera]\ndevice = \"\"\n", "camera.device is empty"),
    ] {
        let f = d.join("site.toml");
        std::fs::write(&f, toml).unwrap();
        let out = common::maskgate_bin()
            .args(["run", "--simulate", "--print-config", "--config"])
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{toml}: {err}");
        assert!(err.contains(key), "{toml}: {err}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn annotated_copies_never_replace_an_input_or_each_other() {
    let d = common::scratch("cli-collide");
    for sub in ["a", "b", "out"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let astro = std::fs::read(common::sample("astronaut.jpg")).unwrap();
    std::fs::write(d.join("a/x.jpg"), &astro).unwrap();
    std::fs::write(d.join("b/x.jpg"), &astro).unwrap();
    std::fs::copy(common::sample("camera.png"), d.join("cam.png")).unwrap();
    std::fs::write(d.join("cam.jpg"), &astro).unwrap();
    let run = |args: &[&str]| {
        let out = maskgate().current_dir(&d).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--out", "out", "a/x.jpg", "b/x.jpg"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("a/x.jpg and b/x.jpg") && err.contains("out/x.jpg"),
        "{err}"
    );
    let (code, err) = run(&["--out", "out", "cam.png", "cam.jpg"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cam.png and cam.jpg"), "{err}");
    // into the inputs' own folder, and onto the input itself
    let (code, err) = run(&["--out", ".", "cam.jpg"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("over the input"), "{err}");
    let (code, err) = run(&["--out", "./cam.jpg", "cam.jpg"]);
    assert_eq!(code, Some(2), "{err}");
    // nothing was written anywhere, and every input is as it was
    assert_eq!(std::fs::read_dir(d.join("out")).unwrap().count(), 0);
    for f in ["a/x.jpg", "b/x.jpg", "cam.jpg"] {
        assert_eq!(std::fs::read(d.join(f)).unwrap(), astro, "{f}");
    }
    // distinct names are fine
    let (code, err) = run(&["--out", "out", "a/x.jpg", "cam.png"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(d.join("out/x.jpg").is_file() && d.join("out/cam.jpg").is_file());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn files_that_never_end_are_refused_at_their_limit_and_each_cause_is_said_once() {
    // /dev/zero read whole would take all of a board's memory before any word
    let out = maskgate().args(["--json", "/dev/zero"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("/dev/zero: cannot read: more than 256 MiB"),
        "{err}"
    );
    refused_with(
        &[
            std::ffi::OsStr::new("--detector"),
            std::ffi::OsStr::new("/dev/zero"),
        ],
        &["model /dev/zero: cannot read the file: more than 256 MiB"],
    );
    let config = |f: &str| {
        let out = common::maskgate_bin()
            .args(["run", "--simulate", "--print-config", "--config", f])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = config("/dev/zero");
    assert!(
        err.contains("more than 1 MiB, the limit for this file"),
        "{err}"
    );
    // the library's message holds its cause and returns it as the source too: said once
    let err = config("/");
    assert_eq!(err.matches("Is a directory").count(), 1, "{err}");
}

/// `maskgate image` with `args` on the astronaut fails with exit 1, saying every one of `says`.
fn refused_with(args: &[&std::ffi::OsStr], says: &[&str]) {
    let out = maskgate()
        .args(args)
        .arg("samples/astronaut.jpg")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    for s in says {
        assert!(err.contains(s), "{args:?}: no {s:?} in {err}");
    }
}

#[test]
fn model_files_of_the_wrong_size_or_kind_are_named() {
    let d = common::scratch("cli-models");
    // the 320x240 detector under the 640x480 name
    std::fs::copy(
        common::detector_path(320, 240),
        d.join("retinaface_mnet025_640x480_int8.tflite"),
    )
    .unwrap();
    std::fs::copy(common::classifier_path(), d.join("mask_resnet_int8.tflite")).unwrap();
    let os = |p: &std::path::Path| p.as_os_str().to_owned();
    let flag = std::ffi::OsStr::new;
    refused_with(
        &[flag("--models-dir"), &os(&d)],
        &["its input is 320x240", "640x480"],
    );
    // the two files swapped
    refused_with(
        &[flag("--detector"), &os(&common::classifier_path())],
        &["mask classifier", "swapped"],
    );
    refused_with(
        &[flag("--classifier"), &os(&common::detector_path(320, 240))],
        &["RetinaFace detector", "swapped"],
    );
    // an explicit detector of another size is that size, no complaint
    let out = maskgate()
        .arg("--detector")
        .arg(common::detector_path(320, 240))
        .arg("samples/astronaut.jpg")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_empty_models_variable_means_unset() {
    let out = maskgate()
        .env("MASKGATE_MODELS", "")
        .arg("samples/astronaut.jpg")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 face(s)"));
}
