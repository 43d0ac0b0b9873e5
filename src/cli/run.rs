//! `maskgate run`: the door kiosk. Settings from the board profile, the config file and the
//! flags; the door itself is assembled and run by `maskgate::door`. With `--simulate` the
//! outputs are simulated and every event is printed as a JSON line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use maskgate::config::Config;
use maskgate::door::{self, Door, Mode, Spec};
use maskgate::kiosk::JsonLines;

#[derive(Args)]
pub struct RunArgs {
    /// Board profile: rpi4, rpi5, jetson-orin-nano, jetson-nano, or a TOML file.
    #[arg(long, env = "MASKGATE_BOARD")]
    board: Option<String>,
    /// Site config (TOML) applied over the board profile; unknown keys are an error.
    #[arg(long, env = "MASKGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Frames from: "camera" (camera.device), a /dev/videoN, an rtsp:// or http:// camera,
    /// rpicam[:N], a video file, a folder of images (name order) or one image.
    #[arg(long, default_value = "camera")]
    source: String,
    /// Frame rate for folder / image sources, up to 1000; 0 = as fast as the loop runs.
    #[arg(long, default_value_t = 15.0, value_parser = parse_fps)]
    fps: f64,
    /// Use the simulated hardware (pins, an SSD1306 decoded in memory) and print JSON
    /// events on stdout. Folder / image sources then run on a simulated clock.
    #[arg(long)]
    simulate: bool,
    /// With --simulate: play on the wall clock (a demo to watch on the status page) instead of
    /// the simulated clock, which runs as fast as the machine can.
    #[arg(long, requires = "simulate")]
    realtime: bool,
    /// Play a folder (or an image) source forever.
    #[arg(long = "loop")]
    repeat: bool,
    /// With --simulate: write every distinct OLED picture to this folder as NNNN.png.
    #[arg(long)]
    display_dump: Option<PathBuf>,
    /// Stop after this many frames (1 or more).
    #[arg(long, value_parser = parse_max_frames)]
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
    /// Overrides mqtt.url: publish to this broker, mqtt://HOST[:PORT] or mqtts://HOST[:PORT].
    #[arg(long, env = "MASKGATE_MQTT")]
    mqtt: Option<String>,
    /// Overrides service.door_id (the door's name in MQTT topics; default the hostname).
    #[arg(long)]
    door_id: Option<String>,
    /// Print the effective configuration (TOML) and exit.
    #[arg(long)]
    print_config: bool,
}

pub fn run(a: RunArgs) -> Result<ExitCode> {
    let cfg = settings(&a)?;
    if a.print_config {
        print!("{}", toml::to_string_pretty(&cfg)?);
        return Ok(ExitCode::SUCCESS);
    }
    let stop = door::stop_on_signals().context("cannot install signal handlers")?;
    let mode = if a.simulate {
        Mode::Simulate {
            display_dump: a.display_dump.clone(),
        }
    } else {
        Mode::Hardware
    };
    let spec = Spec {
        source: a.source.clone(),
        fps: a.fps,
        mode,
        max_frames: a.max_frames,
        board: a.board.clone().unwrap_or_default(),
        realtime: a.realtime,
        repeat: a.repeat,
    };
    let mut door = Door::assemble(&cfg, spec)?;
    if a.simulate {
        door.add_sink(Box::new(JsonLines::stdout()));
    }
    door.run(&stop)?;
    Ok(ExitCode::SUCCESS)
}

/// The highest `--fps` a folder plays at: more is a typo (the loop cannot go faster than its
/// inference anyway; 0 says "as fast as it can").
const MAX_FOLDER_FPS: f64 = 1000.0;

/// `--fps`: 0..=1000 frames per second; NaN and infinity are not rates.
fn parse_fps(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=MAX_FOLDER_FPS).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be 0..={MAX_FOLDER_FPS} frames per second"))
    }
}

/// `--max-frames`: 1 or more (0 frames is no run at all).
fn parse_max_frames(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be 1 or more".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Board profile, then config file, then these flags; checked as a whole.
fn settings(a: &RunArgs) -> Result<Config> {
    let mut cfg = Config::load(a.board.as_deref(), a.config.as_deref())?;
    if let Some(t) = a.threads {
        cfg.model.threads = t;
    }
    if let Some(s) = &a.input_size {
        cfg.model.input_size = s.clone();
    }
    if let Some(d) = &a.models_dir {
        cfg.model.models_dir = d.display().to_string();
    }
    if let Some(u) = &a.mqtt {
        cfg.mqtt.url = u.clone();
    }
    if let Some(d) = &a.door_id {
        cfg.service.door_id = d.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}
