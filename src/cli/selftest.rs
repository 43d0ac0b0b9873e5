//! `maskgate selftest`: each LED, the buzzer and a test screen in turn, each step naming its
//! pin or bus, for an installer checking the wiring before the door goes into service.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use maskgate::clock::{Clock, SystemClock};
use maskgate::config::Config;
use maskgate::door::{self, Mode};
use maskgate::indicator::display::Status;
use maskgate::kiosk::metrics::KioskMetrics;
use maskgate::kiosk::{selftest, EventSink, JsonLines};

#[derive(Args)]
pub struct SelftestArgs {
    /// Board profile: rpi4, rpi5, jetson-orin-nano, jetson-nano, or a TOML file.
    #[arg(long, env = "MASKGATE_BOARD")]
    board: Option<String>,
    /// Site config (TOML) applied over the board profile.
    #[arg(long, env = "MASKGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Simulated pins and display; every output change is printed as a JSON line.
    #[arg(long)]
    simulate: bool,
    /// With --simulate: write every OLED picture to this folder as NNNN.png.
    #[arg(long, requires = "simulate")]
    display_dump: Option<PathBuf>,
}

pub fn run(a: SelftestArgs) -> Result<ExitCode> {
    let cfg = Config::load(a.board.as_deref(), a.config.as_deref())?;
    let mode = if a.simulate {
        Mode::Simulate {
            display_dump: a.display_dump.clone(),
        }
    } else {
        Mode::Hardware
    };
    let metrics = KioskMetrics::default();
    let mut outputs = door::outputs(&cfg, &mode, &metrics)?;
    let stop = door::stop_on_signals().context("cannot install signal handlers")?;
    let steps = selftest::steps(&cfg);
    let mut clock = SystemClock::new();
    let mut events = a.simulate.then(JsonLines::stdout);
    let mut sink = |e: maskgate::kiosk::Event| {
        if let Some(j) = &mut events {
            j.event(&e);
        }
    };
    let n = steps.len();
    selftest::run(
        &steps,
        &mut *outputs,
        &mut clock,
        Status {
            fps_x10: 0,
            camera_ok: true,
        },
        &stop,
        &mut sink,
        &mut |i, s| println!("step {}/{n}: {}", i + 1, s.what),
    );
    outputs.shutdown(clock.now());
    outputs.drain(&mut sink);
    println!("self-test done: each light, sound and screen should have appeared as named");
    Ok(ExitCode::SUCCESS)
}
