//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use maskgate::models;
use maskgate::{Pipeline, PipelineConfig};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn detector_path(w: u32, h: u32) -> PathBuf {
    models::repo_models_dir().join(models::detector_file(w, h))
}

pub fn classifier_path() -> PathBuf {
    models::repo_models_dir().join(models::CLASSIFIER_FILE)
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
