//! Where frames come from: a V4L2 camera ([`camera`]), or a video file ([`video`]), a
//! directory or a single image ([`files`]) for demos and tests. Every source writes packed RGB8 into the loop's own
//! [`RgbFrame`], so the frame path reuses one buffer.

pub mod camera;
pub mod convert;
pub mod files;
pub mod latest;
pub mod stream;
pub mod video;

use std::path::Path;

use crate::clock::Clock;
use crate::ImageView;
use latest::{Latest, PixelFormat, RawFrame, Take};

/// A reusable RGB8 frame buffer.
#[derive(Default)]
pub struct RgbFrame {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl RgbFrame {
    /// Sets the size, keeping the allocation when it is big enough.
    pub fn set_size(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
        self.data.resize(width as usize * height as usize * 3, 0);
    }

    pub fn view(&self) -> Option<ImageView<'_>> {
        ImageView::new(&self.data, self.width, self.height)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source cannot be opened (wrong path, no permission, no such mode).
    #[error("{0}")]
    Open(String),
    /// The source was working and stopped (unplugged camera, driver error, stall).
    #[error("{0}")]
    Lost(String),
}

pub trait FrameSource {
    /// Waits for the newest frame and writes it into `out`; `Ok(false)` when a finite source
    /// is exhausted. Frames that arrived while the caller was busy are dropped.
    fn next_frame(
        &mut self,
        clock: &mut dyn Clock,
        out: &mut RgbFrame,
    ) -> Result<bool, SourceError>;
    /// Tries to get going again after an error.
    fn reopen(&mut self) -> Result<(), SourceError>;
    /// For log lines: device and granted mode, or path.
    fn describe(&self) -> String;
}

/// No frame for this long means a live source (camera, stream) is gone.
pub const STALL: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits up to `wait` for a frame newer than `seen` from a capture thread and swaps it into
/// `front`; a failed or silent producer is the source lost. `who` names it in errors.
fn take_newest(
    latest: &Latest,
    seen: &mut u64,
    front: &mut RawFrame,
    who: &str,
    wait: std::time::Duration,
) -> Result<(), SourceError> {
    match latest.take_newer(*seen, front, wait) {
        Take::Frame(seq) => {
            *seen = seq;
            Ok(())
        }
        Take::Failed(e) => Err(SourceError::Lost(format!("{who}: {e}"))),
        Take::Timeout => Err(SourceError::Lost(format!(
            "{who}: no frame for {} s",
            wait.as_secs()
        ))),
    }
}

/// The live sources' frame step: [`take_newest`], then the frame converted into `out`.
fn newest_as_rgb(
    latest: &Latest,
    seen: &mut u64,
    front: &mut RawFrame,
    scratch: &mut Vec<u8>,
    out: &mut RgbFrame,
    who: &str,
    wait: std::time::Duration,
) -> Result<bool, SourceError> {
    take_newest(latest, seen, front, who, wait)?;
    let f = &*front;
    let (w, h) = (f.width as usize, f.height as usize);
    // a corrupt frame (flaky USB link, a broken packet) is reported; the source stays open
    let bad = |e: convert::FrameError| SourceError::Lost(format!("{who}: {e}"));
    match f.format {
        PixelFormat::Yuyv => {
            out.set_size(f.width, f.height);
            convert::yuyv_to_rgb(&f.data, w, h, f.stride as usize, &mut out.data).map_err(bad)?;
        }
        PixelFormat::Mjpeg => {
            let (w, h) = convert::mjpeg_to_rgb(&f.data, scratch, &mut out.data).map_err(bad)?;
            out.width = w;
            out.height = h;
        }
        PixelFormat::Rgb24 => {
            if f.data.len() != w * h * 3 {
                return Err(bad(convert::FrameError::BufferSize));
            }
            out.set_size(f.width, f.height);
            out.data.copy_from_slice(&f.data);
        }
        PixelFormat::I420 => {
            out.set_size(f.width, f.height);
            convert::i420_to_rgb(&f.data, w, h, &mut out.data).map_err(bad)?;
        }
    }
    Ok(true)
}

/// Opens `spec`: "camera" (`cam.device`), a /dev/video* path (camera with `cam`), an IP
/// camera URL or `rpicam[:N]` ([`stream`], sized by `cam`), a video file (played at its own
/// rate), a directory or an image file (at `fps`).
pub fn open(
    spec: &str,
    cam: &camera::CameraConfig,
    fps: f64,
) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    let p = Path::new(spec);
    let device = if spec == "camera" {
        cam.device.as_str()
    } else {
        spec
    };
    if let Some(s) = stream::Stream::parse(device) {
        return Ok(Box::new(stream::StreamSource::open(s, cam.clone())?));
    }
    if spec.starts_with("/dev/video") || spec == "camera" {
        let mut c = cam.clone();
        if spec != "camera" {
            c.device = spec.to_string();
        }
        return Ok(Box::new(match camera::Camera::open(c.clone()) {
            Ok(cam) => cam,
            Err(e) => {
                // keep the door alive: "camera offline" on screen, retried with back-off
                tracing::warn!(error = %e, "camera not available at start; will keep trying");
                camera::Camera::closed(c)
            }
        }));
    }
    if p.is_file() && is_video(p) {
        return Ok(Box::new(video::VideoSource::open(p)?));
    }
    Ok(Box::new(files::FileSource::open(p, fps)?))
}

/// What [`open`] would refuse before it starts anything (a stream's URL or frame size, its
/// program missing, a camera name that is no kind maskgate reads), checked without opening:
/// the door runs it before its models load.
pub fn check(spec: &str, cam: &camera::CameraConfig) -> Result<(), SourceError> {
    let device = if spec == "camera" {
        cam.device.as_str()
    } else {
        spec
    };
    match stream::Stream::parse(device) {
        Some(s) => s.check(cam),
        None => stream::Stream::refuse_misnamed(device),
    }
}

/// Whether `spec` is a live source ("camera" is one whatever `camera.device` names), played
/// on the wall clock even in simulation.
pub fn is_live(spec: &str) -> bool {
    spec == "camera" || spec.starts_with("/dev/video") || stream::Stream::parse(spec).is_some()
}

/// Opens `spec`, a folder or an image, to play at `fps` forever (`run --loop`); cameras and
/// video files are refused.
pub fn open_repeating(spec: &str, fps: f64) -> Result<Box<dyn FrameSource + Send>, SourceError> {
    let p = Path::new(spec);
    if !(p.is_dir() || p.is_file()) || is_video(p) {
        return Err(SourceError::Open(format!(
            "--loop plays a folder or an image, not {spec}"
        )));
    }
    Ok(Box::new(files::FileSource::open(p, fps)?.repeating()))
}

/// Video containers by extension (images are recognised by content, videos by ffprobe).
fn is_video(p: &Path) -> bool {
    let ext = p
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    matches!(
        ext.as_str(),
        "mp4" | "m4v" | "mkv" | "mov" | "avi" | "webm" | "mpg" | "mpeg" | "ts" | "h264"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_names_of_no_kind_are_refused_before_anything_opens() {
        let cam = camera::CameraConfig::default();
        let said = |spec: &str| match check(spec, &cam) {
            Err(SourceError::Open(m)) => m,
            other => format!("{other:?}"),
        };
        assert_eq!(
            said("ftp://u:pw@cam/x"),
            "ftp://cam/x: not a camera URL maskgate reads (rtsp://, rtsps://, http://, https://)"
        );
        assert_eq!(
            said("rpicam:abc"),
            "rpicam:abc: the Pi camera is rpicam or rpicam:N, N its number (0, 1)"
        );
        // a misspelling is said as one, not looked for as a file
        assert!(said("rpicam-1").starts_with("rpicam-1: the Pi camera is"));
        // V4L2 devices, files and folders are for open to find
        for spec in ["/dev/video7", "camera", "samples", "no/such/file.jpg"] {
            assert_eq!(said(spec), "Ok(())");
        }
    }
}
