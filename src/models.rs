//! Where the shipped models are found at run time, and their file names.

use std::path::{Path, PathBuf};

/// Why no model file (or size) could be settled on; each says what the user can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("expected WIDTHxHEIGHT, e.g. 640x480")]
    SizeFormat,
    #[error("bad number in {0:?}")]
    SizeNumber(String),
    #[error(
        "no shipped detector for {0}x{1}; shipped sizes: 640x480, 320x240 \
         (or pass a detector file for that size)"
    )]
    NoShippedDetector(u32, u32),
    #[error("model {file} not found; looked in: {} (set --models-dir or MASKGATE_MODELS)", list(.dirs))]
    NotFound { file: String, dirs: Vec<PathBuf> },
}

fn list(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Detector input sizes shipped in `models/quantized/` (width, height).
pub const DETECTOR_SIZES: [(u32, u32); 2] = [(640, 480), (320, 240)];
pub const CLASSIFIER_FILE: &str = "mask_resnet_int8.tflite";

/// Parses "WIDTHxHEIGHT" (the `--input-size` flag and `model.input_size`).
pub fn parse_size(s: &str) -> Result<(u32, u32), ModelError> {
    let (w, h) = s.split_once(['x', 'X']).ok_or(ModelError::SizeFormat)?;
    let p = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| ModelError::SizeNumber(s.to_string()))
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
    if let Some(d) = std::env::var_os("MASKGATE_MODELS").filter(|d| !d.is_empty()) {
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
pub fn find(dirs: &[PathBuf], file: &str) -> Result<PathBuf, ModelError> {
    dirs.iter()
        .map(|d| d.join(file))
        .find(|p| p.is_file())
        .ok_or_else(|| ModelError::NotFound {
            file: file.to_string(),
            dirs: dirs.to_vec(),
        })
}

/// Model files picked by the user; what is left `None` comes from the shipped set.
#[derive(Debug, Clone, Copy, Default)]
pub struct Choice<'a> {
    /// Folder searched instead of [`search_dirs`].
    pub dir: Option<&'a Path>,
    /// A detector file (any input size its priors are generated for).
    pub detector: Option<&'a Path>,
    pub classifier: Option<&'a Path>,
}

/// Resolves the detector for input size `(w, h)` and the classifier: explicit files as
/// given, the rest from `choice.dir` (or the default search folders).
pub fn resolve(choice: Choice, (w, h): (u32, u32)) -> Result<(PathBuf, PathBuf), ModelError> {
    let dirs = match choice.dir {
        Some(d) => vec![d.to_path_buf()],
        None => search_dirs(),
    };
    let det = match choice.detector {
        Some(p) => p.to_path_buf(),
        None if !DETECTOR_SIZES.contains(&(w, h)) => {
            return Err(ModelError::NoShippedDetector(w, h))
        }
        None => find(&dirs, &detector_file(w, h))?,
    };
    let cls = match choice.classifier {
        Some(p) => p.to_path_buf(),
        None => find(&dirs, CLASSIFIER_FILE)?,
    };
    Ok((det, cls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_models_resolve_per_size() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/quantized");
        let c = Choice {
            dir: Some(&dir),
            ..Choice::default()
        };
        let (det, cls) = resolve(c, (320, 240)).unwrap();
        assert_eq!(det, dir.join("retinaface_mnet025_320x240_int8.tflite"));
        assert_eq!(cls, dir.join(CLASSIFIER_FILE));
    }

    #[test]
    fn explicit_files_win_and_skip_the_size_check() {
        let nowhere = Path::new("/nonexistent/models");
        let c = Choice {
            dir: Some(nowhere),
            detector: Some(Path::new("d.tflite")),
            classifier: Some(Path::new("c.tflite")),
        };
        let (det, cls) = resolve(c, (800, 600)).unwrap();
        assert_eq!(
            (det.to_str(), cls.to_str()),
            (Some("d.tflite"), Some("c.tflite"))
        );
    }

    #[test]
    fn unknown_size_and_missing_files_say_what_to_do() {
        let e = resolve(Choice::default(), (800, 600))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("800x600") && e.contains("640x480, 320x240"),
            "{e}"
        );
        let c = Choice {
            dir: Some(Path::new("/nonexistent/models")),
            ..Choice::default()
        };
        let e = resolve(c, (640, 480)).unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/models") && e.contains("MASKGATE_MODELS"),
            "{e}"
        );
    }
}
