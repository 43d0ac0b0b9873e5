//! The HTTP service (`maskgate serve`, and the kiosk's status endpoints):
//!
//! * `POST /v1/detect`   — body an image → the image mode's JSON;
//! * `POST /v1/classify` — body a face crop → `{"mask": bool, "mask_prob": P}`;
//! * `GET /v1/verdict`   — the kiosk's current verdict (kiosk mode only);
//! * `GET /healthz`, `GET /metrics` (Prometheus text).
//!
//! Bounded everywhere: a fixed pool of workers (each with its own interpreters), a short
//! queue of accepted connections, and a 503 at once when both are full, never an unbounded
//! backlog; body size limit; read and write timeouts. A bad request is answered with a JSON
//! error and the server carries on.

pub mod http;
pub mod metrics;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::kiosk::metrics::KioskMetrics;
use crate::kiosk::{Event, EventSink};
use crate::report::ImageReport;
use crate::verdict::Verdict;
use crate::vision::crop::CROP_MARGIN;
use crate::vision::image_io;
use crate::{BBox, ImageView, Pipeline};
use http::{read_request, write_error, write_response, Request};
use metrics::Metrics;

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Worker threads (each holds one pipeline when uploads are served).
    pub workers: usize,
    /// Accepted connections waiting for a worker; beyond this, 503.
    pub queue: usize,
    pub max_body: usize,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            workers: 2,
            queue: 32,
            max_body: 8 << 20,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// The kiosk's state as the endpoints show it.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct KioskStatus {
    pub decision: Verdict,
    pub prob: f32,
    /// Unix time (ms) the verdict was announced; 0 before the first.
    pub since_unix_ms: u64,
    pub camera_online: bool,
}

impl Default for KioskStatus {
    fn default() -> Self {
        Self {
            decision: Verdict::Idle,
            prob: 0.0,
            since_unix_ms: 0,
            camera_online: true,
        }
    }
}

/// What the workers share: metrics and, in kiosk mode, the door's status and its loop's metrics.
pub struct Shared {
    pub metrics: Metrics,
    pub kiosk: Option<Mutex<KioskStatus>>,
    door_metrics: Option<Arc<KioskMetrics>>,
    started: Instant,
}

impl Shared {
    /// `maskgate serve`: the upload API, no door.
    pub fn for_api() -> Arc<Self> {
        Self::new(None, None)
    }

    /// The kiosk's listener: also the door's status (`GET /v1/verdict`) and the loop's
    /// metrics after the service's own in `GET /metrics`.
    pub fn for_door(metrics: Arc<KioskMetrics>) -> Arc<Self> {
        Self::new(Some(Mutex::new(KioskStatus::default())), Some(metrics))
    }

    fn new(
        kiosk: Option<Mutex<KioskStatus>>,
        door_metrics: Option<Arc<KioskMetrics>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            metrics: Metrics::default(),
            kiosk,
            door_metrics,
            started: Instant::now(),
        })
    }

    /// Kiosk: records an announced verdict.
    pub fn verdict(&self, v: Verdict, prob: f32) {
        self.metrics.verdict(v.as_str());
        if let Some(k) = &self.kiosk {
            let mut k = k.lock().unwrap_or_else(|e| e.into_inner());
            k.decision = v;
            k.prob = prob;
            k.since_unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
        }
    }

    pub fn camera(&self, online: bool) {
        if let Some(k) = &self.kiosk {
            k.lock().unwrap_or_else(|e| e.into_inner()).camera_online = online;
        }
    }
}

/// The door's events keep `GET /v1/verdict` and the verdict counters current.
impl EventSink for Arc<Shared> {
    fn event(&mut self, e: &Event) {
        match *e {
            Event::Decision { decision, prob, .. } => self.verdict(decision, prob),
            Event::Camera { online, .. } => self.camera(online),
            _ => {}
        }
    }
}

/// A running server; dropping it stops accepting and joins the threads.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds and starts. `pipelines` holds one pipeline per worker for the upload endpoints
    /// (empty: uploads answer 404, as in kiosk mode without `http.allow_upload`).
    pub fn start(
        cfg: ServeConfig,
        pipelines: Vec<Pipeline>,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(cfg.listen)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel::<TcpStream>(cfg.queue);
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        let mut pipelines: Vec<Option<Pipeline>> = pipelines.into_iter().map(Some).collect();
        let workers = if pipelines.is_empty() {
            cfg.workers.max(1)
        } else {
            pipelines.len()
        };
        pipelines.resize_with(workers, || None);
        for (i, mut pipe) in pipelines.into_iter().enumerate() {
            let (rx, shared, cfg) = (rx.clone(), shared.clone(), cfg.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(stream) = next else { return };
                        handle(stream, &cfg, pipe.as_mut(), &shared);
                    })?,
            );
        }
        let (stop2, shared2) = (stop.clone(), shared.clone());
        threads.push(
            std::thread::Builder::new()
                .name("http-accept".into())
                .spawn(move || {
                    while !stop2.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((s, _)) => {
                                let _ = s.set_nonblocking(false);
                                if let Err(TrySendError::Full(mut s)) = tx.try_send(s) {
                                    shared2.metrics.busy();
                                    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                                    let _ = write_error(
                                        &mut s,
                                        503,
                                        "busy: all workers and queue slots are taken; retry",
                                    );
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                std::thread::sleep(Duration::from_millis(2));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "accept failed");
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                    // dropping tx ends the workers once the queue is drained
                })?,
        );
        tracing::info!(%addr, workers, queue = cfg.queue, max_body = cfg.max_body, "HTTP service listening");
        Ok(Self {
            addr,
            stop,
            threads,
        })
    }

    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn endpoint(path: &str) -> &'static str {
    match path {
        "/v1/detect" => "detect",
        "/v1/classify" => "classify",
        "/v1/verdict" => "verdict",
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        _ => "other",
    }
}

fn handle(mut s: TcpStream, cfg: &ServeConfig, pipe: Option<&mut Pipeline>, shared: &Shared) {
    let t0 = Instant::now();
    let _ = s.set_read_timeout(Some(cfg.read_timeout));
    let _ = s.set_write_timeout(Some(cfg.write_timeout));
    let (ep, status) = match read_request(&mut s, cfg.max_body) {
        Ok(req) => {
            let ep = endpoint(&req.path);
            let (status, ctype, body) = route(&req, pipe, shared);
            let _ = write_response(&mut s, status, ctype, &body);
            (ep, status)
        }
        Err(http::ReadError::Closed) => return,
        Err(e) => {
            let _ = write_error(&mut s, e.status(), &e.message());
            if let http::ReadError::TooLarge { declared, .. } = e {
                http::drain(&mut s, declared);
            }
            ("other", e.status())
        }
    };
    let _ = s.flush();
    shared.metrics.request(ep, status, t0.elapsed());
}

fn json<T: Serialize>(status: u16, v: &T) -> (u16, &'static str, Vec<u8>) {
    (
        status,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn error(status: u16, msg: &str) -> (u16, &'static str, Vec<u8>) {
    json(
        status,
        &serde_json::json!({ "error": msg, "status": status }),
    )
}

fn route(
    req: &Request,
    pipe: Option<&mut Pipeline>,
    shared: &Shared,
) -> (u16, &'static str, Vec<u8>) {
    let method_ok = |m: &str| req.method == m;
    match req.path.as_str() {
        "/healthz" if method_ok("GET") => {
            let kiosk = shared
                .kiosk
                .as_ref()
                .map(|k| *k.lock().unwrap_or_else(|e| e.into_inner()));
            let healthy = kiosk.is_none_or(|k| k.camera_online);
            json(
                if healthy { 200 } else { 503 },
                &serde_json::json!({
                    "status": if healthy { "ok" } else { "degraded: camera offline" },
                    "version": env!("CARGO_PKG_VERSION"),
                    "uptime_s": shared.started.elapsed().as_secs(),
                    "kiosk": kiosk,
                }),
            )
        }
        "/metrics" if method_ok("GET") => (200, "text/plain; version=0.0.4", {
            let mut text = shared.metrics.render();
            if let Some(m) = &shared.door_metrics {
                m.encode(&mut text);
            }
            text.into_bytes()
        }),
        "/v1/verdict" if method_ok("GET") => match &shared.kiosk {
            Some(k) => json(200, &*k.lock().unwrap_or_else(|e| e.into_inner())),
            None => error(
                404,
                "no kiosk in this process: /v1/verdict exists under `maskgate run`",
            ),
        },
        "/v1/detect" | "/v1/classify" if method_ok("POST") => {
            let Some(pipe) = pipe else {
                return error(
                    404,
                    "image upload is off here (kiosk: set http.allow_upload = true)",
                );
            };
            let ctype = req.header("content-type").unwrap_or("");
            if !(ctype.starts_with("image/") || ctype.starts_with("application/octet-stream")) {
                return error(
                    415,
                    "send the image bytes with Content-Type image/* or application/octet-stream",
                );
            }
            let img = match image_io::decode(&req.body) {
                Ok(i) => i,
                Err(e) => return error(422, &format!("not a usable image: {e}")),
            };
            let view = ImageView::from_rgb(&img);
            if req.path == "/v1/detect" {
                match pipe.process(view) {
                    Ok(res) => {
                        for f in res.faces.iter() {
                            shared.metrics.face(match (f.mask_prob.is_nan(), f.mask) {
                                (true, _) => "unclassified",
                                (false, true) => "mask",
                                (false, false) => "no_mask",
                            });
                        }
                        json(
                            200,
                            &ImageReport::new("upload", img.width(), img.height(), res),
                        )
                    }
                    Err(e) => error(500, &format!("inference failed: {e}")),
                }
            } else {
                // the whole upload is the classifier's view: the box whose margin-expanded
                // square is the image's bounding square
                let side = img.width().max(img.height()) as f32 / (1.0 + 2.0 * CROP_MARGIN);
                let (cx, cy) = (img.width() as f32 / 2.0, img.height() as f32 / 2.0);
                let b = BBox {
                    x1: cx - side / 2.0,
                    y1: cy - side / 2.0,
                    x2: cx + side / 2.0,
                    y2: cy + side / 2.0,
                };
                match pipe.classifier.classify(view, &b) {
                    Ok(p) => {
                        let mask = p >= pipe.config.mask_threshold;
                        shared.metrics.face(if mask { "mask" } else { "no_mask" });
                        json(
                            200,
                            &serde_json::json!({ "mask": mask, "mask_prob": (p * 1e4).round() / 1e4 }),
                        )
                    }
                    Err(e) => error(500, &format!("inference failed: {e}")),
                }
            }
        }
        "/healthz" | "/metrics" | "/v1/verdict" | "/v1/detect" | "/v1/classify" => error(
            405,
            &format!("{} is not allowed on {}", req.method, req.path),
        ),
        _ => error(404, &format!("no such endpoint: {}", req.path)),
    }
}
