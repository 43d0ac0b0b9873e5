//! Where the shipped models are found at run time, and their file names.

use std::path::{Path, PathBuf};

/// Detector input sizes shipped in `models/quantized/` (width, height).
pub const DETECTOR_SIZES: [(u32, u32); 2] = [(640, 480), (320, 240)];
pub const CLASSIFIER_FILE: &str = "mask_resnet_int8.tflite";

/// Parses "WIDTHxHEIGHT" (the `--input-size` flag and `model.input_size`).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or("expected WIDTHxHEIGHT, e.g. 640x480")?;
    let p = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("bad number in {s:?}"))
    };
    Ok((p(w)?, p(h)?))
}

pub fn detector_file(w: u32, h: u32) -> String {
    format!("retinaface_mnet025_{w}x{h}_int8.tflite")
}

/// Candidate model folders, first match wins:
/// `$MASKGATE_MODELS`, `<exe dir>/models/quantized` (release bundle),
/// `<exe dir>/../../models/quantized` (cargo's `target/<profile>/`), the same from
/// `target/<triple>/<profile>/` and `target/<profile>/deps/`, then `./models/quantized`.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = std::env::var_os("MASKGATE_MODELS") {
        v.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe() {
        for up in exe.ancestors().skip(1).take(4) {
            v.push(up.join("models").join("quantized"));
        }
    }
    v.push(PathBuf::from("models/quantized"));
    v
}

/// Resolves `file` in the first folder of `dirs` that holds it.
pub fn find(dirs: &[PathBuf], file: &str) -> Result<PathBuf, String> {
    dirs.iter()
        .map(|d| d.join(file))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "model {file} not found; looked in: {} (set --models-dir or MASKGATE_MODELS)",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The repository's own model folder (for tests and benches).
pub fn repo_models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join("quantized")
}

/// Resolves the detector for input size `(w, h)` and the classifier in `dir` (or the
/// default search folders).
pub fn resolve(dir: Option<&Path>, (w, h): (u32, u32)) -> Result<(PathBuf, PathBuf), String> {
    let dirs = match dir {
        Some(d) => vec![d.to_path_buf()],
        None => search_dirs(),
    };
    if !DETECTOR_SIZES.contains(&(w, h)) {
        return Err(format!(
            "no shipped detector for {w}x{h}; shipped sizes: 640x480, 320x240"
        ));
    }
    Ok((
        find(&dirs, &detector_file(w, h))?,
        find(&dirs, CLASSIFIER_FILE)?,
    ))
}
