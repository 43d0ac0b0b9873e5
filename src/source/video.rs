//! Video files through the `ffmpeg` / `ffprobe` command-line tools over pipes.
//!
//! Why the CLI and not the ffmpeg libraries: `sudo apt install ffmpeg` is all a Pi or Jetson
//! user needs, the binary keeps no link-time dependency on a particular libav* soname (they
//! differ between Bookworm, Ubuntu 22.04 and JetPack), cross-compiling needs no arm64 ffmpeg
//! headers, and a decoder crash cannot take the kiosk down with it. Frames cross the pipe as
//! raw RGB24, read straight into the loop's reused buffer.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use super::{FrameSource, RgbFrame, SourceError};
use crate::clock::Clock;

pub const INSTALL_HINT: &str = "install it with: sudo apt install ffmpeg";

/// What ffprobe says about the first video stream.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    /// Displayed size (after the rotation tag is applied, as ffmpeg decodes it).
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// Frame count when the container knows it.
    pub frames: Option<u64>,
    pub duration_s: Option<f64>,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<ProbeStream>,
}

#[derive(Deserialize)]
struct ProbeStream {
    width: Option<u32>,
    height: Option<u32>,
    r_frame_rate: Option<String>,
    avg_frame_rate: Option<String>,
    nb_frames: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

fn rate(s: &Option<String>) -> Option<f64> {
    let s = s.as_deref()?;
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (n > 0.0 && d > 0.0).then_some(n / d)
}

/// What ffprobe's answer lacks.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("unreadable ffprobe output: {0}")]
    Json(#[from] serde_json::Error),
    /// The first video stream has no `{0}` (or there is no video stream).
    #[error("no {0}")]
    Missing(&'static str),
}

/// Parses `ffprobe -of json` output (pure, unit-tested).
pub fn parse_probe(json: &str) -> Result<VideoInfo, ProbeError> {
    let p: Probe = serde_json::from_str(json)?;
    let s = p
        .streams
        .first()
        .ok_or(ProbeError::Missing("video stream"))?;
    let (mut w, mut h) = (
        s.width.ok_or(ProbeError::Missing("width"))?,
        s.height.ok_or(ProbeError::Missing("height"))?,
    );
    let rotation = s
        .side_data_list
        .iter()
        .find_map(|d| d.get("rotation").and_then(|r| r.as_f64()))
        .or_else(|| s.tags.get("rotate").and_then(|r| r.parse().ok()))
        .unwrap_or(0.0);
    if (rotation.abs() - 90.0).abs() < 1.0 || (rotation.abs() - 270.0).abs() < 1.0 {
        std::mem::swap(&mut w, &mut h);
    }
    let fps = rate(&s.avg_frame_rate)
        .or_else(|| rate(&s.r_frame_rate))
        .ok_or(ProbeError::Missing("frame rate"))?;
    Ok(VideoInfo {
        width: w,
        height: h,
        fps,
        frames: s.nb_frames.as_deref().and_then(|n| n.parse().ok()),
        duration_s: s.duration.as_deref().and_then(|d| d.parse().ok()),
    })
}

fn spawn_err(tool: &str, e: std::io::Error) -> SourceError {
    if e.kind() == std::io::ErrorKind::NotFound {
        SourceError::Open(format!("{tool} not found on PATH; {INSTALL_HINT}"))
    } else {
        SourceError::Open(format!("cannot run {tool}: {e}"))
    }
}

/// Asks ffprobe about `path`.
pub fn probe(path: &Path) -> Result<VideoInfo, SourceError> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=width,height,r_frame_rate,avg_frame_rate,nb_frames,duration:stream_side_data=rotation:stream_tags=rotate")
        .args(["-of", "json"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_err("ffprobe", e))?;
    // 127 with nothing said: the exec itself failed (how a missing tool shows up where the
    // spawn cannot report it, e.g. under qemu-user)
    if out.status.code() == Some(127) && out.stderr.is_empty() {
        return Err(SourceError::Open(format!(
            "ffprobe not found on PATH; {INSTALL_HINT}"
        )));
    }
    if !out.status.success() {
        return Err(SourceError::Open(format!(
            "{}: not a video ffmpeg can read: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_probe(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| SourceError::Open(format!("{}: {e}", path.display())))
}

/// Decoded RGB24 frames from a video file, one `read_exact` per frame.
///
/// ffmpeg's own messages are kept (the last few lines, on a thread of their own) instead of
/// going to the terminal: a damaged file makes it print one line per broken packet, and what
/// matters is said once, by maskgate, when the frames run out.
pub struct VideoReader {
    pub info: VideoInfo,
    path: PathBuf,
    child: Child,
    out: ChildStdout,
    log: Arc<Mutex<Tail>>,
    log_thread: Option<std::thread::JoinHandle<()>>,
    /// Frames read so far.
    pub decoded: u64,
}

/// The last [`TAIL_LINES`] lines a child printed on stderr.
#[derive(Default)]
pub(super) struct Tail {
    lines: std::collections::VecDeque<String>,
}

const TAIL_LINES: usize = 3;

impl Tail {
    /// Collects `stderr` on a thread of its own until the child closes it.
    pub(super) fn collect(
        stderr: impl Read + Send + 'static,
    ) -> std::io::Result<(Arc<Mutex<Tail>>, std::thread::JoinHandle<()>)> {
        let log = Arc::new(Mutex::new(Tail::default()));
        let sink = Arc::clone(&log);
        let t = std::thread::Builder::new()
            .name("child-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(mut t) = sink.lock() {
                        t.push(line);
                    }
                }
            })?;
        Ok((log, t))
    }

    /// The kept lines as one.
    pub(super) fn said(log: &Mutex<Tail>) -> String {
        log.lock()
            .map(|t| t.lines.iter().cloned().collect::<Vec<_>>().join(" / "))
            .unwrap_or_default()
    }

    /// Keeps `line` without ffmpeg's `[component @ 0xADDRESS] ` prefix, once when repeated.
    fn push(&mut self, line: String) {
        let line = match line.split_once("] ") {
            Some((head, rest)) if head.starts_with('[') && head.contains(" @ 0x") => rest,
            _ => line.as_str(),
        }
        .trim()
        .to_string();
        if line.is_empty()
            || line.starts_with("Last message repeated")
            || self.lines.back() == Some(&line)
        {
            return;
        }
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

/// How the decoded frames compare with what the container promised (pure, unit-tested):
/// `Some(expected)` when clearly fewer came out, allowing 1% (and 2 frames) for containers
/// whose count is approximate.
pub fn shortfall(decoded: u64, expected: Option<u64>) -> Option<u64> {
    let e = expected?;
    (decoded + (e / 100).max(2) < e).then_some(e)
}

impl VideoReader {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let info = probe(path)?;
        let mut child = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(path)
            .args([
                "-map", "0:v:0", "-an", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_err("ffmpeg", e))?;
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        let (log, log_thread) = Tail::collect(err)
            .map_err(|e| SourceError::Open(format!("cannot start a thread: {e}")))?;
        Ok(Self {
            info,
            path: path.to_path_buf(),
            child,
            out,
            log,
            log_thread: Some(log_thread),
            decoded: 0,
        })
    }

    /// ffmpeg's last words, one line.
    fn said(&self) -> String {
        Tail::said(&self.log)
    }

    /// At the end of the frames: an error when ffmpeg failed (nothing decodable, a broken
    /// stream), naming how far it got and what it said.
    fn ended(&mut self) -> Result<(), SourceError> {
        let st = self
            .child
            .wait()
            .map_err(|e| SourceError::Lost(format!("{}: {e}", self.path.display())))?;
        // the pipe closed with the exit: the thread has every line once it ends
        if let Some(t) = self.log_thread.take() {
            let _ = t.join();
        }
        if st.success() {
            return Ok(());
        }
        let what = if self.decoded == 0 {
            "no decodable video frame".to_string()
        } else {
            format!("decoding stopped after {} frames", self.decoded)
        };
        Err(SourceError::Lost(format!(
            "{}: {what} (ffmpeg {st}: {})",
            self.path.display(),
            self.said()
        )))
    }

    /// After the last frame: `Some(message)` when the container promised clearly more frames
    /// than came out (a truncated file ffmpeg reads to its end without failing).
    pub fn short(&self) -> Option<String> {
        let e = shortfall(self.decoded, self.info.frames)?;
        Some(format!(
            "{}: only {} of the {e} frames the file lists could be decoded; it is truncated or damaged ({})",
            self.path.display(),
            self.decoded,
            self.said()
        ))
    }

    /// Reads the next frame into `f`; `Ok(false)` at the end of the video.
    pub fn read(&mut self, f: &mut RgbFrame) -> Result<bool, SourceError> {
        f.set_size(self.info.width, self.info.height);
        let mut got = 0;
        while got < f.data.len() {
            match self.out.read(&mut f.data[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SourceError::Lost(format!("{}: {e}", self.path.display()))),
            }
        }
        match got {
            0 => {
                self.ended()?;
                Ok(false)
            }
            n if n == f.data.len() => {
                self.decoded += 1;
                Ok(true)
            }
            n => Err(SourceError::Lost(format!(
                "{}: truncated frame ({n} of {} bytes)",
                self.path.display(),
                f.data.len()
            ))),
        }
    }
}

impl Drop for VideoReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A video file as a kiosk source, played at its native rate (late frames are decoded and
/// dropped on a real clock, all played on the simulated one).
pub struct VideoSource {
    reader: VideoReader,
    period: Duration,
    start: Option<Duration>,
    next: u64,
    skip: RgbFrame,
}

impl VideoSource {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let reader = VideoReader::open(path)?;
        let period = Duration::from_secs_f64(1.0 / reader.info.fps);
        Ok(Self {
            reader,
            period,
            start: None,
            next: 0,
            skip: RgbFrame::default(),
        })
    }
}

impl FrameSource for VideoSource {
    fn next_frame(
        &mut self,
        clock: &mut dyn Clock,
        out: &mut RgbFrame,
    ) -> Result<bool, SourceError> {
        let start = *self.start.get_or_insert_with(|| clock.now());
        if clock.is_real() {
            let due = ((clock.now() - start).as_nanos() / self.period.as_nanos()) as u64;
            while self.next < due {
                if !self.reader.read(&mut self.skip)? {
                    if let Some(m) = self.reader.short() {
                        tracing::warn!("{m}");
                    }
                    return Ok(false);
                }
                self.next += 1;
            }
        }
        clock.sleep_until(start + self.period * self.next as u32);
        self.next += 1;
        let more = self.reader.read(out)?;
        if !more {
            if let Some(m) = self.reader.short() {
                tracing::warn!("{m}");
            }
        }
        Ok(more)
    }

    fn reopen(&mut self) -> Result<(), SourceError> {
        Err(SourceError::Open(format!(
            "{}: a video that failed is not reopened",
            self.reader.path.display()
        )))
    }

    fn describe(&self) -> String {
        let i = &self.reader.info;
        format!(
            "{} ({}x{} @ {:.2} fps)",
            self.reader.path.display(),
            i.width,
            i.height,
            i.fps
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_json_with_rotation_and_fractional_rate() {
        let j = r#"{"programs":[],"streams":[{"width":1920,"height":1080,
            "r_frame_rate":"30000/1001","avg_frame_rate":"30000/1001","nb_frames":"300",
            "duration":"10.010000","side_data_list":[{"rotation":-90}]}]}"#;
        let i = parse_probe(j).unwrap();
        assert_eq!((i.width, i.height), (1080, 1920));
        assert!((i.fps - 29.97).abs() < 0.01);
        assert_eq!(i.frames, Some(300));
        assert_eq!(i.duration_s, Some(10.01));
        let j = r#"{"streams":[{"width":640,"height":480,"r_frame_rate":"15/1","avg_frame_rate":"0/0","tags":{"rotate":"180"}}]}"#;
        let i = parse_probe(j).unwrap();
        assert_eq!((i.width, i.height, i.fps, i.frames), (640, 480, 15.0, None));
        assert!(parse_probe(r#"{"streams":[]}"#)
            .unwrap_err()
            .to_string()
            .contains("no video"));
        assert!(parse_probe("garbage").is_err());
    }

    #[test]
    fn ffmpeg_lines_lose_their_address_and_repeats() {
        let mut t = Tail::default();
        for l in [
            "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55a87f8b2900] stream 0, offset 0x2e3f: partial file",
            "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55a87f8b2901] stream 0, offset 0x2e3f: partial file",
            "    Last message repeated 1 times",
            "[h264 @ 0x1] Invalid NAL unit size (0 > 11).",
            "Error marking filters as finished",
            "",
            "Conversion failed!",
        ] {
            t.push(l.to_string());
        }
        assert_eq!(
            t.lines.iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "Invalid NAL unit size (0 > 11).",
                "Error marking filters as finished",
                "Conversion failed!"
            ]
        );
    }

    #[test]
    fn shortfall_flags_only_clearly_missing_frames() {
        assert_eq!(shortfall(25, Some(60)), Some(60));
        assert_eq!(shortfall(0, Some(30)), Some(30));
        // a container count that is off by a frame or two is not a damaged file
        assert_eq!(shortfall(58, Some(60)), None);
        assert_eq!(shortfall(60, Some(60)), None);
        assert_eq!(shortfall(61, Some(60)), None);
        assert_eq!(shortfall(990, Some(1000)), None);
        assert_eq!(shortfall(989, Some(1000)), Some(1000));
        assert_eq!(shortfall(5, None), None);
    }
}
