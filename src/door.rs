//! The door assembled from its settings: models → pipeline, the frame source, the outputs
//! (real GPIO / I2C or simulated), the status listener and the event sinks; then the frame loop
//! and one ordered shutdown. `maskgate run` is this plus argument parsing.
//!
//! Where things go: a new output device is an [`Indicator`] in `src/indicator/` with a config
//! section, added to the list in [`indicators`]; a new event publisher is an [`EventSink`]
//! (like `publish::mqtt`) added in [`Door::assemble`] or handed to [`Door::add_sink`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::{Clock, SimClock, SystemClock};
use crate::config::{self, Config};
use crate::engine::EngineError;
use crate::error::InvalidSetting;
use crate::indicator::display::Oled;
use crate::indicator::hw::{self, Backend, HwError, HwI2c};
use crate::indicator::sim::{SimPin, SimSsd1306};
use crate::indicator::{Indicator, Signals};
use crate::kiosk::metrics::KioskMetrics;
use crate::kiosk::outputs::{InlineOutputs, Outputs, ThreadedOutputs};
use crate::kiosk::run::{Kiosk, LoopConfig, Summary};
use crate::kiosk::selftest;
use crate::kiosk::{Event, EventSink};
use crate::models::{self, ModelError};
use crate::publish::mqtt::{door_id, MqttSink};
use crate::serve::auth::{self, AuthError};
use crate::serve::live::LiveView;
use crate::serve::{DoorInfo, DoorLink, ServeConfig, Server, Shared};
use crate::source::{self, FrameSource, SourceError};
use crate::{systemd, Pipeline};

/// Why the door could not be put together; each names the setting, device or file.
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    #[error(transparent)]
    Setting(#[from] InvalidSetting),
    #[error(transparent)]
    Models(#[from] ModelError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Hardware(#[from] HwError),
    #[error("cannot create {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot listen on {listen}: {source}")]
    Listen {
        listen: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot start output threads: {0}")]
    Threads(#[source] io::Error),
}

/// Real pins and bus, or the simulated ones (`--simulate`).
#[derive(Clone, Debug)]
pub enum Mode {
    Hardware,
    /// Simulated pins and SSD1306; folder / image sources play on a simulated clock.
    /// `display_dump`: every distinct OLED picture as NNNN.png.
    Simulate {
        display_dump: Option<PathBuf>,
    },
}

/// The two model files `model` names: explicit files as given, the rest the shipped ones for
/// its input size (from `model.models_dir`, else the default search folders).
pub fn model_files(model: &config::Model) -> Result<(PathBuf, PathBuf), DoorError> {
    let some = |s: &String| (!s.is_empty()).then(|| PathBuf::from(s));
    let (dir, det, cls) = (
        some(&model.models_dir),
        some(&model.detector),
        some(&model.classifier),
    );
    let choice = models::Choice {
        dir: dir.as_deref(),
        detector: det.as_deref(),
        classifier: cls.as_deref(),
    };
    Ok(models::resolve(choice, model.size()?)?)
}

/// Loads the pipeline `model` describes with `threads` inference threads.
pub fn pipeline(model: &config::Model, threads: usize) -> Result<Pipeline, DoorError> {
    let (det, cls) = model_files(model)?;
    load(&det, &cls, model, threads)
}

/// A pipeline from resolved model files with `model`'s thresholds.
fn load(
    det: &Path,
    cls: &Path,
    model: &config::Model,
    threads: usize,
) -> Result<Pipeline, DoorError> {
    let pipe = Pipeline::load(det, cls, threads.max(1), model.pipeline_config())?;
    // a shipped name promises a size; a file of another size under it would run silently
    // with priors, boxes and speed of the other size
    if model.detector.is_empty() {
        let want = model.size()?;
        let got = (pipe.detector.width, pipe.detector.height);
        if got != want {
            return Err(DoorError::Engine(EngineError::Mismatch {
                path: det.to_path_buf(),
                msg: format!(
                    "its input is {}x{}, but the file is the shipped name for {}x{} \
                     (model.input_size / --input-size); replace it with the shipped file, \
                     or name it with model.detector / --detector",
                    got.0, got.1, want.0, want.1
                ),
            }));
        }
    }
    Ok(pipe)
}

/// What `maskgate run` plays, besides the config.
#[derive(Clone, Debug)]
pub struct Spec {
    /// "camera", a /dev/videoN, a video file, a folder of images or one image.
    pub source: String,
    /// Frame rate of folder / image sources; 0 = as fast as the loop runs.
    pub fps: f64,
    pub mode: Mode,
    pub max_frames: Option<u64>,
    /// The board profile's name (or file), shown on the status page; "" when none.
    pub board: String,
    /// Simulation on the wall clock (a demo to watch) instead of the simulated one.
    pub realtime: bool,
    /// Play a folder or image source forever (`run --loop`).
    pub repeat: bool,
}

/// A door ready to run.
pub struct Door {
    kiosk: Kiosk<Box<dyn Outputs>>,
    source: Box<dyn FrameSource + Send>,
    clock: Box<dyn Clock>,
    sinks: Vec<Box<dyn EventSink>>,
    http: Option<Server>,
    hardware: bool,
    /// Assembly began: "start to first verdict" is what an installer waits for after a reboot.
    started: Instant,
}

impl Door {
    /// Loads the models, opens the source, the outputs and (with `http.listen`) the status
    /// listener. `cfg` must have passed [`Config::validate`] (or come from [`Config::load`]).
    pub fn assemble(cfg: &Config, spec: Spec) -> Result<Self, DoorError> {
        let started = Instant::now();
        let (det, cls) = model_files(&cfg.model)?;
        if !spec.repeat {
            source::check(&spec.source, &cfg.camera)?;
        }
        let pipeline = load(&det, &cls, &cfg.model, cfg.model.threads)?;
        let source = if spec.repeat {
            source::open_repeating(&spec.source, spec.fps)?
        } else {
            source::open(&spec.source, &cfg.camera, spec.fps)?
        };
        let simulate = matches!(spec.mode, Mode::Simulate { .. });
        tracing::info!(source = %source.describe(), detector = %det.display(), threads = cfg.model.threads,
            simulate, "maskgate run starting");
        let metrics = Arc::new(KioskMetrics::default());
        let mut loop_cfg = loop_config(cfg, simulate, spec.max_frames, metrics.clone())?;
        let mut sinks: Vec<Box<dyn EventSink>> = Vec::new();
        if let Some(m) = mqtt(cfg, &metrics) {
            sinks.push(Box::new(m));
        }
        let info = DoorInfo {
            board: spec.board.clone(),
            camera: source.describe(),
            display: cfg.display.enabled.then(|| {
                let what = if simulate { "simulated " } else { "" };
                format!(
                    "{what}SSD1306 /dev/i2c-{} @ {:#04x}",
                    cfg.display.i2c_bus, cfg.display.address
                )
            }),
            mqtt: (!cfg.mqtt.url.is_empty()).then(|| broker(&cfg.mqtt.url)),
            selftest: Vec::new(),
        };
        let http = match listener(cfg, &det, &cls, &metrics, info, &mut loop_cfg)? {
            Some((server, shared)) => {
                sinks.push(Box::new(shared));
                Some(server)
            }
            None => None,
        };
        let is_camera = source::is_live(&spec.source);
        let clock: Box<dyn Clock> = if simulate && !is_camera && !spec.realtime {
            Box::new(SimClock::default())
        } else {
            Box::new(SystemClock::new())
        };
        let outputs = outputs(cfg, &spec.mode, &metrics)?;
        Ok(Self {
            kiosk: Kiosk::new(pipeline, outputs, loop_cfg),
            source,
            clock,
            sinks,
            http,
            hardware: !simulate,
            started,
        })
    }

    /// Another receiver of every kiosk event (JSON lines, MQTT, ...), after those already added.
    pub fn add_sink(&mut self, sink: Box<dyn EventSink>) {
        self.sinks.push(sink);
    }

    /// Runs until the source ends, `stop` is set or inference fails, then shuts down in order,
    /// one log line per stage: frames stop; outputs off and OUT OF SERVICE on the display (the
    /// kiosk loop does this on every way out); systemd told; the listener closed.
    pub fn run(mut self, stop: &AtomicBool) -> Result<Summary, EngineError> {
        if self.hardware {
            systemd::ready();
        }
        systemd::status(&format!("running: {}", self.source.describe()));
        let startup = self.started.elapsed();
        let sinks = &mut self.sinks;
        let res = self.kiosk.run(
            &mut *self.source,
            &mut *self.clock,
            stop,
            &mut |e: Event| sinks.iter_mut().for_each(|s| s.event(&e)),
        );
        let why = if stop.load(std::sync::atomic::Ordering::Relaxed) {
            "stop requested"
        } else if res.is_err() {
            "inference failed"
        } else {
            "source ended"
        };
        tracing::info!(reason = why, "shutdown 1/5: frames stopped");
        tracing::info!("shutdown 2/5: outputs off, display shows OUT OF SERVICE");
        self.sinks.iter_mut().for_each(|s| s.close());
        tracing::info!("shutdown 3/5: event sinks closed");
        systemd::stopping();
        systemd::status(&format!("stopping: {why}"));
        tracing::info!("shutdown 4/5: systemd told STOPPING");
        if let Some(server) = self.http.take() {
            drop(server);
            tracing::info!("shutdown 5/5: status listener closed");
        } else {
            tracing::info!("shutdown 5/5: no listener to close");
        }
        let summary = res?;
        log_summary(&summary, startup);
        Ok(summary)
    }
}

/// The MQTT publisher when `mqtt.url` is set. A bad setting is logged with its name and the
/// door runs without MQTT: a kiosk must not stay dark over a fleet setting.
fn mqtt(cfg: &Config, metrics: &KioskMetrics) -> Option<MqttSink> {
    if cfg.mqtt.url.is_empty() {
        return None;
    }
    let counted = (metrics.mqtt_connected.clone(), metrics.mqtt_dropped.clone());
    match door_id(&cfg.service.door_id)
        .and_then(|id| MqttSink::start_counted(&cfg.mqtt, &id, counted))
    {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!(error = %e, "MQTT off; the door runs without it");
            None
        }
    }
}

/// The frame loop's settings from the config.
fn loop_config(
    cfg: &Config,
    simulate: bool,
    max_frames: Option<u64>,
    metrics: Arc<KioskMetrics>,
) -> Result<LoopConfig, DoorError> {
    let save_dir = (!cfg.service.save_verdict_images.is_empty())
        .then(|| PathBuf::from(&cfg.service.save_verdict_images));
    if let Some(d) = &save_dir {
        create_dir(d)?;
        tracing::info!(dir = %d.display(), "verdict images will be stored");
    }
    Ok(LoopConfig {
        decide: cfg.decide(),
        status_interval: Duration::from_millis(cfg.service.status_interval_ms.max(100)),
        watchdog: systemd::Watchdog::from_env(cfg.service.watchdog && !simulate).period(),
        save_dir,
        save_max_bytes: cfg.service.verdict_images_max_mb << 20,
        max_frames,
        metrics,
        live: None,
        selftest: None,
    })
}

/// A broker URL as the page shows it: scheme, host and port, never credentials (stripped by
/// the one function that strips them from camera URLs too).
fn broker(url: &str) -> String {
    let shown = source::stream::redact(url);
    match shown.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)),
        None => shown,
    }
}

fn create_dir(path: &Path) -> Result<(), DoorError> {
    std::fs::create_dir_all(path).map_err(|source| DoorError::Folder {
        path: path.to_path_buf(),
        source,
    })
}

/// The kiosk's status page and endpoints (uploads when `http.allow_upload`, on one worker;
/// the live view when `http.live_view`); hands the live view and the self-test switch to the
/// frame loop.
fn listener(
    cfg: &Config,
    det: &Path,
    cls: &Path,
    metrics: &Arc<KioskMetrics>,
    mut info: DoorInfo,
    loop_cfg: &mut LoopConfig,
) -> Result<Option<(Server, Arc<Shared>)>, DoorError> {
    let Some(listen) = cfg.http.listen_addr()? else {
        return Ok(None);
    };
    let token = auth::for_listener(listen, &cfg.http.token_file)?;
    let live = cfg
        .http
        .live_view
        .then(|| Arc::new(LiveView::new(cfg.decision.min_face_px)));
    let request = selftest::Request {
        flag: Arc::default(),
        steps: selftest::steps(cfg),
    };
    info.selftest = request.steps.iter().map(|s| s.what.clone()).collect();
    let shared = Shared::for_door(DoorLink {
        info,
        metrics: metrics.clone(),
        live: live.clone(),
        selftest: request.flag.clone(),
    });
    loop_cfg.live = live;
    loop_cfg.selftest = Some(request);
    if cfg.http.live_view {
        tracing::info!("live view on: GET /snapshot.jpg and /live.mjpg show the camera");
    }
    let pipes = if cfg.http.allow_upload {
        vec![load(det, cls, &cfg.model, 1)?]
    } else {
        vec![]
    };
    let scfg = ServeConfig {
        listen,
        workers: 1,
        token,
        ..ServeConfig::default()
    };
    let server =
        Server::start(scfg, pipes, shared.clone()).map_err(|source| DoorError::Listen {
            listen: cfg.http.listen.clone(),
            source,
        })?;
    Ok(Some((server, shared)))
}

/// LEDs, buzzer, further indicators and the display: simulated inline on the loop's clock, or
/// real on their own threads.
pub fn outputs(
    cfg: &Config,
    mode: &Mode,
    metrics: &KioskMetrics,
) -> Result<Box<dyn Outputs>, DoorError> {
    let patterns = cfg.patterns()?;
    let [g, r, b] = cfg.gpio.pins();
    match mode {
        Mode::Simulate { display_dump } => {
            if let Some(d) = display_dump {
                create_dir(d)?;
            }
            let sim = |p: Option<u32>| p.map(|_| SimPin::default());
            let signals = Signals::new(sim(g), sim(r), sim(b), cfg.gpio.active_low, patterns);
            let (oled, probe) = if cfg.display.enabled {
                let (i2c, probe) = SimSsd1306::new(cfg.display.address);
                let label = format!("simulated SSD1306 @ {:#04x}", cfg.display.address);
                let o = oled(cfg, i2c, label).with_up_gauge(metrics.display_up.clone());
                (Some(o), Some(probe))
            } else {
                (None, None)
            };
            let mut out = InlineOutputs::new(signals, oled, probe, display_dump.clone());
            for i in indicators(cfg)? {
                out = out.with(i);
            }
            Ok(Box::new(out))
        }
        Mode::Hardware => {
            let [g, r, b] = hw::open_pins(cfg.gpio.backend, &cfg.gpio.chip, [g, r, b])?;
            let mut list: Vec<Box<dyn Indicator>> = vec![Box::new(Signals::new(
                g,
                r,
                b,
                cfg.gpio.active_low,
                patterns,
            ))];
            list.extend(indicators(cfg)?);
            let display = hw_display(cfg).map(|o| o.with_up_gauge(metrics.display_up.clone()));
            let out = ThreadedOutputs::spawn(list, display).map_err(DoorError::Threads)?;
            Ok(Box::new(out))
        }
    }
}

/// Indicators beyond the LED / buzzer lines, from their config sections. None ship yet: a door
/// relay or an LED strip is one `src/indicator/<device>.rs` implementing [`Indicator`], a config
/// section, and one line here.
pub fn indicators(_cfg: &Config) -> Result<Vec<Box<dyn Indicator>>, DoorError> {
    Ok(Vec::new())
}

fn oled<I: embedded_hal::i2c::I2c>(cfg: &Config, i2c: I, label: String) -> Oled<I> {
    Oled::new(i2c, cfg.display.address, cfg.display.rotate180, label)
}

/// The I2C library follows the GPIO one: Raspberry Pi boards (gpio.backend "rppal") use rppal,
/// every other board (gpio.backend "cdev" or "none") the kernel's i2c-dev.
pub fn i2c_backend(gpio: Backend) -> Backend {
    match gpio {
        Backend::Rppal => Backend::Rppal,
        Backend::Cdev | Backend::None => Backend::Cdev,
    }
}

/// The real display, or none (logged once: the door runs without it).
fn hw_display(cfg: &Config) -> Option<Oled<HwI2c>> {
    if !cfg.display.enabled {
        return None;
    }
    let path = format!("/dev/i2c-{}", cfg.display.i2c_bus);
    match hw::open_i2c(i2c_backend(cfg.gpio.backend), cfg.display.i2c_bus) {
        // the kernel's own answer, once: such a bus can never carry the display's writes,
        // so no retries either
        Ok(_) if matches!(hw::i2c_plain_transfers(&path), Ok(false)) => {
            tracing::warn!(display = %path,
                "no display: the I2C adapter behind it does SMBus transfers only, and the SSD1306 needs plain I2C writes; running without it");
            None
        }
        Ok(i2c) => {
            let label = format!(
                "/dev/i2c-{} @ {:#04x}",
                cfg.display.i2c_bus, cfg.display.address
            );
            Some(oled(cfg, i2c, label))
        }
        Err(e) => {
            tracing::warn!(error = %e, "no display; running without it");
            None
        }
    }
}

fn log_summary(s: &Summary, startup: Duration) {
    let fps = if s.elapsed.is_zero() {
        0.0
    } else {
        s.frames as f64 / s.elapsed.as_secs_f64()
    };
    tracing::info!(
        frames = s.frames,
        verdicts = s.verdicts,
        reopens = s.reopens,
        fps = format_args!("{fps:.1}"),
        pipeline_ms_per_frame =
            format_args!("{:.1}", s.busy.as_secs_f64() * 1e3 / s.frames.max(1) as f64),
        first_verdict_ms = s.first_verdict.map(|d| (startup + d).as_millis() as u64),
        "stopped"
    );
}

/// SIGINT / SIGTERM set the returned flag (the loop stops at its next frame); a second one,
/// while the first is being handled, exits at once with status 1.
pub fn stop_on_signals() -> io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // order matters: the conditional exit must see the flag before this signal sets it
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_shows_a_broker_without_credentials_or_path() {
        assert_eq!(
            broker("mqtts://door:pw@10.0.0.5:8883/x"),
            "mqtts://10.0.0.5:8883"
        );
        assert_eq!(broker("mqtt://broker.local"), "mqtt://broker.local");
    }

    #[test]
    fn the_i2c_library_follows_the_gpio_one() {
        assert_eq!(i2c_backend(Backend::Rppal), Backend::Rppal);
        assert_eq!(i2c_backend(Backend::Cdev), Backend::Cdev);
        assert_eq!(i2c_backend(Backend::None), Backend::Cdev);
    }

    #[test]
    fn explicit_model_files_and_a_bad_size_are_typed() {
        let m = config::Model {
            input_size: "800x600".into(),
            ..config::Model::default()
        };
        assert!(matches!(
            model_files(&m),
            Err(DoorError::Models(ModelError::NoShippedDetector(800, 600)))
        ));
        let m = config::Model {
            input_size: "800x600".into(),
            detector: "d.tflite".into(),
            classifier: "c.tflite".into(),
            models_dir: "/nonexistent".into(),
            ..config::Model::default()
        };
        let (d, c) = model_files(&m).unwrap();
        assert_eq!(
            (d, c),
            (PathBuf::from("d.tflite"), PathBuf::from("c.tflite"))
        );
    }

    #[test]
    fn simulated_outputs_start_dark_and_off() {
        let cfg = Config::default();
        let metrics = KioskMetrics::default();
        let mut out = outputs(&cfg, &Mode::Simulate { display_dump: None }, &metrics).unwrap();
        let mut events = Vec::new();
        out.drain(&mut |e| events.push(e));
        assert!(events.is_empty(), "{events:?}");
    }
}
