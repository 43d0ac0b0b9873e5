//! `maskgate video`: every frame of a video annotated (green / red boxes, labels), audio
//! dropped, size and frame rate kept; `--json` streams the image mode's JSON per frame with
//! its index and timestamp. A progress bar with ETA on a terminal, a plain line every 5 s
//! otherwise (journald, CI logs).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use maskgate::door;
use maskgate::encode::VideoWriter;
use maskgate::report::ImageReport;
use maskgate::source::video::VideoReader;
use maskgate::source::RgbFrame;
use maskgate::vision::annotate;
use serde::Serialize;

use super::settings::ModelArgs;

#[derive(Args)]
pub struct VideoArgs {
    /// Input video: anything the installed ffmpeg decodes (MP4 / H.264, MKV, MOV, AVI, WebM, ...).
    #[arg(long = "in")]
    input: PathBuf,
    /// Annotated output video: H.264 for .mp4 / .mkv / .mov, ffmpeg's default codec otherwise.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON object per frame on stdout (the image mode's shape + frame and t).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct FrameJson {
    frame: u64,
    /// Presentation time in seconds (frame / fps).
    t: f64,
    #[serde(flatten)]
    report: ImageReport,
}

enum Progress {
    Bar(ProgressBar),
    Lines { every: Duration, last: Instant },
}

impl Progress {
    fn new(total: Option<u64>) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} frames  {per_sec}  ETA {eta}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Progress::Bar(bar)
        } else {
            Progress::Lines {
                every: Duration::from_secs(5),
                last: Instant::now(),
            }
        }
    }

    fn tick(&mut self, done: u64, total: Option<u64>, t0: Instant) {
        match self {
            Progress::Bar(b) => b.set_position(done),
            Progress::Lines { every, last } => {
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    let fps = done as f64 / t0.elapsed().as_secs_f64();
                    match total {
                        Some(n) if n > done => eprintln!(
                            "maskgate video: {done}/{n} frames, {fps:.1} frames/s, ETA {:.0} s",
                            (n - done) as f64 / fps.max(1e-9)
                        ),
                        _ => eprintln!("maskgate video: {done} frames, {fps:.1} frames/s"),
                    }
                }
            }
        }
    }

    fn finish(&self) {
        if let Progress::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

pub fn run(a: VideoArgs) -> Result<ExitCode> {
    let cfg = a.model.settings()?;
    if let Some(o) = &a.out {
        if super::same_file(o, &a.input) {
            return Err(super::refuse_out(format!(
                "--out {} is the input video; choose another file (the input is never overwritten)",
                o.display()
            )));
        }
    }
    let mut pipe = door::pipeline(&cfg.model, cfg.model.threads)?;
    let mut rd = VideoReader::open(&a.input)?;
    let info = rd.info.clone();
    let name = a.input.display().to_string();
    let mut wr = match &a.out {
        Some(o) => Some(VideoWriter::create(o, info.width, info.height, info.fps)?),
        None => None,
    };
    let total = info
        .frames
        .or_else(|| info.duration_s.map(|d| (d * info.fps).round() as u64));
    let mut progress = Progress::new(total);
    let mut frame = RgbFrame::default();
    let (mut n, mut faces, mut masked) = (0u64, 0u64, 0u64);
    let mut busy = Duration::ZERO;
    let t0 = Instant::now();
    let mut broke = None;
    loop {
        match rd.read(&mut frame) {
            Ok(true) => {}
            Ok(false) => break,
            // frames decoded so far are kept: the annotated video ends where the input broke
            Err(e) if n > 0 => {
                broke = Some(e);
                break;
            }
            Err(e) => return Err(e.into()),
        }
        let view = frame.view().context("empty video frame")?;
        let t = Instant::now();
        let res = pipe
            .process(view)
            .with_context(|| format!("{name}: inference failed at frame {n}"))?;
        busy += t.elapsed();
        faces += res.faces.len() as u64;
        masked += res.faces.iter().filter(|f| f.mask).count() as u64;
        if a.json {
            let report = ImageReport::new(name.clone(), info.width, info.height, res);
            let line = FrameJson {
                frame: n,
                t: (n as f64 / info.fps * 1000.0).round() / 1000.0,
                report,
            };
            println!("{}", serde_json::to_string(&line)?);
        }
        if let Some(w) = &mut wr {
            // draw in place: the buffer moves into an RgbImage and back, no copy
            let data = std::mem::take(&mut frame.data);
            let mut img = image::RgbImage::from_raw(info.width, info.height, data)
                .context("frame size mismatch")?;
            annotate::draw_faces(&mut img, &res.faces);
            frame.data = img.into_raw();
            w.write(&frame)?;
        }
        n += 1;
        progress.tick(n, total, t0);
    }
    progress.finish();
    if n == 0 {
        // nothing decodable that ffmpeg noticed (it failed, and that is an error above)
        bail!("{name}: no video frame could be decoded; nothing written");
    }
    if let Some(w) = wr {
        w.finish()?;
    }
    let damaged = broke.map(|e| e.to_string()).or_else(|| rd.short());
    let wall = t0.elapsed().as_secs_f64();
    eprintln!(
        "maskgate video: {name}: {n} frames ({}x{} @ {:.2} fps), {faces} faces ({masked} masked); \
         {:.1} frames/s end to end, pipeline {:.1} ms/frame",
        info.width,
        info.height,
        info.fps,
        n as f64 / wall.max(1e-9),
        busy.as_secs_f64() * 1e3 / n.max(1) as f64
    );
    if let Some(d) = damaged {
        eprintln!("maskgate video: {d}");
        if let Some(o) = &a.out {
            eprintln!(
                "maskgate video: {} holds the {n} frames that could be decoded",
                o.display()
            );
        }
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}
