//! A fleet on one broker: N doors, each the real MQTT publisher (`publish::mqtt::MqttSink`,
//! without inference), against one mosquitto started here, one site subscriber on
//! `maskgate/+/verdict`. Prints per N: messages/s the broker delivered to the subscriber,
//! end-to-end verdict latency p50 / p99 (the verdict's own `t_unix_ms` to its arrival) and the
//! broker's CPU (share of one core, from /proc).
//!
//! ulimit -n 8192; cargo run --release --example mqtt_load -- [--doors 10,100,1000] [--seconds 20] [--interval-ms 2000]
//!
//! `--interval-ms`: each door announces a verdict this often (a person every few seconds at a
//! busy door: no mask, mask, idle in turn); every verdict also updates the retained state and
//! counts, so the broker takes four messages per verdict.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use maskgate::kiosk::{Event, EventSink};
use maskgate::publish::mqtt::{MqttConfig, MqttSink};
use maskgate::verdict::Verdict;
use rumqttc::{Client, Event as MqEvent, MqttOptions, Packet, QoS};

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12) // fields 14 and 15 of stat, counted after the ")"
}

fn start_broker(port: u16) -> Child {
    let dir = std::env::temp_dir().join(format!("maskgate-load-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 10000\n"),
    )
    .unwrap();
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("mosquitto installed (sudo apt install mosquitto)");
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

struct Stats {
    received: AtomicU64,
    latencies: Mutex<Vec<u64>>,
}

fn subscriber(port: u16, stats: Arc<Stats>, stop: Arc<AtomicBool>) -> Client {
    let mut opts = MqttOptions::new("site-subscriber", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut conn) = Client::new(opts, 1024);
    client
        .subscribe("maskgate/+/verdict", QoS::AtLeastOnce)
        .unwrap();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match ev {
                Ok(MqEvent::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(MqEvent::Incoming(Packet::Publish(p))) => {
                    stats.received.fetch_add(1, Ordering::Relaxed);
                    let v: serde_json::Value =
                        serde_json::from_slice(&p.payload).unwrap_or_default();
                    if let Some(t) = v["t_unix_ms"].as_u64() {
                        stats
                            .latencies
                            .lock()
                            .unwrap()
                            .push(now_ms().saturating_sub(t));
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    client
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn run(doors: usize, seconds: u64, interval: Duration) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut broker = start_broker(port);
    let stats = Arc::new(Stats {
        received: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sub = subscriber(port, stats.clone(), stop.clone());
    let cfg = MqttConfig {
        url: format!("mqtt://127.0.0.1:{port}"),
        discovery_prefix: String::new(),
        ..MqttConfig::default()
    };
    let t_connect = Instant::now();
    let mut sinks: Vec<MqttSink> = (0..doors)
        .map(|i| MqttSink::start(&cfg, &format!("load-{i}")).expect("publisher starts"))
        .collect();
    while sinks.iter().any(|s| !s.connected()) {
        assert!(
            t_connect.elapsed() < Duration::from_secs(120),
            "doors did not connect"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    let cpu0 = cpu_ticks(broker.id());
    let t0 = Instant::now();
    let mut sent = 0u64;
    let seq = [Verdict::NoMask, Verdict::Mask, Verdict::Idle];
    // doors spread evenly over the interval, each announcing once per interval
    let step = interval / doors as u32;
    let mut k = 0usize;
    while t0.elapsed() < Duration::from_secs(seconds) {
        let door = k % doors;
        let e = Event::Decision {
            t_ms: 0,
            decision: seq[(k / doors) % seq.len()],
            prob: 0.9,
            frame: k as u64,
            faces: 1,
        };
        sinks[door].event(&e);
        sent += 1;
        k += 1;
        let due = step * k as u32;
        if let Some(wait) = due.checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // let the last verdicts arrive
    let t_drain = Instant::now();
    while stats.received.load(Ordering::Relaxed) < sent
        && t_drain.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu = (cpu_ticks(broker.id()) - cpu0) as f64
        / 100.0
        / (elapsed + t_drain.elapsed().as_secs_f64());
    let received = stats.received.load(Ordering::Relaxed);
    let dropped: u64 = sinks.iter().map(|s| s.dropped()).sum();
    let mut lat = stats.latencies.lock().unwrap().clone();
    println!(
        "| {doors} | {:.0} | {:.0} | {received} / {sent} | {dropped} | {} | {} | {:.0} % | {connect_s:.1} |",
        sent as f64 / elapsed,
        4.0 * sent as f64 / elapsed,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        100.0 * cpu
    );
    for s in &mut sinks {
        s.close();
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sub.disconnect();
    let _ = broker.kill();
    let _ = broker.wait();
}

fn main() {
    let doors: Vec<usize> = arg("--doors")
        .unwrap_or_else(|| "10,100,1000".into())
        .split(',')
        .map(|v| v.parse().expect("--doors N,N,..."))
        .collect();
    let seconds: u64 = arg("--seconds").map(|v| v.parse().unwrap()).unwrap_or(20);
    let interval = Duration::from_millis(
        arg("--interval-ms")
            .map(|v| v.parse().unwrap())
            .unwrap_or(2000),
    );
    println!(
        "one mosquitto on loopback, {seconds} s per row, a verdict per door every {} ms",
        interval.as_millis()
    );
    println!("| doors | verdicts/s | broker msgs in/s | verdicts received / sent | dropped | latency p50 ms | p99 ms | broker CPU (one core) | connect s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in doors {
        run(n, seconds, interval);
    }
}
