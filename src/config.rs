//! The kiosk's configuration: TOML, every field optional with the default written here, and
//! unknown keys refused (a typo must fail at start-up, not be ignored for months).
//!
//! Layers, later wins: built-in defaults → board profile (`--board`, from `boards/`) →
//! config file (`--config`) → command-line flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::kiosk::decide::{DecideConfig, Select, Vote};
use crate::signal::buzzer::Pattern;
use crate::signal::hw::Backend;
use crate::signal::Patterns;
use crate::source::camera::{CameraConfig, Format};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub camera: Camera,
    pub model: Model,
    pub decision: Decision,
    pub gpio: Gpio,
    pub buzzer: Buzzer,
    pub display: Display,
    pub service: Service,
    pub http: Http,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Camera {
    /// V4L2 device. Default "/dev/video0".
    pub device: String,
    /// Requested capture size; the driver may grant another (logged). Default 640x480.
    pub width: u32,
    pub height: u32,
    /// Requested frame rate. Default 15.
    pub fps: u32,
    /// "auto" (YUYV, else MJPEG), "yuyv" or "mjpeg". Default "auto".
    pub format: Format,
}

impl Default for Camera {
    fn default() -> Self {
        let c = CameraConfig::default();
        Self {
            device: c.device,
            width: c.width,
            height: c.height,
            fps: c.fps,
            format: c.format,
        }
    }
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
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Decision {
    /// Whose face decides: "largest" (default), "central" or "all" (everyone must be masked).
    pub select: Select,
    /// "count" (default): `agree` of the last `window` frames; "mean": mean P(mask).
    pub vote: Vote,
    /// Frames considered. Default 5.
    pub window: usize,
    /// Frames that must agree (or the minimum frames for "mean"). Default 3.
    pub agree: usize,
    /// Faces narrower than this many camera pixels are ignored, not guessed. Default 40.
    pub min_face_px: f32,
    /// How long a verdict stays on. Default 2000 ms.
    pub hold_ms: u64,
    /// Nobody in view this long re-arms for the next person. Default 500 ms.
    pub absent_ms: u64,
}

impl Default for Decision {
    fn default() -> Self {
        let d = DecideConfig::default();
        Self {
            select: d.select,
            vote: d.vote,
            window: d.window,
            agree: d.agree,
            min_face_px: d.min_face_px,
            hold_ms: d.hold.as_millis() as u64,
            absent_ms: d.absent.as_millis() as u64,
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
            mask_pattern_ms: crate::signal::MASK_PATTERN_MS.to_vec(),
            no_mask_pattern_ms: crate::signal::NO_MASK_PATTERN_MS.to_vec(),
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
    /// Status line / fps refresh. Default 1000 ms.
    pub status_interval_ms: u64,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            watchdog: true,
            save_verdict_images: String::new(),
            status_interval_ms: 1000,
        }
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

fn parse_table(text: &str, what: &str) -> Result<toml::Table, String> {
    text.parse::<toml::Table>()
        .map_err(|e| format!("{what}: {e}"))
}

impl Config {
    /// Builds the config from an optional board (a name from [`BOARDS`] or a TOML path) and an
    /// optional config file; every layer is checked against the schema.
    pub fn load(board: Option<&str>, file: Option<&Path>) -> Result<Self, String> {
        let mut t = toml::Table::new();
        if let Some(b) = board {
            let (what, text) = match BOARDS.iter().find(|(n, _)| *n == b) {
                Some((n, text)) => (format!("board profile {n}"), text.to_string()),
                None => {
                    let p = PathBuf::from(b);
                    let text = std::fs::read_to_string(&p).map_err(|e| {
                        format!(
                            "unknown board {b:?} (built in: {}) and cannot read it as a file: {e}",
                            BOARDS.map(|(n, _)| n).join(", ")
                        )
                    })?;
                    (p.display().to_string(), text)
                }
            };
            let bt = parse_table(&text, &what)?;
            Self::from_table(bt.clone()).map_err(|e| format!("{what}: {e}"))?;
            merge(&mut t, bt);
        }
        if let Some(f) = file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read config {}: {e}", f.display()))?;
            let ft = parse_table(&text, &f.display().to_string())?;
            Self::from_table(ft.clone()).map_err(|e| format!("{}: {e}", f.display()))?;
            merge(&mut t, ft);
        }
        let c = Self::from_table(t)?;
        c.validate()?;
        Ok(c)
    }

    fn from_table(t: toml::Table) -> Result<Self, String> {
        Config::deserialize(toml::Value::Table(t)).map_err(|e| e.to_string())
    }

    /// Cross-field checks serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        self.decide().validate()?;
        self.patterns()?;
        if self.camera.fps == 0 {
            return Err("camera.fps must be > 0".into());
        }
        self.input_size()?;
        if !self.http.listen.is_empty() {
            self.http
                .listen
                .parse::<std::net::SocketAddr>()
                .map_err(|e| {
                    format!(
                        "http.listen {:?}: {e} (e.g. \"127.0.0.1:3000\")",
                        self.http.listen
                    )
                })?;
        }
        Ok(())
    }

    pub fn input_size(&self) -> Result<(u32, u32), String> {
        let s = &self.model.input_size;
        crate::models::parse_size(s).map_err(|e| format!("model.input_size {s:?}: {e}"))
    }

    pub fn decide(&self) -> DecideConfig {
        let d = &self.decision;
        DecideConfig {
            select: d.select,
            vote: d.vote,
            window: d.window,
            agree: d.agree,
            mask_threshold: self.model.mask_threshold,
            min_face_px: d.min_face_px,
            hold: Duration::from_millis(d.hold_ms),
            absent: Duration::from_millis(d.absent_ms),
        }
    }

    pub fn patterns(&self) -> Result<Patterns, String> {
        let p = |v: &[u16], what: &str| Pattern::new(v).map_err(|e| format!("buzzer.{what}: {e}"));
        if !self.buzzer.enabled {
            return Ok(Patterns {
                mask: Pattern::default(),
                no_mask: Pattern::default(),
            });
        }
        Ok(Patterns {
            mask: p(&self.buzzer.mask_pattern_ms, "mask_pattern_ms")?,
            no_mask: p(&self.buzzer.no_mask_pattern_ms, "no_mask_pattern_ms")?,
        })
    }

    pub fn camera(&self) -> CameraConfig {
        CameraConfig {
            device: self.camera.device.clone(),
            width: self.camera.width,
            height: self.camera.height,
            fps: self.camera.fps,
            format: self.camera.format,
        }
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
        let c = Config::from_table(toml::Table::new()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.decide(), DecideConfig::default());
        assert_eq!(c.input_size().unwrap(), (640, 480));
    }

    #[test]
    fn a_typo_is_an_error_that_names_the_key() {
        let dir = std::env::temp_dir().join(format!("maskgate-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("typo.toml");
        std::fs::write(&f, "[decision]\nhold_msec = 100\n").unwrap();
        let e = Config::load(None, Some(&f)).unwrap_err();
        assert!(e.contains("hold_msec"), "{e}");
        std::fs::write(&f, "[gpoi]\n").unwrap();
        assert!(Config::load(None, Some(&f)).unwrap_err().contains("gpoi"));
        std::fs::write(&f, "[decision]\nagree = 9\n").unwrap();
        assert!(Config::load(None, Some(&f)).unwrap_err().contains("agree"));
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
        assert!(Config::load(Some("no-such-board"), None)
            .unwrap_err()
            .contains("rpi4"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
