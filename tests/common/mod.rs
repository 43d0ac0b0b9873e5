//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use maskgate::models;
use maskgate::{Pipeline, PipelineConfig};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's shipped models (the release binary searches next to itself instead).
pub fn models_dir() -> PathBuf {
    repo().join("models").join("quantized")
}

pub fn detector_path(w: u32, h: u32) -> PathBuf {
    models_dir().join(models::detector_file(w, h))
}

pub fn classifier_path() -> PathBuf {
    models_dir().join(models::CLASSIFIER_FILE)
}

pub fn pipeline(w: u32, h: u32) -> Pipeline {
    Pipeline::load(
        &detector_path(w, h),
        &classifier_path(),
        threads(),
        PipelineConfig::default(),
    )
    .expect("shipped models load")
}

/// Threads for inference in tests: 1 under emulation (LiteRT hangs with 2 under qemu-user),
/// otherwise 2.
pub fn threads() -> usize {
    std::env::var("MASKGATE_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// `../shared` beside the repository, if this machine has it.
pub fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("MASKGATE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("..").join("shared"));
    if p.join("data").join("face-mask-detection").is_dir() {
        Some(p)
    } else {
        eprintln!("SKIPPED: ../shared (the 853-image scene set) is not on this machine; set MASKGATE_SHARED to run this test");
        None
    }
}

pub fn sample(name: &str) -> PathBuf {
    repo().join("samples").join(name)
}

pub fn data(name: &str) -> PathBuf {
    repo().join("tests").join("data").join(name)
}

pub fn exists(p: &Path) -> bool {
    p.is_file()
}

/// The maskgate binary, through the emulator when the tests themselves run emulated
/// (scripts/qemu/run-aarch64.sh sets MASKGATE_TEST_RUNNER), started in the repository.
pub fn maskgate_bin() -> Command {
    let bin = env!("CARGO_BIN_EXE_maskgate");
    let mut c = match std::env::var("MASKGATE_TEST_RUNNER") {
        Ok(r) if !r.trim().is_empty() => {
            let mut parts = r.split_whitespace();
            let mut c = Command::new(parts.next().unwrap());
            c.args(parts).arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    c.current_dir(repo());
    c
}

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("maskgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A folder playing `parts` in order: each (image, how many frames), as symlinks
/// named 0000.ext, 0001.ext, ...
pub fn sequence(name: &str, parts: &[(&Path, usize)]) -> PathBuf {
    let d = scratch(name);
    let mut i = 0;
    for (img, n) in parts {
        let ext = img.extension().unwrap().to_string_lossy().into_owned();
        for _ in 0..*n {
            std::os::unix::fs::symlink(img, d.join(format!("{i:04}.{ext}"))).unwrap();
            i += 1;
        }
    }
    d
}

/// Compares a picture with `tests/golden/<name>`; MASKGATE_BLESS=1 rewrites the golden.
pub fn check_golden(name: &str, got: &image::GrayImage) {
    let path = repo().join("tests").join("golden").join(name);
    if std::env::var_os("MASKGATE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        got.save(&path).unwrap();
        return;
    }
    let want = image::open(&path)
        .unwrap_or_else(|e| {
            panic!(
                "golden {}: {e} (MASKGATE_BLESS=1 writes it)",
                path.display()
            )
        })
        .to_luma8();
    assert!(
        want == *got,
        "{name}: display picture differs from the golden (run with MASKGATE_BLESS=1 to accept)"
    );
}

/// A TCP port nothing listens on now (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
