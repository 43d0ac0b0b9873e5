//! The cameras users have beyond V4L2, as the door meets them: an RTSP camera behind a real
//! RTSP server (Debian's `rtsp-server-perl`, fed by ffmpeg publishing a clip), an HTTP MJPEG
//! camera (ffmpeg's own HTTP server), each going away and coming back, and the Pi camera's
//! `rpicam-vid --codec yuv420` pipe (a stand-in script: there is no Pi camera here). Each
//! skips with a message when its server or ffmpeg is missing.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn have(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("SKIPPED: {tool} not installed (scripts/setup.sh installs it)");
    }
    ok
}

/// A 10 s H.264 clip of the astronaut (no mask), a keyframe every second.
fn clip(dir: &Path) -> PathBuf {
    let out = dir.join("door.mp4");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-i"])
        .arg(common::sample("astronaut.jpg"))
        .args(["-vf", "scale=640:480", "-r", "15", "-t", "10", "-g", "15"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The door in simulation on `source` (a live source: the wall clock), its JSON events
/// arriving on the returned channel, its log in `log`.
fn door(source: &str, config: &Path, log: &Path) -> (Child, mpsc::Receiver<serde_json::Value>) {
    let mut c = common::maskgate_bin()
        .args(["run", "--simulate", "--threads"])
        .arg(common::threads().to_string())
        .args(["--input-size", "320x240", "--config"])
        .arg(config)
        .args(["--source", source])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let out = c.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    (c, rx)
}

/// The next event for which `want` holds, within `secs`.
fn wait_for(
    rx: &mpsc::Receiver<serde_json::Value>,
    secs: u64,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(secs);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(e) if want(&e) => return e,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no {what} within {secs} s");
}

fn no_mask(e: &serde_json::Value) -> bool {
    e["event"] == "decision" && e["decision"] == "no_mask"
}

fn camera(online: bool) -> impl Fn(&serde_json::Value) -> bool {
    move |e| e["event"] == "camera" && e["online"] == online
}

fn stop(mut door: Child) {
    let st = Command::new("kill")
        .args(["-TERM", &door.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = door.try_wait().unwrap() {
            assert!(s.success(), "SIGTERM is a clean stop: {s}");
            return;
        }
        assert!(Instant::now() < end, "door still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// RTSP::Server (clients on `client`, publishers on `source`) and ffmpeg publishing `clip`
/// to it in a loop at its own rate.
fn rtsp_server(client: u16, source: u16, clip: &Path) -> Killed {
    let server = Command::new("rtsp-server-perl")
        .args(["--clientport", &client.to_string()])
        .args(["--serverport", &source.to_string()])
        .args(["--client_listen_address", "127.0.0.1"])
        .args(["--source_listen_address", "127.0.0.1"])
        .args(["--rtp_start_port", &(client as u32 + 2).to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", source)).is_err() {
        assert!(Instant::now() < end, "rtsp-server-perl did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let publisher = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(clip)
        .args(["-c:v", "copy", "-f", "rtsp"])
        .arg(format!("rtsp://127.0.0.1:{source}/door"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Killed(vec![publisher, server])
}

#[test]
fn an_rtsp_camera_that_goes_away_and_comes_back() {
    if !have("ffmpeg", "-version") || !have("rtsp-server-perl", "--help") {
        return;
    }
    let d = common::scratch("stream-rtsp");
    let clip = clip(&d);
    let (client, source) = (common::free_port(), common::free_port());
    let url = format!("rtsp://viewer:secret@127.0.0.1:{client}/door");
    let cfg = d.join("site.toml");
    // RTSP::Server relays RTP over UDP only (cameras in the field default to TCP)
    std::fs::write(&cfg, "[camera]\nrtsp_transport = \"udp\"\n").unwrap();
    let mut server = rtsp_server(client, source, &clip);
    let log = d.join("door.log");
    let (door, rx) = door(&url, &cfg, &log);
    let door = Killed(vec![door]);
    let first = wait_for(&rx, 90, "verdict on the RTSP stream", no_mask);
    assert_eq!(first["faces"], 1);
    // the server goes away: offline, then back once it is there again
    drop(server);
    wait_for(&rx, 30, "camera offline", camera(false));
    std::thread::sleep(Duration::from_secs(3));
    server = rtsp_server(client, source, &clip);
    wait_for(&rx, 60, "camera back", camera(true));
    wait_for(&rx, 60, "verdict after the server came back", no_mask);
    let mut door = door;
    stop(door.0.pop().unwrap());
    drop(server);
    // the log names the camera, never its password (ffmpeg's own messages included)
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("rtsp://127.0.0.1:{client}/door")),
        "{text}"
    );
    assert!(
        text.contains("camera lost") && text.contains("camera back"),
        "{text}"
    );
    assert!(
        !text.contains("secret") && !text.contains("viewer"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// ffmpeg's HTTP server: one client, `secs` of MJPEG, then it ends.
fn mjpeg_server(port: u16, secs: u32) -> Killed {
    let c = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-loop", "1", "-i"])
        .arg(common::sample("astronaut.jpg"))
        .args(["-vf", "scale=640:480", "-r", "10", "-t", &secs.to_string()])
        .args(["-c:v", "mjpeg", "-f", "mpjpeg", "-listen", "1"])
        .arg(format!("http://127.0.0.1:{port}/video.mjpg"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Killed(vec![c])
}

#[test]
fn an_http_mjpeg_camera_that_goes_away_and_comes_back() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let d = common::scratch("stream-mjpeg");
    let cfg = d.join("site.toml");
    std::fs::write(&cfg, "").unwrap();
    let port = common::free_port();
    let server = mjpeg_server(port, 12);
    std::thread::sleep(Duration::from_millis(500));
    let (door, rx) = door(
        &format!("http://127.0.0.1:{port}/video.mjpg"),
        &cfg,
        &d.join("door.log"),
    );
    let door = Killed(vec![door]);
    wait_for(&rx, 60, "verdict on the MJPEG stream", no_mask);
    // the stream ends after 12 s: offline; a new server: back
    wait_for(&rx, 30, "camera offline", camera(false));
    drop(server);
    let server = mjpeg_server(port, 60);
    wait_for(&rx, 60, "camera back", camera(true));
    wait_for(&rx, 60, "verdict after the camera came back", no_mask);
    let mut door = door;
    stop(door.0.pop().unwrap());
    drop(server);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_pi_camera_through_rpicam_vid_yuv420() {
    if !have("ffmpeg", "-version") {
        return;
    }
    // a stand-in with rpicam-vid's command line and output: I420 frames on stdout at the
    // size asked; it refuses any other command line
    let d = common::scratch("stream-rpicam");
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let face = common::sample("astronaut.jpg");
    let script = format!(
        "#!/bin/sh\n\
         [ \"$*\" = \"-t 0 -n --camera 0 --width 640 --height 480 --framerate 15 --codec yuv420 --flush -o -\" ] \
         || {{ echo \"unexpected: $*\" >&2; exit 2; }}\n\
         exec ffmpeg -v error -re -loop 1 -i {} -vf scale=640:480 -r 15 -pix_fmt yuv420p -f rawvideo -\n",
        face.display()
    );
    let stand_in = bin.join("rpicam-vid");
    std::fs::write(&stand_in, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = d.join("site.toml");
    std::fs::write(&cfg, "[camera]\ndevice = \"rpicam\"\n").unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = common::maskgate_bin()
        .env("PATH", path)
        .args(["run", "--simulate", "--threads"])
        .arg(common::threads().to_string())
        .args(["--input-size", "320x240", "--max-frames", "8", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("source=rpicam:0 640x480 @ 15 fps"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.contains(r#""decision":"no_mask""#)),
        "{text}"
    );
    // without rpicam-vid: the install hint, at start
    let out = common::maskgate_bin()
        .env("PATH", d.join("nothing"))
        .args(["run", "--simulate", "--threads"])
        .arg(common::threads().to_string())
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("rpicam-vid") && err.contains("apt install rpicam-apps"),
        "{err}"
    );
    // said before the models load (the runtime announces each interpreter it builds)
    assert!(!err.contains("XNNPACK"), "{err}");
    // a width rpicam-vid would pad: refused, with the sizes it can deliver
    let odd = d.join("odd.toml");
    std::fs::write(
        &odd,
        "[camera]\ndevice = \"rpicam\"\nwidth = 780\nheight = 360\n",
    )
    .unwrap();
    let out = common::maskgate_bin()
        .env("PATH", d.join("nothing"))
        .args(["run", "--simulate", "--config"])
        .arg(&odd)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("camera.width must be a multiple of 64") && err.contains("try 768 or 832"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
