//! The door on a real MQTT broker: mosquitto started by the test on a free loopback port, the
//! kiosk (`maskgate run --simulate`) publishing, a rumqttc subscriber listening. Skips with a
//! message when mosquitto is not installed (`.ci/run` installs it through scripts/setup.sh).

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maskgate::kiosk::{Event as DoorEvent, EventSink};
use maskgate::publish::mqtt::{MqttConfig, MqttSink};
use maskgate::verdict::Verdict;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

fn mosquitto_bin() -> Option<PathBuf> {
    let candidates = [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ];
    let found = candidates.iter().map(PathBuf::from).find(|p| p.is_file());
    if found.is_none() {
        eprintln!("SKIPPED: mosquitto is not installed (sudo apt install mosquitto; scripts/setup.sh does)");
    }
    found
}

/// A broker of the test's own, stopped when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start() -> Option<Self> {
        Self::start_on(common::free_port(), "allow_anonymous true\n")
    }

    /// A broker on `port` with `extra` config lines.
    fn start_on(port: u16, extra: &str) -> Option<Self> {
        let bin = mosquitto_bin()?;
        let dir = common::scratch(&format!("mosquitto-{port}"));
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\npersistence false\n{extra}"),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { child, port })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Debug)]
struct Msg {
    topic: String,
    payload: String,
    retain: bool,
}

/// Subscribes to `filters` and collects every message until dropped.
struct Subscriber {
    msgs: Arc<Mutex<Vec<Msg>>>,
    client: Client,
}

impl Subscriber {
    fn start(port: u16, name: &str, filters: &[&str]) -> Self {
        let mut opts = MqttOptions::new(name, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut conn) = Client::new(opts, 16);
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
        let m = msgs.clone();
        let n = filters.len();
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let c = client.clone();
        std::thread::spawn(move || {
            let mut acks = 0;
            for ev in conn.iter() {
                match ev {
                    // (re)connected: a clean session has no subscriptions
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for f in &filters {
                            let _ = c.try_subscribe(f.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        acks += 1;
                        if acks == n {
                            let _ = subscribed_tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => m.lock().unwrap().push(Msg {
                        topic: p.topic.clone(),
                        payload: String::from_utf8_lossy(&p.payload).into_owned(),
                        retain: p.retain,
                    }),
                    Ok(_) => {}
                    Err(rumqttc::ConnectionError::RequestsDone) => return,
                    // the broker went away: keep polling, rumqttc reconnects
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        subscribed
            .recv_timeout(Duration::from_secs(10))
            .expect("subscribed");
        Self { msgs, client }
    }

    /// Waits until `pred` holds for the messages so far (or 10 s), then returns them.
    fn wait_for(&self, pred: impl Fn(&[Msg]) -> bool) -> Vec<Msg> {
        let t0 = Instant::now();
        loop {
            let m = self.msgs.lock().unwrap().clone();
            if pred(&m) || t0.elapsed() > Duration::from_secs(10) {
                return m;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
    }
}

fn payloads<'a>(m: &'a [Msg], topic: &str) -> Vec<&'a str> {
    m.iter()
        .filter(|x| x.topic == topic)
        .map(|x| x.payload.as_str())
        .collect()
}

/// An unmasked person for 6 frames between empty frames: one no_mask verdict, then idle.
fn door_run(extra: &[&str]) -> std::process::Output {
    let (cat, astro) = (
        common::sample("chelsea.png"),
        common::sample("astronaut.jpg"),
    );
    let dir = common::sequence("mqtt-door", &[(&cat, 3), (&astro, 6), (&cat, 40)]);
    common::maskgate_bin()
        .args(["run", "--threads", &common::threads().to_string()])
        .args([
            "--simulate",
            "--board",
            "rpi4",
            "--door-id",
            "test-door",
            "--source",
        ])
        .arg(&dir)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_door_publishes_state_verdicts_and_discovery_to_a_real_broker() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let live = Subscriber::start(broker.port, "live", &["maskgate/#", "homeassistant/#"]);
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let out = door_run(&["--mqtt", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let base = "maskgate/test-door";
    let m = live.wait_for(|m| payloads(m, &format!("{base}/availability")).contains(&"offline"));
    // online first, offline on the clean stop
    assert_eq!(
        payloads(&m, &format!("{base}/availability")),
        ["online", "offline"],
        "{m:?}"
    );
    let verdicts: Vec<serde_json::Value> = payloads(&m, &format!("{base}/verdict"))
        .iter()
        .map(|p| serde_json::from_str(p).expect("verdict JSON"))
        .collect();
    let decisions: Vec<&str> = verdicts
        .iter()
        .map(|v| v["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["no_mask", "idle"], "{m:?}");
    assert!(verdicts[0]["prob"].as_f64().unwrap() < 0.5);
    assert!(verdicts[0]["faces"].as_u64().unwrap() >= 1);
    assert!(verdicts[0]["t_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(payloads(&m, &format!("{base}/state")).last(), Some(&"idle"));
    assert_eq!(
        payloads(&m, &format!("{base}/camera")).last(),
        Some(&"online")
    );
    let counts: serde_json::Value =
        serde_json::from_str(payloads(&m, &format!("{base}/counts")).last().unwrap()).unwrap();
    assert_eq!(
        (counts["mask"].as_u64(), counts["no_mask"].as_u64()),
        (Some(0), Some(1))
    );
    let config = "homeassistant/sensor/maskgate_test-door/decision/config";
    let cfg: serde_json::Value = serde_json::from_str(payloads(&m, config)[0]).unwrap();
    assert_eq!(cfg["state_topic"], format!("{base}/state"));
    assert_eq!(cfg["availability_topic"], format!("{base}/availability"));

    // what a subscriber arriving later (Home Assistant after a restart) finds retained
    let late = Subscriber::start(broker.port, "late", &["maskgate/#", "homeassistant/#"]);
    let r = late.wait_for(|m| m.len() >= 8);
    let retained = |t: &str| {
        r.iter()
            .find(|x| x.topic == t && x.retain)
            .map(|x| x.payload.as_str())
    };
    assert_eq!(retained(&format!("{base}/availability")), Some("offline"));
    assert_eq!(retained(&format!("{base}/state")), Some("idle"));
    assert_eq!(retained(&format!("{base}/camera")), Some("online"));
    for c in [
        "homeassistant/sensor/maskgate_test-door/decision/config",
        "homeassistant/binary_sensor/maskgate_test-door/camera/config",
        "homeassistant/sensor/maskgate_test-door/mask/config",
        "homeassistant/sensor/maskgate_test-door/no_mask/config",
    ] {
        assert!(retained(c).is_some(), "{c} retained: {r:?}");
    }
    assert!(
        !r.iter().any(|x| x.topic.ends_with("/verdict")),
        "verdicts are not retained"
    );
}

#[test]
fn a_dead_broker_or_a_bad_url_leaves_the_door_working() {
    // nothing listens on this port: logged once, retried, the door runs and stops as usual
    let url = format!("mqtt://127.0.0.1:{}", common::free_port());
    let out = door_run(&["--mqtt", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("MQTT broker unreachable").count(), 1, "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""decision":"no_mask""#), "{stdout}");

    let out = door_run(&["--mqtt", "tcp://broker:1883"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("mqtt.url") && err.contains("MQTT off"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""decision":"no_mask""#));
}

fn decision(d: Verdict) -> DoorEvent {
    DoorEvent::Decision {
        t_ms: 0,
        decision: d,
        prob: 0.9,
        frame: 0,
        faces: 1,
    }
}

fn verdict_decisions(m: &[Msg], door: &str) -> Vec<String> {
    payloads(m, &format!("maskgate/{door}/verdict"))
        .iter()
        .map(|p| {
            serde_json::from_str::<serde_json::Value>(p).unwrap()["decision"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn verdicts_made_while_the_broker_is_away_arrive_when_it_returns() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let port = broker.port;
    let sub = Subscriber::start(port, "watcher", &["maskgate/#"]);
    let cfg = MqttConfig {
        url: format!("mqtt://127.0.0.1:{port}"),
        queue: 3,
        ..MqttConfig::default()
    };
    let mut sink = MqttSink::start(&cfg, "away").unwrap();
    sink.event(&decision(Verdict::NoMask));
    let m = sub.wait_for(|m| verdict_decisions(m, "away").len() == 1);
    assert_eq!(verdict_decisions(&m, "away"), ["no_mask"]);

    drop(broker); // killed mid-run
    let t0 = Instant::now();
    while sink.connected() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the sink never saw the broker go"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // five verdicts while it is away; the queue keeps the newest three
    for d in [
        Verdict::Idle,
        Verdict::Mask,
        Verdict::Idle,
        Verdict::NoMask,
        Verdict::Mask,
    ] {
        sink.event(&decision(d));
    }
    assert_eq!(sink.dropped(), 2);
    let _broker = Broker::start_on(port, "allow_anonymous true\n").unwrap();
    let m = sub.wait_for(|m| verdict_decisions(m, "away").len() == 4);
    assert_eq!(
        verdict_decisions(&m, "away"),
        ["no_mask", "idle", "no_mask", "mask"]
    );
    // availability and the retained state were sent again on the new connection
    let online = payloads(&m, "maskgate/away/availability");
    assert!(
        online.iter().filter(|p| **p == "online").count() >= 2,
        "{m:?}"
    );
    assert_eq!(payloads(&m, "maskgate/away/state").last(), Some(&"mask"));
    let counts: serde_json::Value =
        serde_json::from_str(payloads(&m, "maskgate/away/counts").last().unwrap()).unwrap();
    assert_eq!(
        (counts["mask"].as_u64(), counts["no_mask"].as_u64()),
        (Some(2), Some(2))
    );
    sink.close();
    let m = sub.wait_for(|m| payloads(m, "maskgate/away/availability").last() == Some(&"offline"));
    assert_eq!(
        payloads(&m, "maskgate/away/availability").last(),
        Some(&"offline")
    );
}

#[test]
fn wrong_credentials_are_named_and_the_door_keeps_working() {
    let Some(bin) = mosquitto_bin() else {
        return;
    };
    let dir = common::scratch("mqtt-auth");
    let passwd = dir.join("passwd");
    let tool = bin.with_file_name("mosquitto_passwd");
    let tool = if tool.is_file() {
        tool
    } else {
        PathBuf::from("/usr/bin/mosquitto_passwd")
    };
    let ok = Command::new(tool)
        .args(["-c", "-b"])
        .arg(&passwd)
        .args(["door", "right-password"])
        .status()
        .unwrap();
    assert!(ok.success());
    let port = common::free_port();
    let _broker = Broker::start_on(
        port,
        &format!(
            "allow_anonymous false\npassword_file {}\n",
            passwd.display()
        ),
    )
    .unwrap();
    let site = dir.join("site.toml");
    let secret = dir.join("mqtt-password");
    std::fs::write(&secret, "wrong-password\n").unwrap();
    std::fs::write(
        &site,
        format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nusername = \"door\"\npassword_file = \"{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let out = door_run(&["--config", site.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("refused the credentials") && err.contains("mqtt.password_file"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""decision":"no_mask""#));
    // the right password connects
    std::fs::write(&secret, "right-password\n").unwrap();
    let out = door_run(&["--config", site.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("MQTT connected"),
        "{err}"
    );
}

/// `openssl` with `args` in `dir`; false when openssl is not there.
fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    match Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) => {
            assert!(s.success(), "openssl {args:?}");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn tls_to_the_broker_checks_its_certificate() {
    if mosquitto_bin().is_none() {
        return;
    }
    let dir = common::scratch("mqtt-tls");
    // a CA, a broker certificate it signs for 127.0.0.1, and an unrelated CA
    if !openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=maskgate test CA",
        ],
    ) {
        eprintln!("SKIPPED: openssl is not installed (it makes the test certificates)");
        return;
    }
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-days",
            "2",
            "-subj",
            "/CN=someone else",
        ],
    );
    // mosquitto started as root drops to its own user, which must read the key
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (plain, tls) = (common::free_port(), common::free_port());
    let d = dir.display();
    let _broker = Broker::start_on(
        plain,
        &format!(
            "allow_anonymous true\nlistener {tls} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n"
        ),
    )
    .unwrap();
    let sub = Subscriber::start(plain, "tls-watcher", &["maskgate/#"]);
    let site = |ca: &str| {
        let f = dir.join(format!("site-{ca}.toml"));
        std::fs::write(
            &f,
            format!("[mqtt]\nurl = \"mqtts://127.0.0.1:{tls}\"\nca_file = \"{d}/{ca}.pem\"\n"),
        )
        .unwrap();
        f
    };
    let out = door_run(&["--config", site("ca").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("MQTT connected"),
        "{err}"
    );
    let m = sub.wait_for(|m| verdict_decisions(m, "test-door").len() == 2);
    assert_eq!(verdict_decisions(&m, "test-door"), ["no_mask", "idle"]);
    // a broker whose certificate the configured CA did not sign: refused, said once, door fine
    let out = door_run(&["--config", site("other").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("TLS failed").count(), 1, "{err}");
    assert!(!err.contains("MQTT connected"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""decision":"no_mask""#));
}
