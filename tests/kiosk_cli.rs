//! `maskgate run` as an installer meets it: the --simulate JSON interface, config errors,
//! GPIO that cannot be opened, a camera that is not there, and SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run_cmd() -> Command {
    let mut c = common::maskgate_bin();
    c.arg("run")
        .arg("--threads")
        .arg(common::threads().to_string());
    c
}

#[test]
fn simulate_prints_json_events_and_dumps_the_display() {
    let (cat, astro) = (
        common::sample("chelsea.png"),
        common::sample("astronaut.jpg"),
    );
    let dir = common::sequence("cli-sim", &[(&cat, 3), (&astro, 6), (&cat, 40)]);
    let dump = common::scratch("cli-sim-dump");
    let out = run_cmd()
        .args(["--simulate", "--board", "rpi4", "--source"])
        .arg(&dir)
        .arg("--display-dump")
        .arg(&dump)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
        .collect();
    let decisions: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "decision")
        .map(|e| (e["decision"].as_str().unwrap(), e["t_ms"].as_u64().unwrap()))
        .collect();
    // third astronaut frame at 15 fps; idle when the 2 s hold is over
    assert_eq!(decisions, vec![("no_mask", 333), ("idle", 2333)]);
    let first = events.iter().find(|e| e["event"] == "decision").unwrap();
    assert!(first["prob"].as_f64().unwrap() < 0.5);
    let leds: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "led")
        .map(|e| (e["led"].as_str().unwrap(), e["on"].as_bool().unwrap()))
        .collect();
    assert_eq!(leds, vec![("red", true), ("red", false)]);
    // every distinct picture was written; the last one is "out of service"
    let displays = events.iter().filter(|e| e["event"] == "display").count();
    let mut pngs: Vec<_> = std::fs::read_dir(&dump)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), displays);
    let last = image::open(pngs.last().unwrap()).unwrap().to_luma8();
    common::check_golden("out_of_service.png", &last);
    assert!(
        err.contains("verdict"),
        "one log line per verdict on stderr: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dump);
}

#[test]
fn a_typo_in_the_config_stops_start_up_with_the_key_named() {
    let d = common::scratch("cli-typo");
    let f = d.join("maskgate.toml");
    std::fs::write(&f, "[display]\nadress = 0x3C\n").unwrap();
    let out = run_cmd()
        .arg("--config")
        .arg(&f)
        .arg("--simulate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("adress"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn camera_names_no_server_can_answer_are_refused_before_the_models_load() {
    for (source, says) in [
        ("rtsp://", "camera URL rtsp://: no host"),
        (
            "rtsp://admin:s3cret@cam:99999/live",
            "rtsp://cam:99999/live: invalid port number",
        ),
        ("http://[::1/mjpg", "invalid IPv6 address"),
        (
            "ftp://admin:s3cret@cam/x",
            "not a camera URL maskgate reads",
        ),
        ("rpicam:abc", "the Pi camera is rpicam or rpicam:N"),
    ] {
        let out = run_cmd()
            .args(["--simulate", "--source", source])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{source}: {err}");
        assert!(err.contains(says), "{source}: {err}");
        assert!(
            !err.contains("s3cret"),
            "{source}: the password reached stderr: {err}"
        );
        // said before any model loaded (which says XNNPACK), not retried as "camera offline"
        assert!(!err.contains("XNNPACK"), "{source}: {err}");
    }
}

#[test]
fn numbers_only_a_flag_takes_are_checked_by_the_flag() {
    for args in [
        &["run", "--simulate", "--fps", "NaN"][..],
        &["run", "--simulate", "--fps", "1e9"],
        &["run", "--simulate", "--max-frames", "0"],
        &["serve", "--queue", "0"],
        &["serve", "--max-body-mb", "65"],
        &["serve", "--timeout-s", "0"],
        &["serve", "--max-connections", "0"],
    ] {
        let out = common::maskgate_bin().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("invalid value"), "{args:?}: {err}");
    }
}

#[test]
fn print_config_shows_the_board_profile_merged_with_defaults() {
    let out = run_cmd()
        .args(["--board", "jetson-orin-nano", "--print-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let t: toml::Table = text.parse().unwrap();
    assert_eq!(t["gpio"]["backend"].as_str(), Some("cdev"));
    assert_eq!(t["gpio"]["green_led"].as_integer(), Some(112));
    assert_eq!(t["display"]["i2c_bus"].as_integer(), Some(7));
    assert_eq!(t["decision"]["hold_ms"].as_integer(), Some(2000));
}

#[test]
fn gpio_that_cannot_be_opened_is_a_clear_error() {
    // this machine is no Raspberry Pi and has no /dev/gpiochip7
    for (board, cfg) in [
        ("rpi4", ""),
        ("jetson-nano", "[gpio]\nchip = \"/dev/gpiochip7\"\n"),
    ] {
        let d = common::scratch(&format!("cli-gpio-{board}"));
        let f = d.join("site.toml");
        std::fs::write(&f, format!("{cfg}[camera]\ndevice = \"/dev/video97\"\n")).unwrap();
        let out = run_cmd()
            .args(["--board", board, "--config"])
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{board}: {err}");
        assert!(err.to_lowercase().contains("gpio"), "{board}: {err}");
        assert!(err.contains("--simulate"), "{board}: {err}");
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn missing_camera_degrades_and_sigterm_stops_cleanly() {
    let d = common::scratch("cli-term");
    let f = d.join("site.toml");
    std::fs::write(
        &f,
        "[camera]\ndevice = \"/dev/video98\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let dump = d.join("dump");
    let mut child = run_cmd()
        .args(["--simulate", "--board", "rpi4", "--config"])
        .arg(&f)
        .arg("--display-dump")
        .arg(&dump)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait until the loop has reported the camera offline (models load first)
    let t0 = Instant::now();
    loop {
        let n = std::fs::read_dir(&dump).map(|r| r.count()).unwrap_or(0);
        if n >= 2 || t0.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // the status endpoints tell a door controller the camera is down
    let addr = {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = vec![];
        let line = loop {
            let l = lines.next().expect("the HTTP service starts").unwrap();
            seen.push(l.clone());
            if l.contains("HTTP service listening") {
                break l;
            }
        };
        // keep draining stderr so the child never blocks on a full pipe
        let rest = std::thread::spawn(move || {
            seen.extend(lines.map_while(Result::ok));
            seen.join("\n")
        });
        let addr = line
            .split("addr=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        (addr.to_string(), rest)
    };
    let (addr, stderr) = addr;
    let verdict: serde_json::Value = serde_json::from_str(
        &ureq::get(&format!("http://{addr}/v1/verdict"))
            .call()
            .unwrap()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(verdict["decision"], "idle");
    assert_eq!(verdict["camera_online"], false);
    // the loop's own metrics follow the service's in /metrics
    let metrics = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for want in [
        "maskgate_kiosk_camera_up 0",
        "maskgate_kiosk_display_up 1",
        "maskgate_kiosk_frames_total 0",
    ] {
        assert!(metrics.contains(want), "{want} in\n{metrics}");
    }
    match ureq::get(&format!("http://{addr}/healthz")).call() {
        Err(ureq::Error::Status(503, _)) => {}
        other => panic!("healthz with the camera offline: {other:?}"),
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr.join().unwrap();
    assert!(
        out.status.success(),
        "SIGTERM is a clean stop (exit 0): {err}"
    );
    assert!(err.contains("/dev/video98"), "{err}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(r#"{"event":"camera","t_ms":"#) && text.contains(r#""online":false"#),
        "{text}"
    );
    let mut pngs: Vec<_> = std::fs::read_dir(&dump)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pngs.sort();
    let pic = |i: usize| image::open(&pngs[i]).unwrap().to_luma8();
    common::check_golden("camera_offline.png", &pic(1));
    common::check_golden("out_of_service.png", &pic(pngs.len() - 1));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn systemd_gets_status_lines_and_journald_gets_priorities() {
    use std::os::unix::net::UnixDatagram;
    let (cat, astro) = (
        common::sample("chelsea.png"),
        common::sample("astronaut.jpg"),
    );
    let dir = common::sequence("cli-systemd", &[(&cat, 3), (&astro, 6), (&cat, 30)]);
    let scratch = common::scratch("cli-notify");
    let sock_path = scratch.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_nonblocking(true).unwrap();
    let out = run_cmd()
        .args(["--simulate", "--board", "rpi4", "--source"])
        .arg(&dir)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("JOURNAL_STREAM", "8:12345")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let mut got = vec![];
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let has = |p: &str| got.iter().any(|m| m.contains(p));
    assert!(has("STATUS=running: "), "{got:?}");
    assert!(has(" fps, last verdict no_mask"), "{got:?}");
    assert!(
        has("STOPPING=1") && has("STATUS=stopping: source ended"),
        "{got:?}"
    );
    assert!(
        !has("READY=1"),
        "READY is for the real outputs only: {got:?}"
    );
    // every tracing line carries its syslog priority for journald
    let logged: Vec<&str> = err.lines().filter(|l| l.contains("maskgate::")).collect();
    assert!(!logged.is_empty(), "{err}");
    for l in &logged {
        assert!(
            l.starts_with("<6>") || l.starts_with("<4>") || l.starts_with("<3>"),
            "{l}"
        );
    }
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("verdict")),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn selftest_names_each_pin_lights_green_then_red_and_draws_the_test_screen() {
    let d = common::scratch("cli-selftest");
    let dump = d.join("dump");
    let out = common::maskgate_bin()
        .args([
            "selftest",
            "--simulate",
            "--board",
            "rpi4",
            "--display-dump",
        ])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let steps: Vec<&str> = text.lines().filter(|l| l.starts_with("step ")).collect();
    assert_eq!(
        steps,
        [
            "step 1/4: display: SSD1306 at 0x3c on /dev/i2c-1 shows SELF TEST",
            "step 2/4: green LED on GPIO17 (BCM); buzzer on GPIO22 (BCM): pattern 80 ms",
            "step 3/4: red LED on GPIO27 (BCM); buzzer on GPIO22 (BCM): pattern 150/100/150/100/150 ms",
            "step 4/4: all off: LEDs dark, buzzer quiet, display back to WELCOME",
        ]
    );
    let green = text.find(r#""led":"green","on":true"#);
    let red = text.find(r#""led":"red","on":true"#);
    assert!(green.is_some() && green < red, "{text}");
    assert!(text.contains(r#""event":"buzzer""#), "{text}");
    let first = image::open(dump.join("0000.png")).unwrap().to_luma8();
    common::check_golden("selftest.png", &first);
    let _ = std::fs::remove_dir_all(&d);
}
