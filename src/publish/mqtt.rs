//! The door on a site's MQTT broker, and in Home Assistant through MQTT discovery.
//!
//! Topics under `<topic_prefix>/<door_id>/` (default `maskgate/<hostname>/`):
//! * `availability` — `online` / `offline`, retained; the broker's last will says `offline`;
//! * `state` — the current decision `mask` / `no_mask` / `idle`, retained;
//! * `verdict` — one JSON object per verdict (`decision`, `prob`, `t_unix_ms`, `faces`), QoS 1;
//! * `camera` — `online` / `offline`, retained;
//! * `counts` — verdicts since start, `{"mask": N, "no_mask": N}`, retained.
//!
//! rumqttc's synchronous client (the maintained pure-Rust MQTT client) does the protocol. Two
//! threads of ours: one drives the connection (and its reconnects, with back-off), one
//! publishes. The frame loop only appends to a bounded queue ([`MqttSink::event`]); when the
//! broker is away the oldest verdicts are dropped and counted, and on every (re)connect the
//! discovery configs, availability and the retained state are sent again.
//!
//! `mqtts://` is TLS through rustls with its ring provider (the default provider, aws-lc-rs,
//! would need cmake and a C toolchain per target): the broker's certificate is checked against
//! `mqtt.ca_file` or the system's roots, and `mqtt.client_cert_file` / `client_key_file` give a
//! client certificate to brokers that ask for one.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rumqttc::{
    Client, ConnectReturnCode, ConnectionError, Event as MqEvent, LastWill, MqttOptions, Outgoing,
    Packet, QoS, TlsConfiguration, Transport,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bounded_read;
use crate::kiosk::{Event, EventSink};
use crate::verdict::Verdict;

/// The `[mqtt]` config section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker, "mqtt://HOST[:PORT]" (port 1883 by default). Default "" = no MQTT.
    pub url: String,
    /// Default "" = anonymous.
    pub username: String,
    /// File whose first line is the password (keep it readable by the service user only).
    /// Default "".
    pub password_file: String,
    /// Topics go under `<topic_prefix>/<door_id>/`. Default "maskgate".
    pub topic_prefix: String,
    /// Home Assistant's discovery prefix; "" = no discovery messages. Default "homeassistant".
    pub discovery_prefix: String,
    /// Verdicts kept while the broker is away; beyond it the oldest are dropped. Default 64.
    pub queue: usize,
    /// mqtts:// only: PEM file of the CA that signed the broker's certificate. Default "" =
    /// the system's trusted roots.
    pub ca_file: String,
    /// mqtts:// only: PEM client certificate and key, for brokers that require one. Default "".
    pub client_cert_file: String,
    pub client_key_file: String,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            username: String::new(),
            password_file: String::new(),
            topic_prefix: "maskgate".into(),
            discovery_prefix: "homeassistant".into(),
            queue: 64,
            ca_file: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
        }
    }
}

/// A setting the publisher cannot start with; the door runs without MQTT and says which.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("mqtt.url {url:?}: {reason} (e.g. \"mqtt://broker.local:1883\")")]
    Url { url: String, reason: &'static str },
    #[error("mqtt.password_file {}: {source}", path.display())]
    Password {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{setting} {}: {reason}", path.display())]
    Tls {
        setting: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("door id {0:?}: letters, digits, '-' and '_' only, as it is part of every MQTT topic (service.door_id / --door-id)")]
    DoorId(String),
    #[error("cannot start the MQTT threads: {0}")]
    Threads(#[source] io::Error),
}

/// Where the broker is: "mqtt://HOST[:PORT]" (1883) or "mqtts://HOST[:PORT]" (TLS, 8883).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

pub fn parse_url(url: &str) -> Result<Broker, MqttError> {
    let bad = |reason| MqttError::Url {
        url: url.to_string(),
        reason,
    };
    let (rest, tls) = if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false)
    } else {
        return Err(bad("must start with mqtt:// or mqtts://"));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("bad port number"))?),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() || host.contains('/') || port == 0 {
        return Err(bad("needs a host name and a port"));
    }
    Ok(Broker {
        host: host.to_string(),
        port,
        tls,
    })
}

/// The rustls client setup for `cfg`: trusted roots, an optional client certificate.
fn tls_config(cfg: &MqttConfig) -> Result<rustls::ClientConfig, MqttError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |setting, path: &str, reason: String| MqttError::Tls {
        setting,
        path: PathBuf::from(path),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    if cfg.ca_file.is_empty() {
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
    } else {
        let certs = CertificateDer::pem_file_iter(&cfg.ca_file)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| fail("mqtt.ca_file", &cfg.ca_file, e.to_string()))?;
        for c in certs {
            roots
                .add(c)
                .map_err(|e| fail("mqtt.ca_file", &cfg.ca_file, e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(fail(
            "mqtt.ca_file",
            &cfg.ca_file,
            "no CA certificate to trust".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("mqtt.url", &cfg.url, e.to_string()))?
        .with_root_certificates(roots);
    if cfg.client_cert_file.is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let chain = CertificateDer::pem_file_iter(&cfg.client_cert_file)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            fail(
                "mqtt.client_cert_file",
                &cfg.client_cert_file,
                e.to_string(),
            )
        })?;
    let key = PrivateKeyDer::from_pem_file(&cfg.client_key_file)
        .map_err(|e| fail("mqtt.client_key_file", &cfg.client_key_file, e.to_string()))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| fail("mqtt.client_key_file", &cfg.client_key_file, e.to_string()))
}

/// The door's id: `configured`, else the host name; checked for use in topics.
pub fn door_id(configured: &str) -> Result<String, MqttError> {
    let id = if configured.is_empty() {
        super::hostname().unwrap_or_else(|| "maskgate".into())
    } else {
        configured.to_string()
    };
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(id.clone()).ok_or(MqttError::DoorId(id))
}

/// Every topic of one door.
#[derive(Clone, Debug)]
pub struct Topics {
    base: String,
    discovery: String,
    id: String,
}

impl Topics {
    pub fn new(cfg: &MqttConfig, door_id: &str) -> Self {
        Self {
            base: format!("{}/{door_id}", cfg.topic_prefix.trim_end_matches('/')),
            discovery: cfg.discovery_prefix.trim_end_matches('/').to_string(),
            id: door_id.to_string(),
        }
    }
    pub fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }
    pub fn state(&self) -> String {
        format!("{}/state", self.base)
    }
    pub fn verdict(&self) -> String {
        format!("{}/verdict", self.base)
    }
    pub fn camera(&self) -> String {
        format!("{}/camera", self.base)
    }
    pub fn counts(&self) -> String {
        format!("{}/counts", self.base)
    }

    /// Home Assistant discovery: (config topic, JSON) for the decision sensor, the camera
    /// binary sensor and the two verdict counters, all on one device.
    pub fn discovery(&self) -> Vec<(String, String)> {
        if self.discovery.is_empty() {
            return Vec::new();
        }
        let uid = format!("maskgate_{}", self.id);
        let device = json!({
            "identifiers": [uid],
            "name": format!("maskgate {}", self.id),
            "manufacturer": "maskgate",
            "model": "door mask check",
            "sw_version": env!("CARGO_PKG_VERSION"),
        });
        let common = |name: &str, key: &str| {
            json!({
                "name": name,
                "unique_id": format!("{uid}_{key}"),
                "object_id": format!("{uid}_{key}"),
                "availability_topic": self.availability(),
                "device": device,
            })
        };
        let mut out = Vec::new();
        let mut push =
            |component: &str, key: &str, mut v: serde_json::Value, extra: serde_json::Value| {
                if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                    o.extend(e.clone());
                }
                out.push((
                    format!("{}/{component}/{uid}/{key}/config", self.discovery),
                    v.to_string(),
                ));
            };
        push(
            "sensor",
            "decision",
            common("Decision", "decision"),
            json!({"state_topic": self.state(), "icon": "mdi:face-mask"}),
        );
        push(
            "binary_sensor",
            "camera",
            common("Camera", "camera"),
            json!({"state_topic": self.camera(), "payload_on": "online", "payload_off": "offline",
                   "device_class": "connectivity"}),
        );
        for (key, name) in [
            ("mask", "Masked verdicts"),
            ("no_mask", "Unmasked verdicts"),
        ] {
            push(
                "sensor",
                key,
                common(name, key),
                json!({"state_topic": self.counts(), "value_template": format!("{{{{ value_json.{key} }}}}"),
                       "state_class": "total_increasing", "icon": "mdi:counter"}),
            );
        }
        out
    }
}

/// What is retained on the broker, re-sent on every connect.
#[derive(Clone, Copy, Debug)]
struct Retained {
    state: Verdict,
    camera: bool,
    mask: u64,
    no_mask: u64,
}

/// One verdict as queued by the frame loop: fixed size, so queueing never allocates.
#[derive(Clone, Copy, Debug)]
struct VerdictRec {
    decision: Verdict,
    prob: f32,
    t_unix_ms: u64,
    faces: u32,
}

impl VerdictRec {
    fn json(&self) -> String {
        json!({"decision": self.decision, "prob": (f64::from(self.prob) * 1e4).round() / 1e4,
               "t_unix_ms": self.t_unix_ms, "faces": self.faces})
        .to_string()
    }
}

struct Inner {
    /// Capacity reserved at start: `push_back` below it does not allocate.
    verdicts: VecDeque<VerdictRec>,
    cap: usize,
    retained: Retained,
    /// Retained topics changed since they were last sent.
    dirty: bool,
    connected: bool,
    /// A (re)connect: discovery, availability and the retained state go out again.
    resend: bool,
    stopping: bool,
}

struct Shared {
    m: Mutex<Inner>,
    cv: Condvar,
    /// Whether the broker has the connection (the kiosk's `mqtt_connected` when it has one).
    connected_gauge: Gauge,
    /// Verdicts dropped (the kiosk's `mqtt_dropped` when it has one): the only count of them.
    dropped_counter: Counter,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.m.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long a stopping door waits for the broker to take what is queued.
const FLUSH: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The MQTT publisher as a kiosk event sink.
pub struct MqttSink {
    shared: Arc<Shared>,
    publisher: Option<JoinHandle<()>>,
    net_done: Option<Receiver<()>>,
}

impl MqttSink {
    /// Starts the two threads; the connection is made (and remade) in the background, so a
    /// broker that is down at start only delays the messages.
    pub fn start(cfg: &MqttConfig, door_id: &str) -> Result<Self, MqttError> {
        Self::start_counted(cfg, door_id, (Gauge::default(), Counter::default()))
    }

    /// [`MqttSink::start`], reporting the connection and the drops into these metrics.
    pub fn start_counted(
        cfg: &MqttConfig,
        door_id: &str,
        metrics: (Gauge, Counter),
    ) -> Result<Self, MqttError> {
        let broker = parse_url(&cfg.url)?;
        let topics = Topics::new(cfg, door_id);
        let mut opts = MqttOptions::new(format!("maskgate-{door_id}"), broker.host, broker.port);
        if broker.tls {
            let tls = tls_config(cfg)?;
            opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(tls))));
        }
        opts.set_keep_alive(Duration::from_secs(15));
        opts.set_clean_session(true);
        opts.set_last_will(LastWill::new(
            topics.availability(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if !cfg.username.is_empty() {
            let password = if cfg.password_file.is_empty() {
                String::new()
            } else {
                let path = PathBuf::from(&cfg.password_file);
                let text = bounded_read::read_to_string(&path, bounded_read::TEXT_LIMIT)
                    .map_err(|source| MqttError::Password { path, source })?;
                text.lines().next().unwrap_or("").to_string()
            };
            opts.set_credentials(cfg.username.clone(), password);
        }
        let (client, connection) = Client::new(opts, 64);
        let shared = Arc::new(Shared {
            m: Mutex::new(Inner {
                verdicts: VecDeque::with_capacity(cfg.queue.max(1)),
                cap: cfg.queue.max(1),
                retained: Retained {
                    state: Verdict::Idle,
                    camera: true,
                    mask: 0,
                    no_mask: 0,
                },
                dirty: true,
                connected: false,
                resend: false,
                stopping: false,
            }),
            cv: Condvar::new(),
            connected_gauge: metrics.0,
            dropped_counter: metrics.1,
        });
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let sh = shared.clone();
        let url = cfg.url.clone();
        std::thread::Builder::new()
            .name("mqtt-net".into())
            .spawn(move || {
                network(connection, &sh, &url);
                let _ = done_tx.send(());
            })
            .map_err(MqttError::Threads)?;
        let sh = shared.clone();
        let publisher = std::thread::Builder::new()
            .name("mqtt-publish".into())
            .spawn(move || publish(client, &sh, &topics))
            .map_err(MqttError::Threads)?;
        tracing::info!(url = %cfg.url, door_id, "MQTT publisher started");
        Ok(Self {
            shared,
            publisher: Some(publisher),
            net_done: Some(done_rx),
        })
    }

    /// Verdicts dropped because the queue was full (the broker away too long), as counted
    /// into the counter given to [`MqttSink::start_counted`].
    pub fn dropped(&self) -> u64 {
        self.shared.dropped_counter.get()
    }

    /// Whether the broker has the connection right now.
    pub fn connected(&self) -> bool {
        self.shared.lock().connected
    }
}

impl EventSink for MqttSink {
    /// On the frame loop's thread: a lock, a copy into the reserved queue, a notify; nothing
    /// allocates and nothing waits on the network.
    fn event(&mut self, e: &Event) {
        let mut g = self.shared.lock();
        match *e {
            Event::Decision {
                decision,
                prob,
                faces,
                ..
            } => {
                g.retained.state = decision;
                match decision {
                    Verdict::Mask => g.retained.mask += 1,
                    Verdict::NoMask => g.retained.no_mask += 1,
                    Verdict::Idle => {}
                }
                g.dirty = true;
                let t_unix_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis() as u64;
                if g.verdicts.len() >= g.cap {
                    g.verdicts.pop_front();
                    self.shared.dropped_counter.inc();
                }
                g.verdicts.push_back(VerdictRec {
                    decision,
                    prob,
                    t_unix_ms,
                    faces,
                });
            }
            Event::Camera { online, .. } => {
                g.retained.camera = online;
                g.dirty = true;
            }
            _ => return,
        }
        drop(g);
        self.shared.cv.notify_all();
    }

    /// Sends what is queued (waiting up to 2 s for a broker), then `offline`, and disconnects.
    fn close(&mut self) {
        let Some(publisher) = self.publisher.take() else {
            return;
        };
        self.shared.lock().stopping = true;
        self.shared.cv.notify_all();
        let _ = publisher.join();
        if let Some(done) = self.net_done.take() {
            // a broker that does not answer must not hold the door's exit
            let _ = done.recv_timeout(FLUSH);
        }
        let dropped = self.dropped();
        tracing::info!(dropped, "MQTT publisher stopped");
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        self.close();
    }
}

/// Drives the connection: rumqttc reconnects on the next poll after an error; this adds the
/// back-off and says once per outage what went wrong.
fn network(mut conn: rumqttc::Connection, sh: &Shared, url: &str) {
    let mut backoff = BACKOFF_MIN;
    let mut down_reported = false;
    for ev in conn.iter() {
        match ev {
            Ok(MqEvent::Incoming(Packet::ConnAck(_))) => {
                if down_reported {
                    tracing::info!(url, "MQTT broker back");
                } else {
                    tracing::info!(url, "MQTT connected");
                }
                down_reported = false;
                backoff = BACKOFF_MIN;
                let mut g = sh.lock();
                g.connected = true;
                g.resend = true;
                sh.connected_gauge.set(1);
                drop(g);
                sh.cv.notify_all();
            }
            Ok(MqEvent::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                let stopping = {
                    let mut g = sh.lock();
                    g.connected = false;
                    sh.connected_gauge.set(0);
                    g.stopping
                };
                if stopping {
                    break;
                }
                if !down_reported {
                    down_reported = true;
                    tracing::warn!(url, error = %e, hint = hint(&e),
                        "MQTT broker unreachable; retrying with back-off, the door keeps working");
                }
                let until = Instant::now() + backoff;
                while Instant::now() < until && !sh.lock().stopping {
                    std::thread::sleep(Duration::from_millis(50));
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

fn hint(e: &ConnectionError) -> &'static str {
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => "the broker refused the credentials: check mqtt.username and mqtt.password_file",
        ConnectionError::ConnectionRefused(_) => "the broker refused the connection",
        ConnectionError::Io(_) => "is the broker running, and mqtt.url right?",
        ConnectionError::Tls(_) => {
            "TLS failed: does mqtt.ca_file hold the CA of the broker's certificate, and does the certificate name the host in mqtt.url?"
        }
        _ => "",
    }
}

/// Publishes while connected; on stop, flushes (briefly waiting for a connection), says
/// `offline` and disconnects.
fn publish(client: Client, sh: &Shared, t: &Topics) {
    let mut stop_deadline: Option<Instant> = None;
    loop {
        let mut g = sh.lock();
        while !g.stopping && !(g.connected && (g.resend || g.dirty || !g.verdicts.is_empty())) {
            g = sh
                .cv
                .wait_timeout(g, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if g.stopping && !g.connected {
            let until = *stop_deadline.get_or_insert_with(|| Instant::now() + FLUSH);
            if Instant::now() >= until {
                break;
            }
            drop(sh.cv.wait_timeout(g, Duration::from_millis(50)));
            continue;
        }
        let resend = std::mem::take(&mut g.resend);
        let retained = (resend || g.dirty).then_some(g.retained);
        g.dirty = false;
        let verdicts: Vec<VerdictRec> = g.verdicts.drain(..).collect();
        let stopping = g.stopping;
        drop(g);
        let send = |topic: String, payload: String, retain: bool| {
            client
                .try_publish(topic, QoS::AtLeastOnce, retain, payload)
                .is_ok()
        };
        let mut retained_ok = true;
        if resend {
            for (topic, config) in t.discovery() {
                retained_ok &= send(topic, config, true);
            }
            retained_ok &= send(t.availability(), "online".into(), true);
        }
        if let Some(r) = retained {
            retained_ok &= send(t.state(), r.state.as_str().into(), true);
            let camera = if r.camera { "online" } else { "offline" };
            retained_ok &= send(t.camera(), camera.into(), true);
            let counts = json!({"mask": r.mask, "no_mask": r.no_mask}).to_string();
            retained_ok &= send(t.counts(), counts, true);
        }
        let lost = verdicts
            .iter()
            .filter(|v| !send(t.verdict(), v.json(), false))
            .count();
        if lost > 0 || !retained_ok {
            // rumqttc's request queue is full: count the verdicts, send the retained state again
            sh.dropped_counter.inc_by(lost as u64);
            let mut g = sh.lock();
            g.dirty |= !retained_ok;
            g.resend |= resend && !retained_ok;
        }
        if stopping {
            break;
        }
    }
    if sh.lock().connected {
        let _ = client.try_publish(t.availability(), QoS::AtLeastOnce, true, "offline");
    }
    let _ = client.disconnect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_setting_and_what_is_wrong() {
        let b = |host: &str, port, tls| Broker {
            host: host.into(),
            port,
            tls,
        };
        assert_eq!(
            parse_url("mqtt://broker.local").unwrap(),
            b("broker.local", 1883, false)
        );
        assert_eq!(
            parse_url("mqtt://10.0.0.2:1884/").unwrap(),
            b("10.0.0.2", 1884, false)
        );
        assert_eq!(
            parse_url("mqtts://broker").unwrap(),
            b("broker", 8883, true)
        );
        for (bad, why) in [
            ("broker:1883", "mqtt://"),
            ("tcp://broker", "mqtts://"),
            ("mqtt://", "host"),
            ("mqtt://h:x", "port"),
            ("mqtt://h:0", "port"),
        ] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains("mqtt.url") && e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn door_ids_must_be_topic_safe() {
        assert_eq!(door_id("front-door_2").unwrap(), "front-door_2");
        assert!(door_id("a/b").is_err() && door_id("#").is_err() && door_id("a b").is_err());
        assert!(!door_id("").unwrap().is_empty()); // the host name
    }

    #[test]
    fn topics_and_discovery_share_one_device() {
        let t = Topics::new(&MqttConfig::default(), "front");
        assert_eq!(t.state(), "maskgate/front/state");
        assert_eq!(t.availability(), "maskgate/front/availability");
        let d = t.discovery();
        let topics: Vec<&str> = d.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics,
            [
                "homeassistant/sensor/maskgate_front/decision/config",
                "homeassistant/binary_sensor/maskgate_front/camera/config",
                "homeassistant/sensor/maskgate_front/mask/config",
                "homeassistant/sensor/maskgate_front/no_mask/config",
            ]
        );
        for (_, json) in &d {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(v["availability_topic"], "maskgate/front/availability");
            assert_eq!(v["device"]["identifiers"][0], "maskgate_front");
            assert!(v["unique_id"]
                .as_str()
                .unwrap()
                .starts_with("maskgate_front_"));
        }
        let mask: serde_json::Value = serde_json::from_str(&d[2].1).unwrap();
        assert_eq!(mask["value_template"], "{{ value_json.mask }}");
        let off = MqttConfig {
            discovery_prefix: String::new(),
            ..MqttConfig::default()
        };
        assert!(Topics::new(&off, "front").discovery().is_empty());
    }
}
