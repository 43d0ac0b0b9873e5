//! The kiosk's configuration: TOML, every field optional with the default written here, and
//! unknown keys refused (a typo must fail at start-up, not be ignored for months).
//!
//! Layers, later wins: built-in defaults → board profile (`--board`, from `boards/`) →
//! config file (`--config`) → command-line flags.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bounded_read::{read_to_string, TEXT_LIMIT};
use crate::error::InvalidSetting;
use crate::PipelineConfig;

use crate::indicator::buzzer::Pattern;
use crate::indicator::hw::Backend;
use crate::indicator::Patterns;
use crate::kiosk::decide::DecideConfig;
use crate::publish::mqtt::MqttConfig;
use crate::source::camera::CameraConfig;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub camera: CameraConfig,
    pub model: Model,
    pub decision: DecideConfig,
    pub gpio: Gpio,
    pub buzzer: Buzzer,
    pub display: Display,
    pub service: Service,
    pub http: Http,
    pub mqtt: MqttConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    /// Detector input size: "640x480" (default) or "320x240" (3x faster, misses more far faces).
    pub input_size: String,
    /// Inference threads. Default 4 (one per core on a Pi 4 / 5).
    pub threads: usize,
    /// Minimum face probability. Default 0.7.
    pub score_threshold: f32,
    /// NMS overlap. Default 0.4.
    pub nms_iou: f32,
    /// P(mask) at or above which a face counts as masked. Default 0.5.
    pub mask_threshold: f32,
    /// Model folder; empty = next to the binary, then ./models/quantized. Default "".
    pub models_dir: String,
    /// A detector file instead of the shipped one for `input_size`. Default "".
    pub detector: String,
    /// A classifier file instead of the shipped one. Default "".
    pub classifier: String,
}

impl Model {
    /// `input_size` as (width, height).
    pub fn size(&self) -> Result<(u32, u32), InvalidSetting> {
        let s = &self.input_size;
        crate::models::parse_size(s).map_err(|e| {
            InvalidSetting::new("model.input_size", format!("model.input_size {s:?}: {e}"))
        })
    }

    /// Every `[model]` number in its range; NaN is out of every range. The command-line flags
    /// of `image`, `video` and `serve` land here too ([`Config::validate`]), so a flag and its
    /// config key are refused alike.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.threads == 0 || self.threads > MAX_THREADS {
            // far more threads than cores only slows inference; tens of thousands crash the
            // TFLite runtime's thread pool
            return Err(InvalidSetting::new(
                "model.threads",
                format!(
                    "model.threads (--threads) must be 1..={MAX_THREADS}, got {} (this machine has {} cores)",
                    self.threads,
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                ),
            ));
        }
        unit(
            "model.score_threshold",
            "--score-threshold",
            self.score_threshold,
        )?;
        unit("model.nms_iou", "--nms-iou", self.nms_iou)?;
        unit(
            "model.mask_threshold",
            "--mask-threshold",
            self.mask_threshold,
        )?;
        self.size()?;
        Ok(())
    }

    pub fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig {
            score_threshold: self.score_threshold,
            nms_iou: self.nms_iou,
            mask_threshold: self.mask_threshold,
            ..PipelineConfig::default()
        }
    }
}

/// More inference threads than any board has cores; the bound keeps a typo from crashing the
/// runtime (`--threads 16384` did).
pub const MAX_THREADS: usize = 64;

/// A probability or overlap: 0..=1, never NaN.
fn unit(key: &'static str, flag: &str, v: f32) -> Result<(), InvalidSetting> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(InvalidSetting::new(
            key,
            format!("{key} ({flag}) must be in 0..=1, got {v}"),
        ))
    }
}

impl Default for Model {
    fn default() -> Self {
        Self {
            input_size: "640x480".into(),
            threads: 4,
            score_threshold: 0.7,
            nms_iou: 0.4,
            mask_threshold: 0.5,
            models_dir: String::new(),
            detector: String::new(),
            classifier: String::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gpio {
    /// "rppal" (Raspberry Pi, BCM numbers), "cdev" (any Linux board: `chip` + line
    /// offsets) or "none". Default "rppal".
    pub backend: Backend,
    /// GPIO character device for "cdev". Default "/dev/gpiochip0".
    pub chip: String,
    /// Green LED pin (mask). Default 17. Omit a pin to leave it unwired (set it to -1).
    pub green_led: i64,
    /// Red LED pin (no mask). Default 27.
    pub red_led: i64,
    /// Buzzer pin (active buzzer, or a transistor driving one). Default 22.
    pub buzzer: i64,
    /// Outputs that light on a low level (LED to 3V3 through the resistor). Default false.
    pub active_low: bool,
}

impl Default for Gpio {
    fn default() -> Self {
        Self {
            backend: Backend::Rppal,
            chip: "/dev/gpiochip0".into(),
            green_led: 17,
            red_led: 27,
            buzzer: 22,
            active_low: false,
        }
    }
}

impl Gpio {
    /// Pins as (green, red, buzzer); negative = not wired.
    pub fn pins(&self) -> [Option<u32>; 3] {
        [self.green_led, self.red_led, self.buzzer].map(|p| u32::try_from(p).ok())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Buzzer {
    /// Default true.
    pub enabled: bool,
    /// On/off milliseconds for "mask": a short chirp. Default [80].
    pub mask_pattern_ms: Vec<u16>,
    /// For "no mask": three warning beeps. Default [150, 100, 150, 100, 150].
    pub no_mask_pattern_ms: Vec<u16>,
}

impl Default for Buzzer {
    fn default() -> Self {
        Self {
            enabled: true,
            mask_pattern_ms: crate::indicator::MASK_PATTERN_MS.to_vec(),
            no_mask_pattern_ms: crate::indicator::NO_MASK_PATTERN_MS.to_vec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Display {
    /// SSD1306 128x64 on I2C. Default true (a missing display is logged once, not fatal).
    pub enabled: bool,
    /// I2C bus number: /dev/i2c-N. Default 1 (Raspberry Pi header pins 3 / 5).
    pub i2c_bus: u8,
    /// 7-bit address: 0x3C (60, default) or 0x3D (61).
    pub address: u8,
    /// Mounted upside down. Default false.
    pub rotate180: bool,
}

impl Default for Display {
    fn default() -> Self {
        Self {
            enabled: true,
            i2c_bus: 1,
            address: 0x3C,
            rotate180: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Service {
    /// Ping systemd's watchdog from the frame loop when WatchdogSec is set. Default true.
    pub watchdog: bool,
    /// Folder for an annotated JPEG at each verdict. Default "" = never store images.
    pub save_verdict_images: String,
    /// Most megabytes the verdict images may take; the oldest of maskgate's own images there
    /// are deleted beyond it (other files in the folder are never touched). Default 200.
    pub verdict_images_max_mb: u64,
    /// Status line / fps refresh. Default 1000 ms.
    pub status_interval_ms: u64,
    /// This door's name in MQTT topics and Home Assistant. Default "" = the hostname.
    pub door_id: String,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            watchdog: true,
            save_verdict_images: String::new(),
            verdict_images_max_mb: 200,
            status_interval_ms: 1000,
            door_id: String::new(),
        }
    }
}

impl Service {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.verdict_images_max_mb == 0 || self.verdict_images_max_mb > 1 << 20 {
            return Err(InvalidSetting::new(
                "service.verdict_images_max_mb",
                format!(
                    "service.verdict_images_max_mb must be 1..=1048576, got {}",
                    self.verdict_images_max_mb
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Status endpoints for a door controller or dashboard (GET /v1/verdict, /healthz,
    /// /metrics), e.g. "127.0.0.1:3000". Default "" = off.
    pub listen: String,
    /// Also serve POST /v1/detect and /v1/classify (one extra 1-thread pipeline). Default false.
    pub allow_upload: bool,
    /// File holding the token every endpoint but /healthz then requires (Bearer, or the
    /// password of HTTP Basic in a browser); created with a random token on first start when
    /// missing. Required when `listen` is not loopback. Default "" = no token.
    pub token_file: String,
    /// Live view for aiming the camera: GET /snapshot.jpg and /live.mjpg (frames with boxes
    /// and the minimum-face-size guide, a few per second, only while someone watches).
    /// Default false: no picture leaves the door.
    pub live_view: bool,
}

impl Http {
    /// `listen` as an address; `None` when the listener is off.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, InvalidSetting> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        self.listen.parse().map(Some).map_err(|e| {
            InvalidSetting::new(
                "http.listen",
                format!(
                    "http.listen {:?}: {e} (e.g. \"127.0.0.1:3000\")",
                    self.listen
                ),
            )
        })
    }
}

/// Board profiles shipped in `boards/` and built into the binary.
pub const BOARDS: [(&str, &str); 4] = [
    ("rpi4", include_str!("../boards/rpi4.toml")),
    ("rpi5", include_str!("../boards/rpi5.toml")),
    (
        "jetson-orin-nano",
        include_str!("../boards/jetson-orin-nano.toml"),
    ),
    ("jetson-nano", include_str!("../boards/jetson-nano.toml")),
];

/// Deep-merges `over` into `base` (tables merge, everything else replaces).
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Why the configuration cannot be used; the message names the file or the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown board {name:?} (built in: {known}) and cannot read it as a file: {source}")]
    UnknownBoard {
        name: String,
        known: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Not TOML, or not the schema (an unknown key, a wrong type); `what` names the layer.
    #[error("{what}: {source}")]
    Parse {
        what: String,
        #[source]
        source: toml::de::Error,
    },
    #[error(transparent)]
    Invalid(#[from] InvalidSetting),
}

fn parse_table(text: &str, what: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|source| ConfigError::Parse {
            what: what.to_string(),
            source,
        })
}

impl Config {
    /// Builds the config from an optional board (a name from [`BOARDS`] or a TOML path) and an
    /// optional config file; every layer is checked against the schema.
    pub fn load(board: Option<&str>, file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut layers: Vec<(String, String)> = Vec::new();
        if let Some(b) = board {
            layers.push(match BOARDS.iter().find(|(n, _)| *n == b) {
                Some((n, text)) => (format!("board profile {n}"), text.to_string()),
                None => {
                    let p = PathBuf::from(b);
                    let text = read_to_string(&p, TEXT_LIMIT).map_err(|source| {
                        ConfigError::UnknownBoard {
                            name: b.to_string(),
                            known: BOARDS.map(|(n, _)| n).join(", "),
                            source,
                        }
                    })?;
                    (p.display().to_string(), text)
                }
            });
        }
        if let Some(f) = file {
            let text = read_to_string(f, TEXT_LIMIT).map_err(|source| ConfigError::Read {
                path: f.to_path_buf(),
                source,
            })?;
            layers.push((f.display().to_string(), text));
        }
        Self::layered(layers.iter().map(|(w, t)| (w.as_str(), t.as_str())))
    }

    /// The defaults with `layers` (name, TOML text) merged over them in order, each layer
    /// checked against the schema on its own (so an error names its file), the result
    /// validated as a whole. Pure: what [`Config::load`] does once the files are read (and
    /// what `fuzz/` feeds arbitrary text).
    pub fn layered<'a>(
        layers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut t = toml::Table::new();
        for (what, text) in layers {
            let lt = parse_table(text, what)?;
            Self::from_table(lt.clone(), what)?;
            merge(&mut t, lt);
        }
        let c = Self::from_table(t, "config")?;
        c.validate()?;
        Ok(c)
    }

    fn from_table(t: toml::Table, what: &str) -> Result<Self, ConfigError> {
        Config::deserialize(toml::Value::Table(t)).map_err(|source| ConfigError::Parse {
            what: what.to_string(),
            source,
        })
    }

    /// Cross-field checks serde cannot express.
    /// Every range check of every section is here (or in the section's own `validate`, called
    /// from here): the config file and the flags of every subcommand go through it.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.model.validate()?;
        self.decide().validate()?;
        self.patterns()?;
        self.camera.validate()?;
        self.service.validate()?;
        self.http.listen_addr()?;
        Ok(())
    }

    /// The `[decision]` rules with `model.mask_threshold`.
    pub fn decide(&self) -> DecideConfig {
        DecideConfig {
            mask_threshold: self.model.mask_threshold,
            ..self.decision
        }
    }

    pub fn patterns(&self) -> Result<Patterns, InvalidSetting> {
        let p = |v: &[u16], key: &'static str| {
            Pattern::new(v).map_err(|e| InvalidSetting::new(key, format!("{key}: {e}")))
        };
        if !self.buzzer.enabled {
            return Ok(Patterns {
                mask: Pattern::default(),
                no_mask: Pattern::default(),
            });
        }
        Ok(Patterns {
            mask: p(&self.buzzer.mask_pattern_ms, "buzzer.mask_pattern_ms")?,
            no_mask: p(&self.buzzer.no_mask_pattern_ms, "buzzer.no_mask_pattern_ms")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_profile_parses_and_validates() {
        for (name, _) in BOARDS {
            let c = Config::load(Some(name), None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(c.gpio.pins().iter().all(|p| p.is_some()), "{name}");
        }
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = Config::from_table(toml::Table::new(), "test").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.decide(), DecideConfig::default());
        assert_eq!(c.model.size().unwrap(), (640, 480));
    }

    #[test]
    fn a_typo_is_an_error_that_names_the_key() {
        let dir = std::env::temp_dir().join(format!("maskgate-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("typo.toml");
        std::fs::write(&f, "[decision]\nhold_msec = 100\n").unwrap();
        let e = Config::load(None, Some(&f)).unwrap_err().to_string();
        assert!(e.contains("hold_msec"), "{e}");
        std::fs::write(&f, "[gpoi]\n").unwrap();
        let e = Config::load(None, Some(&f)).unwrap_err().to_string();
        assert!(e.contains("gpoi"), "{e}");
        std::fs::write(&f, "[decision]\nagree = 9\n").unwrap();
        let e = Config::load(None, Some(&f)).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid(i) if i.key == "decision.agree"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_overrides_board_field_by_field() {
        let dir = std::env::temp_dir().join(format!("maskgate-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("site.toml");
        std::fs::write(&f, "[gpio]\ngreen_led = 5\n[buzzer]\nenabled = false\n").unwrap();
        let board = Config::load(Some("jetson-orin-nano"), None).unwrap();
        let c = Config::load(Some("jetson-orin-nano"), Some(&f)).unwrap();
        assert_eq!(c.gpio.green_led, 5);
        assert_eq!(c.gpio.red_led, board.gpio.red_led); // kept from the board
        assert_eq!(c.gpio.backend, Backend::Cdev);
        assert!(c.patterns().unwrap().mask.is_empty());
        let e = Config::load(Some("no-such-board"), None).unwrap_err();
        assert!(matches!(e, ConfigError::UnknownBoard { .. }) && e.to_string().contains("rpi4"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
