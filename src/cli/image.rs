//! `maskgate image`: every face in still images, mask / no mask, as text or JSON lines, and
//! optionally an annotated copy of each image.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use maskgate::door;
use maskgate::report::ImageReport;
use maskgate::vision::{annotate, image_io};
use maskgate::ImageView;

use super::settings::ModelArgs;

#[derive(Args)]
pub struct ImageArgs {
    /// Input images (any of JPEG, PNG, WebP, BMP, GIF, TIFF; the extension does not matter).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Annotated output: a file for one input, or a folder (created if needed).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON object per input on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Where the annotated copy of `input` goes.
fn out_path(out: &Path, input: &Path, many: bool) -> PathBuf {
    if many || out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') {
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        out.join(format!("{stem}.jpg"))
    } else {
        out.to_path_buf()
    }
}

/// Refuses, before any work, outputs that would replace an input or each other: two inputs
/// with one stem (`a/x.jpg` and `b/x.jpg`, `cam.png` and `cam.jpg`) into one folder.
fn check_outputs(out: &Path, inputs: &[PathBuf], many: bool) -> Result<()> {
    let mut taken: HashMap<PathBuf, &Path> = HashMap::new();
    for input in inputs {
        let dst = out_path(out, input, many);
        if let Some(i) = inputs.iter().find(|i| super::same_file(&dst, i)) {
            return Err(super::refuse_out(format!(
                "the annotated copy of {} would be written over the input {}; choose another --out \
                 (inputs are never overwritten)",
                input.display(),
                i.display()
            )));
        }
        if let Some(first) = taken.insert(dst.clone(), input) {
            return Err(super::refuse_out(format!(
                "{} and {} would both be annotated into {}; annotate them in separate runs \
                 (or rename one)",
                first.display(),
                input.display(),
                dst.display()
            )));
        }
    }
    Ok(())
}

pub fn run(a: ImageArgs) -> Result<ExitCode> {
    let cfg = a.model.settings()?;
    let many = a.inputs.len() > 1;
    if let Some(out) = &a.out {
        check_outputs(out, &a.inputs, many)?;
    }
    let mut pipe = door::pipeline(&cfg.model, cfg.model.threads)?;
    if let Some(out) = &a.out {
        if many || out.as_os_str().to_string_lossy().ends_with('/') {
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create output folder {}", out.display()))?;
        }
    }
    let mut failed = 0usize;
    for input in &a.inputs {
        let name = input.display().to_string();
        let mut img = match image_io::load(input) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("maskgate: {name}: {e}");
                failed += 1;
                continue;
            }
        };
        let res = pipe
            .process(ImageView::from_rgb(&img))
            .with_context(|| format!("{name}: inference failed"))?;
        let report = ImageReport::new(name.clone(), img.width(), img.height(), res);
        let faces: Vec<_> = res.faces.iter().copied().collect();
        if a.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            let verdicts: Vec<String> = faces
                .iter()
                .map(|f| annotate::label(f).to_string())
                .collect();
            println!(
                "{name}: {} face(s) [{}] in {:.1} ms",
                faces.len(),
                verdicts.join(", "),
                report.timing_ms.total
            );
        }
        if let Some(out) = &a.out {
            let dst = out_path(out, input, many);
            annotate::draw_faces(&mut img, &faces);
            if let Err(e) = img.save(&dst) {
                eprintln!("maskgate: {name}: cannot write {}: {e}", dst.display());
                failed += 1;
            }
        }
    }
    Ok(if failed > 0 {
        eprintln!("maskgate: {failed} of {} input(s) failed", a.inputs.len());
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
