//! `maskgate` command line: parses the arguments, starts logging, and hands the subcommand to
//! `cli/<name>.rs`.
//!
//! Exit codes: 0 all inputs processed; 1 could not start (models, runtime, output folder);
//! 2 bad command line; 3 started, but at least one input failed (each named on stderr).

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Image(cli::image::ImageArgs),
    /// Door kiosk: camera (or a folder of images) → verdict per person → LEDs, buzzer, OLED.
    Run(cli::run::RunArgs),
    /// Annotate a video file frame by frame (ffmpeg over pipes), or print per-frame JSON.
    Video(cli::video::VideoArgs),
    /// HTTP API: POST /v1/detect, POST /v1/classify, GET /healthz, GET /metrics, status page.
    Serve(cli::serve::ServeArgs),
    /// Wiring check: each LED, the buzzer and a test screen in turn, naming each pin and bus.
    Selftest(cli::selftest::SelftestArgs),
}

fn main() -> ExitCode {
    // an empty variable means unset (`MASKGATE_MODELS= maskgate ...`), not a flag given an
    // empty value, which clap refuses; cleared before any thread starts
    for var in [
        "MASKGATE_MODELS",
        "MASKGATE_BOARD",
        "MASKGATE_CONFIG",
        "MASKGATE_MQTT",
        "MASKGATE_TOKEN_FILE",
    ] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(var);
        }
    }
    let cli = Cli::parse();
    cli::init_logging();
    let res = match cli.cmd {
        Cmd::Image(a) => cli::image::run(a),
        Cmd::Run(a) => cli::run::run(a),
        Cmd::Video(a) => cli::video::run(a),
        Cmd::Serve(a) => cli::serve::run(a),
        Cmd::Selftest(a) => cli::selftest::run(a),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("maskgate: error: {}", cli::error_chain(&e));
            // a flag out of its range is a bad command line, like clap's own refusals
            if e.downcast_ref::<maskgate::error::InvalidSetting>()
                .is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
