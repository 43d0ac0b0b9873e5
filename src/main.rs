//! `maskgate` command line. Parses arguments, builds the pipeline, and hands work to the library.
//!
//! Exit codes: 0 all inputs processed; 1 could not start (models, runtime, output folder);
//! 2 bad command line; 3 started, but at least one input failed (each named on stderr).

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use maskgate::models;
use maskgate::report::ImageReport;
use maskgate::vision::{annotate, image_io};
use maskgate::{ImageView, Pipeline, PipelineConfig};

#[derive(Parser)]
#[command(
    name = "maskgate",
    version,
    about = "Face-mask check at the door: int8 RetinaFace + int8 ResNet on TFLite"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Find every face in still images and say mask / no mask.
    Image(ImageArgs),
    /// Door kiosk: camera (or a folder of images) → verdict per person → LEDs, buzzer, OLED.
    Run(cli::run::RunArgs),
    /// Annotate a video file frame by frame (ffmpeg over pipes), or print per-frame JSON.
    Video(cli::video::VideoArgs),
    /// HTTP API: POST /v1/detect, POST /v1/classify, GET /healthz, GET /metrics.
    Serve(cli::serve::ServeArgs),
}

#[derive(Args, Clone)]
pub(crate) struct ModelArgs {
    /// Folder holding the shipped models (default: searched next to the binary, then ./models/quantized).
    #[arg(long, env = "MASKGATE_MODELS")]
    models_dir: Option<PathBuf>,
    /// Detector model input size, WIDTHxHEIGHT (a shipped size: 640x480 or 320x240).
    #[arg(long, default_value = "640x480", value_parser = models::parse_size)]
    input_size: (u32, u32),
    /// Detector model file (overrides --input-size).
    #[arg(long)]
    detector: Option<PathBuf>,
    /// Classifier model file.
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Inference threads (default: CPU cores, at most 4).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Minimum face probability. 0.7: the lowest score at which the fine-tuned detector makes no
    /// more false positives than the official weights did at 0.7 (models/README.md trade-off).
    #[arg(long, default_value_t = 0.7)]
    score_threshold: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.4)]
    nms_iou: f32,
    /// P(mask) at or above which a face counts as masked.
    #[arg(long, default_value_t = 0.5)]
    mask_threshold: f32,
}

#[derive(Args)]
struct ImageArgs {
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

impl ModelArgs {
    pub(crate) fn pipeline(&self) -> Result<Pipeline> {
        let choice = models::Choice {
            dir: self.models_dir.as_deref(),
            detector: self.detector.as_deref(),
            classifier: self.classifier.as_deref(),
        };
        let (det, cls) = models::resolve(choice, self.input_size).map_err(anyhow::Error::msg)?;
        let threads = self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4)
        });
        let cfg = PipelineConfig {
            score_threshold: self.score_threshold,
            nms_iou: self.nms_iou,
            mask_threshold: self.mask_threshold,
            ..PipelineConfig::default()
        };
        Ok(Pipeline::load(&det, &cls, threads, cfg)?)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Image(a) => run_image(a),
        Cmd::Run(a) => cli::run::run(a),
        Cmd::Video(a) => cli::video::run(a),
        Cmd::Serve(a) => cli::serve::run(a),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("maskgate: error: {e:#}");
            ExitCode::from(1)
        }
    }
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

fn run_image(a: ImageArgs) -> Result<ExitCode> {
    let mut pipe = a.model.pipeline()?;
    let many = a.inputs.len() > 1;
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
