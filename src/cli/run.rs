//! `maskgate run`: builds the kiosk from config + flags, with real hardware or (`--simulate`)
//! with the test doubles on a simulated clock, and prints JSON events in simulation.

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::Args;
use maskgate::clock::{Clock, SimClock, SystemClock};
use maskgate::config::Config;
use maskgate::kiosk::outputs::{InlineOutputs, Outputs, ThreadedOutputs};
use maskgate::kiosk::run::{Kiosk, LoopConfig, Summary};
use maskgate::kiosk::Event;
use maskgate::serve::{ServeConfig, Server, Shared};
use maskgate::signal::display::Oled;
use maskgate::signal::doubles::{FakePin, FakeSsd1306};
use maskgate::signal::hw::{self, Backend};
use maskgate::signal::Signals;
use maskgate::{models, source, Pipeline, PipelineConfig};

#[derive(Args)]
pub struct RunArgs {
    /// Board profile: rpi4, rpi5, jetson-orin-nano, jetson-nano, or a TOML file.
    #[arg(long, env = "MASKGATE_BOARD")]
    board: Option<String>,
    /// Site config (TOML) applied over the board profile; unknown keys are an error.
    #[arg(long, env = "MASKGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Frames from: "camera" (camera.device), a /dev/videoN, a folder of images (name order)
    /// or one image.
    #[arg(long, default_value = "camera")]
    source: String,
    /// Frame rate for folder / image sources; 0 = as fast as the loop runs.
    #[arg(long, default_value_t = 15.0)]
    fps: f64,
    /// Use the hardware doubles (fake pins, an SSD1306 decoded in memory) and print JSON
    /// events on stdout. Folder / image sources then run on a simulated clock.
    #[arg(long)]
    simulate: bool,
    /// With --simulate: write every distinct OLED picture to this folder as NNNN.png.
    #[arg(long)]
    display_dump: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<u64>,
    /// Overrides model.threads.
    #[arg(long)]
    threads: Option<usize>,
    /// Overrides model.input_size (640x480 or 320x240).
    #[arg(long)]
    input_size: Option<String>,
    /// Overrides model.models_dir.
    #[arg(long, env = "MASKGATE_MODELS")]
    models_dir: Option<PathBuf>,
    /// Print the effective configuration (TOML) and exit.
    #[arg(long)]
    print_config: bool,
}

pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MASKGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // under systemd journald stamps every line itself; colours only on a terminal
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        b.without_time().with_ansi(false).init();
    } else {
        b.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

pub fn run(a: RunArgs) -> Result<ExitCode> {
    let t_start = Instant::now();
    init_logging();
    let mut cfg = Config::load(a.board.as_deref(), a.config.as_deref()).map_err(|e| anyhow!(e))?;
    if let Some(t) = a.threads {
        cfg.model.threads = t;
    }
    if let Some(s) = &a.input_size {
        cfg.model.input_size = s.clone();
    }
    if let Some(d) = &a.models_dir {
        cfg.model.models_dir = d.display().to_string();
    }
    cfg.validate().map_err(|e| anyhow!(e))?;
    if a.print_config {
        print!("{}", toml::to_string_pretty(&cfg)?);
        return Ok(ExitCode::SUCCESS);
    }

    let dir = (!cfg.model.models_dir.is_empty()).then(|| PathBuf::from(&cfg.model.models_dir));
    let choice = models::Choice {
        dir: dir.as_deref(),
        ..models::Choice::default()
    };
    let (det, cls) = models::resolve(choice, cfg.input_size().map_err(|e| anyhow!(e))?)
        .map_err(|e| anyhow!(e))?;
    let pcfg = PipelineConfig {
        score_threshold: cfg.model.score_threshold,
        nms_iou: cfg.model.nms_iou,
        mask_threshold: cfg.model.mask_threshold,
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::load(&det, &cls, cfg.model.threads.max(1), pcfg)?;
    let mut src = source::open(&a.source, &cfg.camera(), a.fps)?;
    let is_camera = a.source == "camera" || a.source.starts_with("/dev/video");
    tracing::info!(source = %src.describe(), detector = %det.display(), threads = cfg.model.threads,
        simulate = a.simulate, "maskgate run starting");

    let save_dir = (!cfg.service.save_verdict_images.is_empty())
        .then(|| PathBuf::from(&cfg.service.save_verdict_images));
    if let Some(d) = &save_dir {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        tracing::info!(dir = %d.display(), "verdict images will be stored");
    }
    let loop_cfg = LoopConfig {
        decide: cfg.decide(),
        status_interval: Duration::from_millis(cfg.service.status_interval_ms.max(100)),
        watchdog: if cfg.service.watchdog && !a.simulate {
            sd_notify::watchdog_enabled()
        } else {
            None
        },
        save_dir,
        max_frames: a.max_frames,
    };

    // status endpoints for a door controller (and uploads when allowed)
    let http = if cfg.http.listen.is_empty() {
        None
    } else {
        let shared = Shared::new(true);
        let pipes = if cfg.http.allow_upload {
            vec![Pipeline::load(&det, &cls, 1, pcfg)?]
        } else {
            vec![]
        };
        let scfg = ServeConfig {
            listen: cfg.http.listen.parse()?,
            workers: 1,
            ..ServeConfig::default()
        };
        let server = Server::start(scfg, pipes, shared.clone())
            .with_context(|| format!("cannot listen on {}", cfg.http.listen))?;
        Some((server, shared))
    };
    let http_shared = http.as_ref().map(|(_, s)| s.clone());
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install signal handler")?;
    }
    let patterns = cfg.patterns().map_err(|e| anyhow!(e))?;
    let [g, r, b] = cfg.gpio.pins();
    // process start → first verdict: what an installer waits for after a reboot
    let mut first_verdict: Option<Duration> = None;
    let mut note_first = |e: &Event| match *e {
        Event::Decision { decision, prob, .. } => {
            first_verdict.get_or_insert_with(|| t_start.elapsed());
            if let Some(h) = &http_shared {
                h.verdict(decision, prob);
            }
        }
        Event::Camera { online, .. } => {
            if let Some(h) = &http_shared {
                h.camera(online);
            }
        }
        _ => {}
    };

    let summary = if a.simulate {
        if let Some(d) = &a.display_dump {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let fake = |p: Option<u32>| p.map(|_| FakePin::default());
        let signals = Signals::new(fake(g), fake(r), fake(b), cfg.gpio.active_low, patterns);
        let (oled, probe) = if cfg.display.enabled {
            let (i2c, probe) = FakeSsd1306::new(cfg.display.address);
            let label = format!("simulated SSD1306 @ {:#04x}", cfg.display.address);
            (
                Some(Oled::new(
                    i2c,
                    cfg.display.address,
                    cfg.display.rotate180,
                    label,
                )),
                Some(probe),
            )
        } else {
            (None, None)
        };
        let outputs = InlineOutputs::new(signals, oled, probe, a.display_dump.clone());
        let mut clock: Box<dyn Clock> = if is_camera {
            Box::new(SystemClock::new())
        } else {
            Box::new(SimClock::default())
        };
        let stdout = std::io::stdout();
        let mut sink = |e: Event| {
            note_first(&e);
            let mut out = stdout.lock();
            let _ = serde_json::to_writer(&mut out, &e);
            let _ = out.write_all(b"\n");
        };
        go(
            pipeline,
            outputs,
            loop_cfg,
            &mut *src,
            &mut *clock,
            &stop,
            &mut sink,
        )?
    } else {
        let pins =
            hw::open_pins(cfg.gpio.backend, &cfg.gpio.chip, [g, r, b]).map_err(|e| anyhow!(e))?;
        let [g, r, b] = pins;
        let signals = Signals::new(g, r, b, cfg.gpio.active_low, patterns);
        let oled = if cfg.display.enabled {
            let bus_backend = match cfg.gpio.backend {
                Backend::Rppal => Backend::Rppal,
                _ => Backend::Cdev,
            };
            match hw::open_i2c(bus_backend, cfg.display.i2c_bus) {
                Ok(i2c) => {
                    let label = format!(
                        "/dev/i2c-{} @ {:#04x}",
                        cfg.display.i2c_bus, cfg.display.address
                    );
                    Some(Oled::new(
                        i2c,
                        cfg.display.address,
                        cfg.display.rotate180,
                        label,
                    ))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no display; running without it");
                    None
                }
            }
        } else {
            None
        };
        let outputs =
            ThreadedOutputs::spawn(signals, oled).context("cannot start output threads")?;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let mut clock = SystemClock::new();
        go(
            pipeline,
            outputs,
            loop_cfg,
            &mut *src,
            &mut clock,
            &stop,
            &mut |e| note_first(&e),
        )?
    };
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    drop(http);
    let fps = if summary.elapsed.is_zero() {
        0.0
    } else {
        summary.frames as f64 / summary.elapsed.as_secs_f64()
    };
    tracing::info!(
        frames = summary.frames,
        verdicts = summary.verdicts,
        reopens = summary.reopens,
        fps = format_args!("{fps:.1}"),
        pipeline_ms_per_frame = format_args!(
            "{:.1}",
            summary.busy.as_secs_f64() * 1e3 / summary.frames.max(1) as f64
        ),
        first_verdict_ms = first_verdict.map(|d| d.as_millis() as u64),
        "stopped"
    );
    Ok(ExitCode::SUCCESS)
}

fn go<O: Outputs>(
    pipeline: Pipeline,
    outputs: O,
    cfg: LoopConfig,
    src: &mut dyn source::FrameSource,
    clock: &mut dyn Clock,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(Event),
) -> Result<Summary> {
    let mut k = Kiosk::new(pipeline, outputs, cfg);
    Ok(k.run(src, clock, stop, sink)?)
}
