//! Soak run of the door loop on a directory source at 640x480, printing what the kiosk issue
//! asks to be measured: loop frames/s, pipeline time per frame, RSS after 10^2 and after
//! 10^4 frames, and the time from start-up (model load) to the first verdict.
//!
//!   cargo run --release --example soak -- [--frames 10000] [--threads 2] [--input-size 640x480]
//!
//! Frames: the astronaut sample scaled to 640x480 for 64 frames, then an empty view for 64 (about a second each at full speed, so every person is re-armed and judged afresh), as
//! symlinks in a scratch folder; played as fast as the loop goes (fps 0) on the real
//! clock, with the hardware doubles as outputs. Each frame is decoded from its file, as in
//! `maskgate run --source DIR`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use maskgate::clock::{Clock, SystemClock};
use maskgate::indicator::sim::{sim_oled, sim_signals};
use maskgate::indicator::Patterns;
use maskgate::kiosk::outputs::InlineOutputs;
use maskgate::kiosk::run::{Kiosk, LoopConfig};
use maskgate::kiosk::Event;
use maskgate::source::files::FileSource;
use maskgate::source::{FrameSource, RgbFrame, SourceError};
use maskgate::{models, Pipeline, PipelineConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Counts frames and samples RSS at frame 100 and at the end.
struct Probe {
    inner: FileSource,
    n: u64,
    rss_100: u64,
    rss_end: u64,
}

impl FrameSource for Probe {
    fn next_frame(&mut self, c: &mut dyn Clock, out: &mut RgbFrame) -> Result<bool, SourceError> {
        if self.n == 100 {
            self.rss_100 = rss_kib();
        }
        let more = self.inner.next_frame(c, out)?;
        if more {
            self.n += 1;
        } else {
            self.rss_end = rss_kib();
        }
        Ok(more)
    }
    fn reopen(&mut self) -> Result<(), SourceError> {
        self.inner.reopen()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let frames: usize = arg("--frames", 10_000);
    let threads: usize = arg("--threads", 2);
    let size: String = arg("--input-size", "640x480".to_string());
    let (w, h) = size
        .split_once('x')
        .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
        .expect("--input-size WxH");

    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("maskgate-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // a person (the astronaut, scaled) and an empty view (a plain gradient: the cat sample,
    // stretched to 640x480, scores 0.87 as a face with the int8 detector)
    let astro = image::open(repo.join("samples").join("astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let person = image::imageops::resize(&astro, 640, 480, image::imageops::FilterType::Triangle);
    let empty = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(60 + x / 8) as u8, (70 + y / 8) as u8, 90])
    });
    let mut stills = vec![];
    for (i, img) in [person, empty].iter().enumerate() {
        let p = dir.join(format!("still{i}.jpg"));
        img.save(&p).unwrap();
        stills.push(p);
    }
    let seq = dir.join("seq");
    std::fs::create_dir_all(&seq).unwrap();
    for i in 0..frames {
        std::os::unix::fs::symlink(&stills[(i / 64) % 2], seq.join(format!("{i:06}.jpg"))).unwrap();
    }

    // the kiosk's start-up begins here: load models, open the source, run
    let t_start = Instant::now();
    let models_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/quantized");
    let choice = models::Choice {
        dir: Some(&models_dir),
        ..models::Choice::default()
    };
    let (det, cls) = models::resolve(choice, (w, h)).unwrap();
    let pipeline = Pipeline::load(&det, &cls, threads, PipelineConfig::default()).unwrap();
    let (oled, _probe) = sim_oled();
    let outs = InlineOutputs::new(sim_signals(Patterns::default()), Some(oled), None, None);
    let mut k = Kiosk::new(pipeline, outs, LoopConfig::default());
    let mut src = Probe {
        inner: FileSource::open(&seq, 0.0).unwrap(),
        n: 0,
        rss_100: 0,
        rss_end: 0,
    };
    let mut first: Option<Duration> = None;
    let mut verdicts = 0u64;
    let t_loop = Instant::now();
    let sum = k
        .run(
            &mut src,
            &mut SystemClock::new(),
            &AtomicBool::new(false),
            &mut |e| {
                if let Event::Decision { .. } = e {
                    if std::env::var_os("SOAK_DEBUG").is_some() {
                        eprintln!("{e:?}");
                    }
                    verdicts += 1;
                    first.get_or_insert_with(|| t_start.elapsed());
                }
            },
        )
        .unwrap();
    let wall = t_loop.elapsed().as_secs_f64();
    println!(
        "soak: {} frames at {w}x{h} model input, 640x480 JPEG frames, {threads} threads",
        sum.frames
    );
    println!(
        "  loop frames/s (decode + pipeline + decide + outputs): {:.1}",
        sum.frames as f64 / wall
    );
    println!(
        "  pipeline ms/frame (mean): {:.2}",
        sum.busy.as_secs_f64() * 1e3 / sum.frames as f64
    );
    println!("  verdicts: {verdicts}");
    println!(
        "  RSS after 100 frames: {} KiB; after {} frames: {} KiB (change {:+} KiB)",
        src.rss_100,
        sum.frames,
        src.rss_end,
        src.rss_end as i64 - src.rss_100 as i64
    );
    println!(
        "  start (model load) to first verdict: {:.0} ms",
        first.unwrap_or_default().as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_dir_all(&dir);
}
