//! The HTTP service (`maskgate serve`, and the kiosk's listener), on axum / hyper / tokio:
//!
//! * `GET /` — the status page (HTML and a little JS built into the binary);
//! * `GET /v1/status` — what the page shows, as JSON;
//! * `POST /v1/detect`   — body an image → the image mode's JSON;
//! * `POST /v1/classify` — body a face crop → `{"mask": bool, "mask_prob": P}`;
//! * `GET /v1/verdict`   — the kiosk's current verdict (kiosk only);
//! * `GET /snapshot.jpg`, `GET /live.mjpg` — live view for aiming (kiosk, `http.live_view`);
//! * `POST /v1/selftest` — lights, buzzer and test screen in turn (kiosk only);
//! * `GET /healthz`, `GET /metrics` (Prometheus text).
//!
//! Bounded everywhere: at most [`ServeConfig::max_connections`] connections (each a task, not
//! a thread); request headers and then the body must each arrive within the timeout as a whole
//! (not per read); bodies over the limit get 413; only a request read in full takes an
//! inference job, on a fixed pool of workers with a short queue ([`pool`]), and a full pool
//! answers 503 at once. Nothing but uploads waits for inference: `/healthz`, `/metrics`, the
//! page and `/v1/verdict` answer while every worker is busy. Every error is
//! `{"error": ..., "status": N}`. A token ([`auth`]) guards every endpoint but `/healthz`
//! when set, and is required off loopback.

pub mod auth;
pub mod live;
pub mod metrics;
pub mod pool;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde::Serialize;
use tokio::sync::{watch, Semaphore};

use crate::kiosk::metrics::KioskMetrics;
use crate::kiosk::{Event, EventSink};
use crate::report::ImageReport;
use crate::verdict::Verdict;
use crate::vision::crop::CROP_MARGIN;
use crate::vision::image_io;
use crate::{BBox, ImageView, Pipeline};
use auth::Token;
use live::LiveView;
use metrics::HttpMetrics;
use pool::{Pool, PoolError};

/// Oversize bodies up to this are read and dropped so the client sees the 413 rather than a
/// reset connection; beyond it the connection is closed after the answer.
pub const MAX_DRAIN: usize = 64 << 20;
/// Concurrent `/live.mjpg` viewers; more get 503.
pub const MAX_VIEWERS: usize = 4;
/// Recent verdicts the status page lists.
pub const RECENT: usize = 20;

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Inference workers when uploads are served (one pipeline each).
    pub workers: usize,
    /// Read requests that may wait for a worker; beyond this, 503.
    pub queue: usize,
    pub max_body: usize,
    /// The request headers, and then the body, must each arrive within this.
    pub timeout: Duration,
    /// Open connections; a connection beyond this is answered 503 and closed.
    pub max_connections: usize,
    /// Required (Bearer or Basic password) on every endpoint but `/healthz` when set.
    pub token: Option<Token>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            workers: 2,
            queue: 32,
            max_body: 8 << 20,
            timeout: Duration::from_secs(10),
            max_connections: 256,
            token: None,
        }
    }
}

/// The kiosk's state as `/v1/verdict` and `/healthz` show it.
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

/// One line of the page's recent verdicts (never a picture).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Recent {
    pub t_unix_ms: u64,
    pub decision: Verdict,
    pub prob: f32,
}

/// What the door tells its page about itself at start.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DoorInfo {
    /// Board profile name (or file), "" when none.
    pub board: String,
    /// The source as it describes itself (device, mode, fps).
    pub camera: String,
    /// The display, e.g. "/dev/i2c-1 @ 0x3c"; `None` when disabled.
    pub display: Option<String>,
    /// The broker (without credentials); `None` when MQTT is off.
    pub mqtt: Option<String>,
    /// What `POST /v1/selftest` will do, step by step.
    pub selftest: Vec<String>,
}

/// The kiosk's side of the listener: its status, metrics, live view and self-test switch.
pub struct DoorLink {
    pub info: DoorInfo,
    pub metrics: Arc<KioskMetrics>,
    pub live: Option<Arc<LiveView>>,
    /// Set by `POST /v1/selftest`; the frame loop runs the self-test and clears it.
    pub selftest: Arc<AtomicBool>,
}

struct DoorState {
    link: DoorLink,
    status: Mutex<KioskStatus>,
    recent: Mutex<VecDeque<Recent>>,
}

/// What the handlers share: metrics and, in kiosk mode, the door.
pub struct Shared {
    pub metrics: HttpMetrics,
    door: Option<DoorState>,
    started: Instant,
}

impl Shared {
    /// `maskgate serve`: the upload API, no door.
    pub fn for_api() -> Arc<Self> {
        Self::new(None)
    }

    /// The kiosk's listener.
    pub fn for_door(link: DoorLink) -> Arc<Self> {
        Self::new(Some(DoorState {
            link,
            status: Mutex::default(),
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
        }))
    }

    fn new(door: Option<DoorState>) -> Arc<Self> {
        Arc::new(Self {
            metrics: HttpMetrics::default(),
            door,
            started: Instant::now(),
        })
    }

    /// Kiosk: records an announced verdict (allocation-free: the list is made at full size).
    pub fn verdict(&self, v: Verdict, prob: f32) {
        let Some(d) = &self.door else { return };
        let now = unix_ms();
        {
            let mut k = lock(&d.status);
            k.decision = v;
            k.prob = prob;
            k.since_unix_ms = now;
        }
        if v != Verdict::Idle {
            let mut r = lock(&d.recent);
            if r.len() == RECENT {
                r.pop_back();
            }
            r.push_front(Recent {
                t_unix_ms: now,
                decision: v,
                prob,
            });
        }
    }

    pub fn camera(&self, online: bool) {
        if let Some(d) = &self.door {
            lock(&d.status).camera_online = online;
        }
    }

    fn kiosk(&self) -> Option<KioskStatus> {
        self.door.as_ref().map(|d| *lock(&d.status))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// The door's events keep `GET /v1/verdict`, the page and the health check current.
impl EventSink for Arc<Shared> {
    fn event(&mut self, e: &Event) {
        match *e {
            Event::Decision { decision, prob, .. } => self.verdict(decision, prob),
            Event::Camera { online, .. } => self.camera(online),
            _ => {}
        }
    }
}

/// Everything a handler needs.
struct App {
    shared: Arc<Shared>,
    pool: Option<Pool>,
    max_body: usize,
    timeout: Duration,
    token: Option<Token>,
    viewers: Arc<Semaphore>,
}

/// A running server; dropping it stops accepting, lets requests in progress finish (a few
/// seconds at most) and joins its threads.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds and starts. `pipelines` holds one pipeline per inference worker for the upload
    /// endpoints (empty: uploads answer 404, as in kiosk mode without `http.allow_upload`).
    pub fn start(
        cfg: ServeConfig,
        pipelines: Vec<Pipeline>,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(cfg.listen)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let workers = pipelines.len();
        let pool = if pipelines.is_empty() {
            None
        } else {
            Some(Pool::start(pipelines, cfg.queue.max(1))?)
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(2)
            .thread_name("http")
            .enable_all()
            .build()?;
        let app = Arc::new(App {
            shared,
            pool,
            max_body: cfg.max_body,
            timeout: cfg.timeout,
            token: cfg.token.clone(),
            viewers: Arc::new(Semaphore::new(MAX_VIEWERS)),
        });
        let router = router(app);
        let (stop, stopped) = watch::channel(false);
        let (timeout, max_conn) = (cfg.timeout, cfg.max_connections.max(1));
        let thread = std::thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => accept_loop(l, router, timeout, max_conn, stopped).await,
                        Err(e) => tracing::error!(error = %e, "HTTP listener failed"),
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        tracing::info!(%addr, workers, queue = cfg.queue, max_body = cfg.max_body,
            auth = cfg.token.is_some(), "HTTP service listening");
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Accepts until told to stop, one task per connection, then waits (3 s at most) for the
/// connections to finish their requests.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: Router,
    timeout: Duration,
    max_conn: usize,
    mut stop: watch::Receiver<bool>,
) {
    let conns = Arc::new(Semaphore::new(max_conn));
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = conns.clone().try_acquire_owned() else {
            tokio::spawn(too_many(stream));
            continue;
        };
        let (router, mut stop) = (router.clone(), stop.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper_util::service::TowerToHyperService::new(router);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeout)
                .keep_alive(true)
                // a client may shut its sending side and wait for the answer
                .half_close(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
            }
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), conns.acquire_many(max_conn as u32)).await;
}

/// Beyond `max_connections`: a 503 written straight to the socket, then closed.
async fn too_many(mut s: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = error_body(503, "busy: too many open connections; retry");
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        s.write_all(head.as_bytes()).await?;
        s.write_all(&body).await?;
        s.shutdown().await
    })
    .await;
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/v1/status", get(status))
        .route("/v1/verdict", get(verdict))
        .route("/v1/detect", post(detect))
        .route("/v1/classify", post(classify))
        .route("/v1/selftest", post(selftest))
        .route("/snapshot.jpg", get(snapshot))
        .route("/live.mjpg", get(live_mjpg))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Every endpoint: path, metrics label, method.
const ENDPOINTS: [(&str, &str, &str); 10] = [
    ("/", "page", "GET"),
    ("/healthz", "healthz", "GET"),
    ("/metrics", "metrics", "GET"),
    ("/v1/status", "status", "GET"),
    ("/v1/verdict", "verdict", "GET"),
    ("/v1/detect", "detect", "POST"),
    ("/v1/classify", "classify", "POST"),
    ("/v1/selftest", "selftest", "POST"),
    ("/snapshot.jpg", "snapshot", "GET"),
    ("/live.mjpg", "live", "GET"),
];

fn endpoint(path: &str) -> Option<(&'static str, &'static str)> {
    ENDPOINTS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, name, method)| (name, method))
}

/// Around every request: the token, JSON bodies for the errors axum makes itself (404, 405
/// with its `Allow`), and the request metrics.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let ep = endpoint(&path).map_or("other", |(name, _)| name);
    let allowed = path == "/healthz"
        || app.token.as_ref().is_none_or(|t| {
            t.accepts(
                req.headers()
                    .get(header::AUTHORIZATION)
                    .map(HeaderValue::as_bytes),
            )
        });
    let resp = if allowed {
        let resp = next.run(req).await;
        let s = resp.status();
        let json = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if (s.is_client_error() || s.is_server_error()) && !json {
            as_json_error(resp, &method, &path)
        } else {
            resp
        }
    } else {
        // an upload sent without the token is read (within the body limit and timeout) and
        // dropped first: closing on unread data would reset the connection before the client
        // reads the 401
        let h = req.headers();
        if h.contains_key(header::CONTENT_LENGTH) || h.contains_key(header::TRANSFER_ENCODING) {
            let _ = read_body(req.into_body(), app.max_body, app.timeout).await;
        }
        let mut r = error(
            401,
            "this listener needs its token: Authorization: Bearer TOKEN",
        );
        let h = r.headers_mut();
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"maskgate\", charset=\"UTF-8\""),
        );
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"maskgate\""),
        );
        r
    };
    app.shared
        .metrics
        .request(ep, resp.status().as_u16(), t0.elapsed());
    resp
}

/// An error response from axum (empty or plain text) as the service's JSON error, keeping
/// its headers (`Allow` on a 405).
fn as_json_error(resp: Response, method: &Method, path: &str) -> Response {
    let (mut parts, _) = resp.into_parts();
    let status = parts.status.as_u16();
    let msg = match status {
        405 => {
            let allow = endpoint(path).map_or("", |(_, m)| m);
            if let Ok(v) = HeaderValue::from_str(allow) {
                parts.headers.insert(header::ALLOW, v);
            }
            format!("{method} is not allowed on {path} (allowed: {allow})")
        }
        404 => format!("no such endpoint: {path}"),
        _ => parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_lowercase(),
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(error_body(status, &msg)))
}

/// The one shape of every error the service sends.
fn error_json(status: u16, msg: &str) -> serde_json::Value {
    serde_json::json!({ "error": msg, "status": status })
}

fn error_body(status: u16, msg: &str) -> Vec<u8> {
    serde_json::to_vec(&error_json(status, msg)).unwrap_or_default()
}

fn error(status: u16, msg: &str) -> Response {
    json(status, &error_json(status, msg))
}

fn json<T: Serialize>(status: u16, v: &T) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

async fn not_found(req: Request) -> Response {
    error(404, &format!("no such endpoint: {}", req.uri().path()))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        include_str!("page.html"),
    )
        .into_response()
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let kiosk = app.shared.kiosk();
    let healthy = kiosk.is_none_or(|k| k.camera_online);
    json(
        if healthy { 200 } else { 503 },
        &serde_json::json!({
            "status": if healthy { "ok" } else { "degraded: camera offline" },
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": app.shared.started.elapsed().as_secs(),
            "kiosk": kiosk,
        }),
    )
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    let mut text = app.shared.metrics.render();
    if let Some(d) = &app.shared.door {
        d.link.metrics.encode(&mut text);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn verdict(State(app): State<Arc<App>>) -> Response {
    match app.shared.kiosk() {
        Some(k) => json(200, &k),
        None => error(
            404,
            "no kiosk in this process: /v1/verdict exists under `maskgate run`",
        ),
    }
}

/// Everything the status page shows.
async fn status(State(app): State<Arc<App>>) -> Response {
    let sh = &app.shared;
    let door = sh.door.as_ref().map(|d| {
        let k = *lock(&d.status);
        let m = &d.link.metrics;
        let info = &d.link.info;
        let recent: Vec<Recent> = lock(&d.recent).iter().copied().collect();
        serde_json::json!({
            "board": info.board,
            "decision": k.decision,
            "prob": round4(k.prob),
            "since_unix_ms": k.since_unix_ms,
            "camera": { "source": info.camera, "online": k.camera_online,
                        "reopens": m.camera_reopens.get() },
            "fps": (m.fps.get() * 10.0).round() / 10.0,
            "inference_ms": (m.inference_last.get() * 1e4).round() / 10.0,
            "frames": m.frames.get(),
            "display": info.display.as_ref().map(|l| serde_json::json!({
                "device": l, "up": m.display_up.get() == 1 })),
            "mqtt": info.mqtt.as_ref().map(|u| serde_json::json!({
                "broker": u, "connected": m.mqtt_connected.get() == 1 })),
            "live_view": d.link.live.is_some(),
            "selftest": info.selftest,
            "recent": recent,
        })
    });
    json(
        200,
        &serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": sh.started.elapsed().as_secs(),
            "uploads": app.pool.as_ref().map(Pool::workers).unwrap_or(0),
            "auth": app.token.is_some(),
            "door": door,
        }),
    )
}

fn round4(p: f32) -> f64 {
    (f64::from(p) * 1e4).round() / 1e4
}

#[derive(Clone, Copy)]
enum Upload {
    Detect,
    Classify,
}

async fn detect(State(app): State<Arc<App>>, req: Request) -> Response {
    upload(app, req, Upload::Detect).await
}

async fn classify(State(app): State<Arc<App>>, req: Request) -> Response {
    upload(app, req, Upload::Classify).await
}

/// An upload is read whole (within the timeout, within the size limit) before it asks the
/// pool for a worker.
async fn upload(app: Arc<App>, req: Request, kind: Upload) -> Response {
    let h = req.headers();
    if !h.contains_key(header::CONTENT_LENGTH) && !h.contains_key(header::TRANSFER_ENCODING) {
        return error(
            411,
            "Content-Length (or Transfer-Encoding: chunked) is required",
        );
    }
    let ctype = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match read_body(req.into_body(), app.max_body, app.timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(pool) = &app.pool else {
        return error(
            404,
            "image upload is off here (kiosk: set http.allow_upload = true)",
        );
    };
    if !(ctype.starts_with("image/") || ctype.starts_with("application/octet-stream")) {
        return error(
            415,
            "send the image bytes with Content-Type image/* or application/octet-stream",
        );
    }
    let shared = app.shared.clone();
    match pool
        .run(move |p| infer(p, &body, kind, &shared.metrics))
        .await
    {
        Ok((status, v)) => json(status, &v),
        Err(e @ PoolError::Busy) => {
            app.shared.metrics.busy();
            error(503, &e.to_string())
        }
        Err(e) => error(500, &e.to_string()),
    }
}

/// Reads a whole body. Over `limit`: keeps reading (up to [`MAX_DRAIN`]) without storing, so
/// the client gets to read the 413.
async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, Response> {
    let mut body = body;
    let mut buf = BytesMut::new();
    let mut seen = 0usize;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| error(400, &format!("bad request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen <= limit {
                    buf.extend_from_slice(&data);
                } else if seen > MAX_DRAIN {
                    break;
                }
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(error(408, "request body not received in time")),
        Ok(Err(r)) => Err(r),
        Ok(Ok(())) if seen > limit => Err(error(
            413,
            &format!("body larger than the {limit}-byte limit"),
        )),
        Ok(Ok(())) => Ok(buf.freeze()),
    }
}

/// On an inference worker: decode, run, and count faces.
fn infer(
    pipe: &mut Pipeline,
    body: &[u8],
    kind: Upload,
    metrics: &HttpMetrics,
) -> (u16, serde_json::Value) {
    let err = |s: u16, m: String| (s, error_json(s, &m));
    let img = match image_io::decode(body) {
        Ok(i) => i,
        Err(e) => return err(422, format!("not a usable image: {e}")),
    };
    let view = ImageView::from_rgb(&img);
    match kind {
        Upload::Detect => match pipe.process(view) {
            Ok(res) => {
                for f in res.faces.iter() {
                    metrics.face(match (f.mask_prob.is_nan(), f.mask) {
                        (true, _) => "unclassified",
                        (false, true) => "mask",
                        (false, false) => "no_mask",
                    });
                }
                let report = ImageReport::new("upload", img.width(), img.height(), res);
                (200, serde_json::to_value(report).unwrap_or_default())
            }
            Err(e) => err(500, format!("inference failed: {e}")),
        },
        Upload::Classify => {
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
                    metrics.face(if mask { "mask" } else { "no_mask" });
                    (
                        200,
                        serde_json::json!({ "mask": mask, "mask_prob": round4(p) }),
                    )
                }
                Err(e) => err(500, format!("inference failed: {e}")),
            }
        }
    }
}

async fn selftest(State(app): State<Arc<App>>) -> Response {
    let Some(d) = &app.shared.door else {
        return error(
            404,
            "no door in this process: the self-test runs under `maskgate run` (or `maskgate selftest`)",
        );
    };
    let already = d.link.selftest.swap(true, Ordering::AcqRel);
    json(
        202,
        &serde_json::json!({
            "selftest": if already { "already requested" } else { "requested" },
            "steps": d.link.info.selftest,
        }),
    )
}

fn live_view(app: &App) -> Option<Arc<LiveView>> {
    app.shared.door.as_ref().and_then(|d| d.link.live.clone())
}

fn live_off() -> Response {
    error(
        404,
        "live view is off: set http.live_view = true under [http] (kiosk only)",
    )
}

/// The newest frame no older than `max_age`; asks the loop for frames and waits for one up to
/// two seconds.
async fn fresh_jpeg(live: Arc<LiveView>, max_age: Duration) -> Option<(u64, Bytes)> {
    let t0 = Instant::now();
    loop {
        let l = live.clone();
        if let Ok(Some(j)) = tokio::task::spawn_blocking(move || l.jpeg(max_age)).await {
            return Some(j);
        }
        if t0.elapsed() > Duration::from_secs(2) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn snapshot(State(app): State<Arc<App>>) -> Response {
    let Some(live) = live_view(&app) else {
        return live_off();
    };
    match fresh_jpeg(live, Duration::from_secs(1)).await {
        Some((_, jpeg)) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            jpeg,
        )
            .into_response(),
        None => error(503, "no frame from the camera in the last 2 s"),
    }
}

/// A few frames a second as multipart JPEG. A part is made only when the client has taken the
/// previous one, so a slow client gets fewer frames and the frame loop never waits.
async fn live_mjpg(State(app): State<Arc<App>>) -> Response {
    let Some(live) = live_view(&app) else {
        return live_off();
    };
    let Ok(viewer) = app.viewers.clone().try_acquire_owned() else {
        return error(
            503,
            &format!("{MAX_VIEWERS} live viewers already; close one or use /snapshot.jpg"),
        );
    };
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / live::LIVE_FPS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = futures_util::stream::unfold(
        (live, tick, 0u64, viewer),
        |(live, mut tick, last, viewer)| async move {
            loop {
                tick.tick().await;
                let Some((seq, jpeg)) = fresh_jpeg(live.clone(), Duration::from_secs(1)).await
                else {
                    return None; // the camera stopped: end the stream, the page retries
                };
                if seq == last {
                    continue;
                }
                let mut part = BytesMut::with_capacity(jpeg.len() + 96);
                part.extend_from_slice(
                    format!(
                        "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                        jpeg.len()
                    )
                    .as_bytes(),
                );
                part.extend_from_slice(&jpeg);
                part.extend_from_slice(b"\r\n");
                return Some((
                    Ok::<_, Infallible>(part.freeze()),
                    (live, tick, seq, viewer),
                ));
            }
        },
    );
    (
        [
            (
                header::CONTENT_TYPE,
                "multipart/x-mixed-replace; boundary=frame",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
