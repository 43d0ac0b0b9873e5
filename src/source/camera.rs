//! V4L2 camera: mmap streaming on a capture thread that keeps only the newest frame, so
//! inference always sees "now" and camera-to-signal latency stays near one frame + one
//! inference. YUYV converts without allocating; MJPEG is decoded by the `image` crate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
use v4l::prelude::*;
use v4l::video::Capture;
use v4l::FourCC;

use super::latest::{Latest, PixelFormat, RawFrame};
use super::{FrameSource, RgbFrame, SourceError};
use crate::clock::Clock;
use crate::error::InvalidSetting;

use super::STALL;

/// The largest side asked of a camera (8K); beyond it is a typo, not a camera.
pub const MAX_SIDE: u32 = 8192;
/// The smallest: below it no face reaches `decision.min_face_px`.
pub const MIN_SIDE: u32 = 16;
/// The highest frame rate asked; the door decides on a few frames per second.
pub const MAX_FPS: u32 = 240;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// YUYV if the driver grants it at the size, else MJPEG.
    Auto,
    Yuyv,
    Mjpeg,
}

/// The `[camera]` config section as it is (serde reads it straight from the TOML).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    /// V4L2 device, an IP camera URL (rtsp://, rtsps://, http://, https://) or "rpicam"
    /// ("rpicam:N" for camera N) for the Pi camera module. Default "/dev/video0".
    pub device: String,
    /// Requested capture size; the driver may grant another (logged). Default 640x480.
    pub width: u32,
    pub height: u32,
    /// Requested frame rate. Default 15.
    pub fps: u32,
    /// "auto" (YUYV, else MJPEG), "yuyv" or "mjpeg". Default "auto".
    pub format: Format,
    /// RTSP cameras: "tcp" (default: no smeared frames from lost UDP packets on Wi-Fi),
    /// "udp", or "auto" (ffmpeg's own: UDP, then TCP).
    pub rtsp_transport: RtspTransport,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtspTransport {
    Tcp,
    Udp,
    Auto,
}

impl CameraConfig {
    /// Every `[camera]` value in its range (called from `Config::validate`); what a stream
    /// can deliver on top of that is `Stream::check`'s.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.device.trim().is_empty() {
            return Err(InvalidSetting::new(
                "camera.device",
                "camera.device is empty: name a /dev/videoN, an rtsp:// or http:// camera, or rpicam",
            ));
        }
        for (key, v) in [("camera.width", self.width), ("camera.height", self.height)] {
            if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
                return Err(InvalidSetting::new(
                    key,
                    format!("{key} must be {MIN_SIDE}..={MAX_SIDE}, got {v}"),
                ));
            }
        }
        if !(1..=MAX_FPS).contains(&self.fps) {
            return Err(InvalidSetting::new(
                "camera.fps",
                format!("camera.fps must be 1..={MAX_FPS}, got {}", self.fps),
            ));
        }
        Ok(())
    }
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            device: "/dev/video0".into(),
            width: 640,
            height: 480,
            fps: 15,
            format: Format::Auto,
            rtsp_transport: RtspTransport::Tcp,
        }
    }
}

pub struct Camera {
    cfg: CameraConfig,
    latest: Arc<Latest>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    front: RawFrame,
    seen: u64,
    scratch: Vec<u8>,
    granted: String,
}

const YUYV: [u8; 4] = *b"YUYV";
const MJPG: [u8; 4] = *b"MJPG";

/// Asks for the configured mode and returns what the driver actually granted.
fn negotiate(dev: &Device, cfg: &CameraConfig) -> std::io::Result<(v4l::Format, u32)> {
    let wanted: &[[u8; 4]] = match cfg.format {
        Format::Auto => &[YUYV, MJPG],
        Format::Yuyv => &[YUYV],
        Format::Mjpeg => &[MJPG],
    };
    let mut granted = dev.format()?;
    for cc in wanted {
        let mut f = dev.format()?;
        f.width = cfg.width;
        f.height = cfg.height;
        f.fourcc = FourCC::new(cc);
        granted = dev.set_format(&f)?;
        if granted.fourcc.repr == *cc {
            break;
        }
    }
    let params = dev.set_params(&v4l::video::capture::Parameters::with_fps(cfg.fps))?;
    let fps = params
        .interval
        .denominator
        .checked_div(params.interval.numerator)
        .unwrap_or(0);
    Ok((granted, fps))
}

impl Camera {
    /// Opens the camera now; an error says why (no device, no permission, no such mode).
    pub fn open(cfg: CameraConfig) -> Result<Self, SourceError> {
        let mut c = Self::closed(cfg);
        c.start()?;
        Ok(c)
    }

    /// A camera that is not open yet: the first `next_frame` fails and the loop's reopen
    /// back-off takes over. A kiosk booted before its camera is plugged in still starts.
    pub fn closed(cfg: CameraConfig) -> Self {
        let device = cfg.device.clone();
        Self {
            cfg,
            latest: Arc::new(Latest::default()),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
            front: RawFrame::default(),
            seen: 0,
            scratch: Vec::new(),
            granted: device,
        }
    }

    fn start(&mut self) -> Result<(), SourceError> {
        let path = self.cfg.device.clone();
        let open_err = |e: std::io::Error| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (add the service user to the video group)"
            } else if e.kind() == std::io::ErrorKind::NotFound {
                " (is the camera plugged in? list devices with `v4l2-ctl --list-devices`)"
            } else {
                ""
            };
            SourceError::Open(format!("camera {path}: {e}{hint}"))
        };
        let dev = Device::with_path(&path).map_err(open_err)?;
        let (fmt, fps) = negotiate(&dev, &self.cfg).map_err(open_err)?;
        let format = match &fmt.fourcc.repr {
            b"YUYV" => PixelFormat::Yuyv,
            b"MJPG" | b"JPEG" => PixelFormat::Mjpeg,
            other => {
                return Err(SourceError::Open(format!(
                    "camera {path} offers {} but maskgate reads YUYV or MJPEG",
                    String::from_utf8_lossy(other)
                )))
            }
        };
        self.granted = format!(
            "{path} {}x{} {} @ {fps} fps",
            fmt.width,
            fmt.height,
            String::from_utf8_lossy(&fmt.fourcc.repr)
        );
        // a format asked by name and not granted is said too (the driver substitutes its own)
        let asked_fourcc = match self.cfg.format {
            Format::Auto => None,
            Format::Yuyv => Some(YUYV),
            Format::Mjpeg => Some(MJPG),
        };
        let other_format = asked_fourcc.is_some_and(|cc| cc != fmt.fourcc.repr);
        if fmt.width != self.cfg.width
            || fmt.height != self.cfg.height
            || fps != self.cfg.fps
            || other_format
        {
            let format = asked_fourcc
                .map(|cc| format!(" {}", String::from_utf8_lossy(&cc)))
                .unwrap_or_default();
            tracing::warn!(asked = %format!("{}x{}{format} @ {} fps", self.cfg.width, self.cfg.height, self.cfg.fps),
                granted = %self.granted, "camera granted a different mode");
        } else {
            tracing::info!(granted = %self.granted, "camera open");
        }
        let mut stream = MmapStream::with_buffers(&dev, Type::VideoCapture, 4).map_err(open_err)?;
        stream.set_timeout(STALL);
        self.latest = Arc::new(Latest::default());
        self.seen = 0;
        self.stop = Arc::new(AtomicBool::new(false));
        let (latest, stop) = (self.latest.clone(), self.stop.clone());
        let (w, h, stride) = (fmt.width, fmt.height, fmt.stride);
        self.thread = Some(
            std::thread::Builder::new()
                .name("capture".into())
                .spawn(move || {
                    let _dev = dev; // the stream needs the device open
                    let mut back = RawFrame::default();
                    while !stop.load(Ordering::Relaxed) {
                        match stream.next() {
                            Ok((buf, meta)) => {
                                let used = (meta.bytesused as usize).min(buf.len());
                                back.data.clear();
                                back.data.extend_from_slice(&buf[..used]);
                                back.width = w;
                                back.height = h;
                                back.stride = stride;
                                back.format = format;
                                latest.publish(&mut back);
                            }
                            Err(e) => {
                                latest.fail(format!("capture failed: {e}"));
                                return;
                            }
                        }
                    }
                })
                .map_err(|e| SourceError::Open(format!("cannot start capture thread: {e}")))?,
        );
        Ok(())
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // the thread wakes within one frame or the stall timeout
            let _ = t.join();
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl FrameSource for Camera {
    fn next_frame(
        &mut self,
        _clock: &mut dyn Clock,
        out: &mut RgbFrame,
    ) -> Result<bool, SourceError> {
        if self.thread.is_none() {
            return Err(SourceError::Lost(format!("{}: not open", self.cfg.device)));
        }
        super::newest_as_rgb(
            &self.latest,
            &mut self.seen,
            &mut self.front,
            &mut self.scratch,
            out,
            &self.cfg.device,
            STALL,
        )
    }

    fn reopen(&mut self) -> Result<(), SourceError> {
        self.shutdown();
        self.start()
    }

    fn describe(&self) -> String {
        self.granted.clone()
    }
}
