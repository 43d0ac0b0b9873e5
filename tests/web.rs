//! The installer's web page on a simulated door playing a folder in real time and forever
//! (`run --simulate --realtime --loop`): the status JSON, the live view (snapshot and MJPEG),
//! the self-test over HTTP reaching the outputs, and the page rendered by a real headless
//! Chromium (`--dump-dom` shows the door's decision and a verdict; a screenshot is saved).
//! The browser part skips with a message when Chromium is absent.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running demo door; killed (SIGTERM) on drop.
struct Demo {
    child: Child,
    base: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Demo {
    fn start(name: &str, dir: &Path, extra_http: &str) -> Self {
        let seq = common::sequence(
            &format!("{name}-seq"),
            &[
                (&common::sample("astronaut.jpg"), 36),
                (&common::sample("chelsea.png"), 12),
            ],
        );
        let site = dir.join("site.toml");
        std::fs::write(
            &site,
            format!("[http]\nlisten = \"127.0.0.1:0\"\n{extra_http}\n"),
        )
        .unwrap();
        // under emulation a 640x480 frame takes about a second: the small detector keeps
        // enough frames per person for a verdict
        let emulated = std::env::var("MASKGATE_TEST_RUNNER").is_ok_and(|r| !r.is_empty());
        let size = if emulated { "320x240" } else { "640x480" };
        let mut child = common::maskgate_bin()
            .args(["run", "--simulate", "--realtime", "--loop", "--fps", "6"])
            .args(["--input-size", size])
            .args(["--threads", &common::threads().to_string()])
            .args(["--board", "rpi4", "--config"])
            .arg(&site)
            .arg("--source")
            .arg(&seq)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        {
            let err = stderr.clone();
            let pipe = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if l.contains("HTTP service listening") {
                        let a = l.split("addr=").nth(1).unwrap().split_whitespace().next();
                        let _ = addr_tx.send(a.unwrap().to_string());
                    }
                    let mut e = err.lock().unwrap();
                    e.push_str(&l);
                    e.push('\n');
                }
            });
            let out = stdout.clone();
            let pipe = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&l);
                    o.push('\n');
                }
            });
        }
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(180))
            .unwrap_or_else(|_| panic!("no listener: {}", stderr.lock().unwrap()));
        Self {
            child,
            base: format!("http://{addr}"),
            stdout,
            stderr,
        }
    }

    fn status(&self) -> serde_json::Value {
        let body = ureq::get(&format!("{}/v1/status", self.base))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// Polls /v1/status until `ok` holds (the emulated build is slow to warm up).
    fn wait_for(&self, what: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            let s = self.status();
            if ok(&s) {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(240),
                "{what}: {s}\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn a_no_mask_verdict(s: &serde_json::Value) -> bool {
    s["door"]["recent"]
        .as_array()
        .is_some_and(|r| r.iter().any(|v| v["decision"] == "no_mask"))
}

#[test]
fn status_live_view_and_selftest_on_a_realtime_demo_door() {
    let dir = common::scratch("web-live");
    let demo = Demo::start("web-live", &dir, "live_view = true");
    let s = demo.wait_for("a no-mask verdict on the page's list", a_no_mask_verdict);
    let d = &s["door"];
    assert_eq!(d["board"], "rpi4");
    assert_eq!(d["live_view"], true);
    assert_eq!(d["camera"]["online"], true);
    assert!(
        d["camera"]["source"]
            .as_str()
            .unwrap()
            .contains("48 images"),
        "{s}"
    );
    assert_eq!(
        d["display"]["device"],
        "simulated SSD1306 /dev/i2c-1 @ 0x3c"
    );
    assert!(d["mqtt"].is_null());
    assert!(d["frames"].as_u64().unwrap() > 0);
    assert!(d["inference_ms"].as_f64().unwrap() > 0.0, "{s}");
    assert_eq!(d["selftest"].as_array().unwrap().len(), 4);

    // the snapshot: the frame as the camera gives it, boxes drawn
    let r = ureq::get(&format!("{}/snapshot.jpg", demo.base))
        .call()
        .unwrap();
    assert_eq!(r.header("Content-Type"), Some("image/jpeg"));
    let mut jpeg = Vec::new();
    r.into_reader().read_to_end(&mut jpeg).unwrap();
    let img = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    assert!(
        [(512, 512), (451, 300)].contains(&(img.width(), img.height())),
        "{}x{}",
        img.width(),
        img.height()
    );
    img.save(dir.join("snapshot.png")).unwrap();

    // the stream: multipart parts, each a JPEG
    let r = ureq::get(&format!("{}/live.mjpg", demo.base))
        .call()
        .unwrap();
    assert_eq!(
        r.header("Content-Type"),
        Some("multipart/x-mixed-replace; boundary=frame")
    );
    let mut rd = BufReader::new(r.into_reader());
    for _ in 0..2 {
        let mut line = String::new();
        rd.read_line(&mut line).unwrap();
        assert_eq!(line, "--frame\r\n");
        let mut len = 0;
        loop {
            let mut h = String::new();
            rd.read_line(&mut h).unwrap();
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.strip_prefix("Content-Length: ") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut part = vec![0; len + 2];
        rd.read_exact(&mut part).unwrap();
        assert_eq!(&part[..2], b"\xff\xd8", "a JPEG");
    }
    drop(rd);

    // the self-test, asked over HTTP, reaches the outputs: green, then red, named in the log
    let before = demo.stdout.lock().unwrap().len();
    let r = ureq::post(&format!("{}/v1/selftest", demo.base))
        .call()
        .unwrap();
    assert_eq!(r.status(), 202);
    let t0 = Instant::now();
    while !demo.stderr.lock().unwrap().contains("self-test done") {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{}",
            demo.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = demo.stderr.lock().unwrap().clone();
    assert!(
        err.contains("self-test: green LED on GPIO17 (BCM)"),
        "{err}"
    );
    assert!(err.contains("self-test: red LED on GPIO27 (BCM)"), "{err}");
    let events = demo.stdout.lock().unwrap()[before..].to_string();
    let green = events.find(r#""led":"green","on":true"#);
    let red = events.find(r#""led":"red","on":true"#);
    assert!(green.is_some() && red.is_some() && green < red, "{events}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Debian's browser itself first: its `/usr/bin/chromium` wrapper refuses to start when
/// /proc/cpuinfo lacks sse3, which the aarch64 runner's Pi 4 cpuinfo does.
fn chromium() -> Option<PathBuf> {
    [
        "/usr/lib/chromium/chromium",
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// One run of headless Chromium: what it printed, how it ended, the tail of its stderr.
struct BrowserRun {
    stdout: String,
    status: String,
    stderr_tail: String,
}

/// Runs headless Chromium with `args` and a hard time limit. The flags beyond headless keep
/// it off the network this machine does not have (background fetches, component updates,
/// sync, QUIC), as the machine's own Chromium probe starts it.
fn browser_once(bin: &Path, args: &[String]) -> BrowserRun {
    let profile = common::scratch("chromium-profile");
    let err_path = profile.with_extension("stderr");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-crash-reporter",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut pipe = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = pipe.read_to_string(&mut out);
        out
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break format!("{st}");
        }
        if t0.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            break "killed after 90 s".to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = reader.join().unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    // dbus complaints fill Chromium's stderr on a machine without a session bus
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains(":ERROR:dbus/"))
        .collect();
    let stderr_tail = lines[lines.len().saturating_sub(20)..].join("\n");
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_file(&err_path);
    BrowserRun {
        stdout,
        status,
        stderr_tail,
    }
}

/// Runs Chromium until `done` holds, at most three times: a headless browser that dies at
/// start on a fresh machine is the browser's fault, not the page's; three in a row fail the
/// test with what Chromium said each time.
fn browser(bin: &Path, args: &[String], done: impl Fn(&BrowserRun) -> bool) -> String {
    let mut said = Vec::new();
    for attempt in 1..=3 {
        let run = browser_once(bin, args);
        if done(&run) {
            if attempt > 1 {
                eprintln!("chromium needed {attempt} starts:\n{}", said.join("\n"));
            }
            return run.stdout;
        }
        said.push(format!(
            "start {attempt}: {}, {} bytes on stdout, stderr:\n{}",
            run.status,
            run.stdout.len(),
            run.stderr_tail
        ));
    }
    panic!("chromium {args:?} never finished:\n{}", said.join("\n"));
}

#[test]
fn chromium_renders_the_status_page_with_the_decision_and_a_verdict() {
    let Some(bin) = chromium() else {
        eprintln!("SKIPPED: no Chromium (/usr/bin/chromium; scripts/setup.sh installs it)");
        return;
    };
    let dir = common::scratch("web-browser");
    let demo = Demo::start("web-browser", &dir, "live_view = true");
    demo.wait_for("a no-mask verdict on the page's list", a_no_mask_verdict);
    let url = format!("{}/", demo.base);
    // the page fetches /v1/status as it loads; give its script a few seconds of its clock
    let dom = browser(
        &bin,
        &[
            "--virtual-time-budget=3000".into(),
            "--dump-dom".into(),
            url.clone(),
        ],
        |run| run.stdout.contains("</html>"),
    );
    assert!(dom.contains("<title>maskgate</title>"), "{dom}");
    let decision = dom
        .split("id=\"decision\"")
        .nth(1)
        .and_then(|rest| rest.split('>').nth(1))
        .and_then(|t| t.split('<').next())
        .unwrap_or("");
    assert!(
        ["MASK", "NO MASK", "IDLE"].contains(&decision),
        "the decision box shows the door's decision, not a placeholder: {decision:?}\n{dom}"
    );
    assert!(dom.contains("<td class=\"no_mask\">NO MASK</td>"), "{dom}");
    assert!(dom.contains("board rpi4"), "{dom}");
    assert!(dom.contains("fps</dd>"), "{dom}");
    // a screenshot of the page as an installer sees it (README: docs/status-page.png)
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    browser(
        &bin,
        &[
            "--window-size=1200,860".into(),
            "--virtual-time-budget=3000".into(),
            format!("--screenshot={}", shot.display()),
            url,
        ],
        |_| shot.exists(),
    );
    let png = image::open(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert_eq!((png.width(), png.height()), (1200, 860));
    println!("screenshot: {}", shot.display());
    let _ = std::fs::remove_dir_all(&dir);
}
