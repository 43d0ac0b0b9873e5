//! Cameras that are not V4L2 devices, through a child process that writes raw frames on its
//! stdout (the video path's pipe design, for the same reasons: no libav* or libcamera link,
//! nothing to cross-compile, a crashing decoder cannot take the door down):
//! - IP cameras, `rtsp://` / `rtsps://` (H.264, H.265, MJPEG over RTP, through TCP) and
//!   `http://` / `https://` (MJPEG over HTTP and the rest ffmpeg reads), through `ffmpeg`,
//!   scaled to fit `camera.width` x `camera.height` (aspect kept, padded) at `camera.fps`;
//! - the Raspberry Pi camera module (libcamera, not plain V4L2 on Bookworm), through
//!   `rpicam-vid --codec yuv420` at `camera.width` x `camera.height`.
//!
//! A reader thread keeps only the newest frame ([`Latest`]), as the V4L2 camera does. When the
//! child ends (the server went away, the camera was unplugged) or sends nothing for
//! [`STALL`], the source is lost and [`FrameSource::reopen`] starts the child again: the
//! kiosk's offline screen and back-off apply as for a V4L2 camera.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::camera::{CameraConfig, RtspTransport};
use super::latest::{Latest, PixelFormat, RawFrame};
use super::video::{Tail, INSTALL_HINT};
use super::{FrameSource, RgbFrame, SourceError, STALL};
use crate::clock::Clock;

/// How long a new child may take for its first frame (an RTSP camera's connect, DESCRIBE and
/// stream probe take seconds; the stall limit applies after it).
pub const FIRST_FRAME: Duration = Duration::from_secs(10);

/// The row alignment, in pixels, of `rpicam-vid --codec yuv420` output on the Pi's ISP.
pub const RPICAM_ALIGN: u32 = 64;

/// The URL schemes ffmpeg reads cameras from, as `camera.device` starts.
const SCHEMES: [&str; 4] = ["rtsp://", "rtsps://", "http://", "https://"];
/// The Pi camera module's name: `rpicam` or `rpicam:N`.
const RPICAM: &str = "rpicam";

/// What a `camera.device` (or `--source`) names, when it is not a V4L2 device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stream {
    /// An IP camera URL, read by ffmpeg.
    Url(String),
    /// The Pi camera module: `rpicam` (camera 0) or `rpicam:N`.
    Rpicam(u32),
}

impl Stream {
    /// `None` for anything else (a /dev/video path, a file, a folder).
    pub fn parse(device: &str) -> Option<Stream> {
        let lower = device.to_ascii_lowercase();
        if SCHEMES.iter().any(|p| lower.starts_with(p)) {
            return Some(Stream::Url(device.to_string()));
        }
        match device.strip_prefix(RPICAM) {
            Some("") => Some(Stream::Rpicam(0)),
            Some(n) => n.strip_prefix(':')?.parse().ok().map(Stream::Rpicam),
            None => None,
        }
    }

    /// For a `device` that [`Stream::parse`] does not take: an error when it still looks
    /// like a stream (another URL scheme, a misspelt `rpicam:N`), which would otherwise be
    /// looked for as a file and refused as "neither a camera nor ...".
    pub fn refuse_misnamed(device: &str) -> Result<(), SourceError> {
        if device.contains("://") {
            return Err(SourceError::Open(format!(
                "{}: not a camera URL maskgate reads ({})",
                redact(device),
                SCHEMES.join(", ")
            )));
        }
        if device.starts_with(RPICAM) {
            return Err(SourceError::Open(format!(
                "{device}: the Pi camera is {RPICAM} or {RPICAM}:N, N its number (0, 1)"
            )));
        }
        Ok(())
    }

    /// For logs and the status page: the URL without user and password.
    pub fn describe(&self) -> String {
        match self {
            Stream::Url(u) => redact(u),
            Stream::Rpicam(n) => format!("rpicam:{n}"),
        }
    }

    /// The program and its arguments for frames of `w` x `h` at `fps` (pure, unit-tested).
    pub fn command(&self, cfg: &CameraConfig) -> (&'static str, Vec<String>) {
        let (w, h, fps) = (cfg.width, cfg.height, cfg.fps);
        match self {
            Stream::Url(url) => {
                let mut a: Vec<String> = ["-v", "error", "-nostdin", "-fflags", "nobuffer"]
                    .map(String::from)
                    .to_vec();
                // a dead server or a silent camera ends ffmpeg instead of hanging it (us)
                if url.to_ascii_lowercase().starts_with("rtsp") {
                    match cfg.rtsp_transport {
                        RtspTransport::Tcp => {
                            a.extend(["-rtsp_transport", "tcp"].map(String::from))
                        }
                        RtspTransport::Udp => {
                            a.extend(["-rtsp_transport", "udp"].map(String::from))
                        }
                        RtspTransport::Auto => {}
                    }
                    a.extend(["-timeout", "5000000"].map(String::from));
                } else {
                    a.extend(["-rw_timeout", "5000000"].map(String::from));
                }
                a.extend(["-i".into(), url.clone(), "-an".into(), "-vf".into()]);
                a.push(format!(
                    "fps={fps},scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2"
                ));
                a.extend(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"].map(String::from));
                ("ffmpeg", a)
            }
            Stream::Rpicam(n) => (
                "rpicam-vid",
                vec![
                    "-t".into(),
                    "0".into(),
                    "-n".into(),
                    "--camera".into(),
                    n.to_string(),
                    "--width".into(),
                    w.to_string(),
                    "--height".into(),
                    h.to_string(),
                    "--framerate".into(),
                    fps.to_string(),
                    "--codec".into(),
                    "yuv420".into(),
                    "--flush".into(),
                    "-o".into(),
                    "-".into(),
                ],
            ),
        }
    }

    /// What can be known wrong before the child runs: the frame size it can deliver, and
    /// whether its program is installed. Run before the models load, so a door that cannot
    /// see says so at once rather than after seconds of loading.
    pub fn check(&self, cfg: &CameraConfig) -> Result<(), SourceError> {
        if let Stream::Url(u) = self {
            check_url(u)?;
        }
        let (w, h) = (cfg.width, cfg.height);
        if w % 2 != 0 || h % 2 != 0 || w == 0 || h == 0 {
            return Err(SourceError::Open(format!(
                "camera.width and camera.height must be even and > 0 for {}, got {w}x{h}",
                self.describe()
            )));
        }
        // rpicam-vid writes the ISP's buffer as it is, each row padded to 64 pixels
        // (raspberrypi/rpicam-apps#188): any other width would shear every frame
        if matches!(self, Stream::Rpicam(_)) && w % RPICAM_ALIGN != 0 {
            let lo = w / RPICAM_ALIGN * RPICAM_ALIGN;
            let near = if lo == 0 {
                format!("{RPICAM_ALIGN}")
            } else {
                format!("{lo} or {}", lo + RPICAM_ALIGN)
            };
            return Err(SourceError::Open(format!(
                "{}: camera.width must be a multiple of {RPICAM_ALIGN} for the Pi camera \
                 (rpicam-vid pads each row of its yuv420 output to that), got {w}; try {near}",
                self.describe()
            )));
        }
        let (program, _) = self.command(cfg);
        // looked up first: a missing program is a clear error at start, not a stream that
        // ends at once forever (which is all a spawn says of it under qemu-user: exit 127)
        if !on_path(program) {
            return Err(SourceError::Open(format!(
                "{}: {program} not found on PATH; {}",
                self.describe(),
                install_hint(program)
            )));
        }
        Ok(())
    }

    fn format(&self) -> PixelFormat {
        match self {
            Stream::Url(_) => PixelFormat::Rgb24,
            Stream::Rpicam(_) => PixelFormat::I420,
        }
    }
}

/// A URL that no server can answer (no host, a bad port, a broken IPv6 address) is a typo in
/// the config: refused at start, not retried forever as "camera offline". Parsed by the `url`
/// crate (WHATWG rules), whose messages never repeat the URL, so no password reaches a log.
fn check_url(u: &str) -> Result<(), SourceError> {
    let bad = |why: &str| SourceError::Open(format!("camera URL {}: {why}", redact(u)));
    let parsed = url::Url::parse(u).map_err(|e| bad(&e.to_string()))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(())
}

/// `scheme://user:password@host/...` as `scheme://host/...`.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

/// What to install for `program`.
fn install_hint(program: &str) -> &'static str {
    if program == "ffmpeg" {
        INSTALL_HINT
    } else {
        "install it with: sudo apt install rpicam-apps"
    }
}

/// Whether `program` is an executable file in a `PATH` folder.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            std::fs::metadata(d.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Bytes of one frame of `format` at `w` x `h`.
fn frame_bytes(format: PixelFormat, w: u32, h: u32) -> usize {
    let n = w as usize * h as usize;
    match format {
        PixelFormat::I420 => n + n / 2,
        _ => n * 3,
    }
}

pub struct StreamSource {
    stream: Stream,
    cfg: CameraConfig,
    child: Option<Child>,
    thread: Option<JoinHandle<()>>,
    latest: Arc<Latest>,
    seen: u64,
    front: RawFrame,
    scratch: Vec<u8>,
    name: String,
}

impl StreamSource {
    /// Starts the child now; a child that cannot run (no ffmpeg, no rpicam-vid) is an error,
    /// a server that does not answer shows up as a lost source on the first frame.
    pub fn open(stream: Stream, cfg: CameraConfig) -> Result<Self, SourceError> {
        stream.check(&cfg)?;
        let name = stream.describe();
        let mut s = Self {
            stream,
            cfg,
            child: None,
            thread: None,
            latest: Arc::new(Latest::default()),
            seen: 0,
            front: RawFrame::default(),
            scratch: Vec::new(),
            name,
        };
        s.start()?;
        Ok(s)
    }

    fn start(&mut self) -> Result<(), SourceError> {
        let (w, h) = (self.cfg.width, self.cfg.height);
        let (program, args) = self.stream.command(&self.cfg);
        // again at each reopen: a package removed under a running door is said plainly
        self.stream.check(&self.cfg)?;
        let mut child = Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                let hint = match e.kind() {
                    std::io::ErrorKind::NotFound => format!("; {}", install_hint(program)),
                    _ => String::new(),
                };
                SourceError::Open(format!("{}: cannot run {program}: {e}{hint}", self.name))
            })?;
        let mut out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        let (log, log_thread) = Tail::collect(err)
            .map_err(|e| SourceError::Open(format!("cannot start a thread: {e}")))?;
        self.latest = Arc::new(Latest::default());
        self.seen = 0;
        let latest = self.latest.clone();
        let format = self.stream.format();
        let name = program.to_string();
        let secret = match &self.stream {
            Stream::Url(u) if redact(u) != *u => Some((u.clone(), redact(u))),
            _ => None,
        };
        let thread = std::thread::Builder::new()
            .name("stream".into())
            .spawn(move || {
                let mut back = RawFrame {
                    data: vec![0; frame_bytes(format, w, h)],
                    width: w,
                    height: h,
                    stride: 0,
                    format,
                };
                let why = loop {
                    back.data.resize(frame_bytes(format, w, h), 0);
                    match out.read_exact(&mut back.data) {
                        Ok(()) => latest.publish(&mut back),
                        Err(e) => break e,
                    }
                };
                // stdout closed: the child has ended or is ending; its last words say why
                let _ = log_thread.join();
                // ffmpeg names the URL it was given, credentials and all
                let mut said = Tail::said(&log);
                if let Some((url, shown)) = &secret {
                    said = said.replace(url.as_str(), shown);
                }
                let what = if why.kind() == std::io::ErrorKind::UnexpectedEof {
                    "stream ended".to_string()
                } else {
                    format!("stream broke: {why}")
                };
                latest.fail(if said.is_empty() {
                    format!("{what} ({name} stopped)")
                } else {
                    format!("{what} ({name}: {said})")
                });
            })
            .map_err(|e| SourceError::Open(format!("cannot start a thread: {e}")))?;
        self.child = Some(child);
        self.thread = Some(thread);
        tracing::debug!(source = %self.name, "{program} started ({w}x{h} @ {} fps)", self.cfg.fps);
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // the killed child closes its stdout: the reader ends
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StreamSource {
    fn drop(&mut self) {
        self.stop();
    }
}

impl FrameSource for StreamSource {
    fn next_frame(
        &mut self,
        _clock: &mut dyn Clock,
        out: &mut RgbFrame,
    ) -> Result<bool, SourceError> {
        if self.thread.is_none() {
            return Err(SourceError::Lost(format!("{}: not running", self.name)));
        }
        // a new child gets longer for its first frame: connecting and probing an RTSP
        // stream takes seconds
        let wait = if self.seen == 0 { FIRST_FRAME } else { STALL };
        let r = super::newest_as_rgb(
            &self.latest,
            &mut self.seen,
            &mut self.front,
            &mut self.scratch,
            out,
            &self.name,
            wait,
        );
        if r.is_err() {
            // a stalled child is stopped now; reopen starts a new one
            self.stop();
        }
        r
    }

    /// Back only once a frame has come: a child that starts but gets nothing (the server is
    /// still away) is a failed reopen, so the kiosk's back-off grows instead of restarting
    /// the child every half second.
    fn reopen(&mut self) -> Result<(), SourceError> {
        self.stop();
        self.start()?;
        let first = super::take_newest(
            &self.latest,
            &mut self.seen,
            &mut self.front,
            &self.name,
            FIRST_FRAME,
        );
        if first.is_err() {
            self.stop();
        }
        first
    }

    fn describe(&self) -> String {
        format!(
            "{} {}x{} @ {} fps",
            self.name, self.cfg.width, self.cfg.height, self.cfg.fps
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_that_are_streams() {
        assert_eq!(
            Stream::parse("rtsp://cam.local:554/stream1"),
            Some(Stream::Url("rtsp://cam.local:554/stream1".into()))
        );
        assert!(matches!(
            Stream::parse("HTTP://10.0.0.9/video.mjpg"),
            Some(Stream::Url(_))
        ));
        assert!(matches!(Stream::parse("rtsps://x/y"), Some(Stream::Url(_))));
        assert_eq!(Stream::parse("rpicam"), Some(Stream::Rpicam(0)));
        assert_eq!(Stream::parse("rpicam:1"), Some(Stream::Rpicam(1)));
        for other in [
            "/dev/video0",
            "camera",
            "rpicam1",
            "rpicam:x",
            "clip.mp4",
            "ftp://x",
        ] {
            assert_eq!(Stream::parse(other), None, "{other}");
        }
    }

    #[test]
    fn credentials_never_reach_a_log_line() {
        assert_eq!(
            redact("rtsp://admin:s3cret@10.0.0.9:554/h264?ch=1"),
            "rtsp://10.0.0.9:554/h264?ch=1"
        );
        assert_eq!(redact("http://user@cam/video"), "http://cam/video");
        assert_eq!(redact("rtsp://cam/a@b"), "rtsp://cam/a@b");
        assert_eq!(
            Stream::parse("rtsp://u:p@cam/s").unwrap().describe(),
            "rtsp://cam/s"
        );
    }

    #[test]
    fn the_commands_users_would_type() {
        let cam = |w, h, fps, rtsp_transport| CameraConfig {
            width: w,
            height: h,
            fps,
            rtsp_transport,
            ..CameraConfig::default()
        };
        let (p, a) =
            Stream::Url("rtsp://cam/s".into()).command(&cam(640, 480, 15, RtspTransport::Tcp));
        assert_eq!(p, "ffmpeg");
        assert_eq!(
            a.join(" "),
            "-v error -nostdin -fflags nobuffer -rtsp_transport tcp -timeout 5000000 -i rtsp://cam/s -an -vf \
             fps=15,scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2 \
             -f rawvideo -pix_fmt rgb24 -"
        );
        let (_, a) =
            Stream::Url("rtsp://cam/s".into()).command(&cam(640, 480, 15, RtspTransport::Udp));
        assert!(a.join(" ").contains("-rtsp_transport udp -timeout"));
        let (_, a) =
            Stream::Url("rtsp://cam/s".into()).command(&cam(640, 480, 15, RtspTransport::Auto));
        assert!(!a.join(" ").contains("-rtsp_transport"));
        let (_, a) = Stream::Url("http://cam/video.mjpg".into()).command(&cam(
            640,
            480,
            15,
            RtspTransport::Tcp,
        ));
        assert!(a
            .join(" ")
            .contains("-rw_timeout 5000000 -i http://cam/video.mjpg"));
        let (p, a) = Stream::Rpicam(1).command(&cam(1280, 720, 10, RtspTransport::Tcp));
        assert_eq!(p, "rpicam-vid");
        assert_eq!(
            a.join(" "),
            "-t 0 -n --camera 1 --width 1280 --height 720 --framerate 10 --codec yuv420 --flush -o -"
        );
        assert_eq!(frame_bytes(PixelFormat::I420, 640, 480), 460_800);
        assert_eq!(frame_bytes(PixelFormat::Rgb24, 640, 480), 921_600);
    }

    #[test]
    fn sizes_a_stream_cannot_deliver_are_refused_before_it_starts() {
        let cam = |w, h| CameraConfig {
            width: w,
            height: h,
            ..CameraConfig::default()
        };
        let said = |s: &Stream, w, h| match s.check(&cam(w, h)) {
            Err(SourceError::Open(m)) => m,
            other => format!("{other:?}"),
        };
        let pi = Stream::Rpicam(0);
        assert_eq!(
            said(&pi, 780, 360),
            "rpicam:0: camera.width must be a multiple of 64 for the Pi camera (rpicam-vid pads \
             each row of its yuv420 output to that), got 780; try 768 or 832"
        );
        assert!(said(&pi, 32, 24).ends_with("got 32; try 64"));
        assert!(said(&pi, 641, 480).contains("must be even and > 0 for rpicam:0, got 641x480"));
        assert!(said(&pi, 640, 0).contains("must be even"));
        // sizes it can deliver get as far as the program lookup
        for (w, h) in [(640, 480), (1280, 720), (1920, 1080), (320, 240)] {
            let m = said(&pi, w, h);
            assert!(
                m == "Ok(())" || m.contains("rpicam-vid not found on PATH"),
                "{m}"
            );
        }
        // ffmpeg scales to any even size
        let ip = Stream::Url("rtsp://u:p@cam/s".into());
        let m = said(&ip, 780, 360);
        assert!(
            m == "Ok(())" || m.contains("ffmpeg not found on PATH"),
            "{m}"
        );
        assert!(said(&ip, 781, 360).contains("for rtsp://cam/s, got 781x360"));
    }

    #[test]
    fn urls_no_server_can_answer_are_refused_without_their_password() {
        let said = |u: &str| match Stream::Url(u.into()).check(&CameraConfig::default()) {
            Err(SourceError::Open(m)) => m,
            other => format!("{other:?}"),
        };
        assert_eq!(said("rtsp://"), "camera URL rtsp://: no host");
        assert_eq!(
            said("rtsp://admin:s3cret@cam:99999/live"),
            "camera URL rtsp://cam:99999/live: invalid port number"
        );
        assert_eq!(
            said("http://[::1/mjpg"),
            "camera URL http://[::1/mjpg: invalid IPv6 address"
        );
        for good in [
            "rtsp://admin:s3cret@10.0.0.5:554/h264",
            "https://[::1]:8443/mjpg",
        ] {
            let m = said(good);
            assert!(
                m == "Ok(())" || m.contains("ffmpeg not found on PATH"),
                "{m}"
            );
        }
    }
}
