//! The HTTP service over loopback with a real HTTP client: happy paths, each class of bad
//! request (the server keeps serving after every one), keep-alive and chunked uploads, the
//! token, 503 when the inference pool is full, slow and idle clients that cannot starve it,
//! and a bounded load run that prints p50 / p99 latency and throughput.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use maskgate::serve::auth::Token;
use maskgate::serve::pool::{Pool, PoolError};
use maskgate::serve::{ServeConfig, Server, Shared};
use maskgate::vision::image_io;

fn server_with(
    workers: usize,
    queue: usize,
    max_body: usize,
    timeout: Duration,
    token: Option<Token>,
) -> (Server, Arc<Shared>) {
    let pipes = (0..workers).map(|_| common::pipeline(640, 480)).collect();
    let shared = Shared::for_api();
    let cfg = ServeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers,
        queue,
        max_body,
        timeout,
        token,
        ..ServeConfig::default()
    };
    (Server::start(cfg, pipes, shared.clone()).unwrap(), shared)
}

fn server(
    workers: usize,
    queue: usize,
    max_body: usize,
    timeout: Duration,
) -> (Server, Arc<Shared>) {
    server_with(workers, queue, max_body, timeout, None)
}

fn url(s: &Server, path: &str) -> String {
    format!("http://{}{path}", s.addr)
}

/// (status, body) for any outcome; a transport error is a test failure.
fn post(s: &Server, path: &str, ctype: &str, body: &[u8]) -> (u16, String) {
    let r = ureq::post(&url(s, path))
        .set("Content-Type", ctype)
        .send_bytes(body);
    outcome(r)
}

fn get(s: &Server, path: &str) -> (u16, String) {
    outcome(ureq::get(&url(s, path)).call())
}

fn outcome(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("transport error: {e}"),
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A JPEG of the astronaut's face, framed as the classifier sees faces (box + 15 % margin).
fn face_crop() -> Vec<u8> {
    let img = image_io::load(&common::sample("astronaut.jpg")).unwrap();
    let mut p = common::pipeline(640, 480);
    let b = p
        .process(maskgate::ImageView::from_rgb(&img))
        .unwrap()
        .faces[0]
        .det
        .bbox;
    let (l, t, side) = maskgate::vision::crop::crop_square(&b, 0.15);
    let crop = image::imageops::crop_imm(
        &img,
        l.max(0.0) as u32,
        t.max(0.0) as u32,
        side as u32,
        side as u32,
    )
    .to_image();
    let mut out = Vec::new();
    crop.write_to(
        &mut std::io::Cursor::new(&mut out),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    out
}

fn still_healthy(s: &Server) {
    let (code, body) = get(s, "/healthz");
    assert_eq!(code, 200, "{body}");
}

#[test]
fn detect_classify_health_and_metrics() {
    let (s, _) = server(1, 8, 8 << 20, Duration::from_secs(10));
    let jpeg = std::fs::read(common::sample("astronaut.jpg")).unwrap();
    let (code, body) = post(&s, "/v1/detect", "image/jpeg", &jpeg);
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["image"], "upload");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(512), Some(512))
    );
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    assert_eq!(faces[0]["mask"], false);

    let (code, body) = post(&s, "/v1/classify", "image/jpeg", &face_crop());
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["mask"], false);
    assert!(v["mask_prob"].as_f64().unwrap() < 0.5, "{body}");

    let (code, body) = get(&s, "/healthz");
    assert_eq!(code, 200);
    assert_eq!(json(&body)["status"], "ok");
    let (code, body) = get(&s, "/metrics");
    assert_eq!(code, 200);
    assert!(
        body.contains("maskgate_http_requests_total{endpoint=\"detect\",code=\"200\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("maskgate_faces_total{class=\"no_mask\"} 2\n"),
        "{body}"
    );
    assert!(
        body.contains("maskgate_http_request_duration_seconds_count{endpoint=\"classify\"} 1\n")
    );
    let (code, body) = get(&s, "/v1/verdict");
    assert_eq!(code, 404, "{body}");
}

/// Sends raw bytes and returns the status line's code (0 if the server said nothing).
fn raw(s: &Server, bytes: &[u8], then_wait: bool) -> u16 {
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(bytes).unwrap();
    if !then_wait {
        let _ = c.shutdown(std::net::Shutdown::Write);
    }
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_bad_request_gets_a_json_4xx_and_the_server_carries_on() {
    let (s, _) = server(1, 8, 1 << 20, Duration::from_secs(1));
    let jpeg = std::fs::read(common::sample("astronaut.jpg")).unwrap();
    let cases: Vec<(&str, (u16, String))> = vec![
        (
            "wrong content type",
            post(&s, "/v1/detect", "text/plain", &jpeg),
        ),
        (
            "garbage bytes",
            post(&s, "/v1/detect", "image/jpeg", b"\x00\x01garbage"),
        ),
        (
            "truncated JPEG",
            post(&s, "/v1/classify", "image/jpeg", &jpeg[..jpeg.len() / 2]),
        ),
        (
            "oversize body",
            post(&s, "/v1/detect", "image/png", &vec![0u8; 2 << 20]),
        ),
        ("unknown path", get(&s, "/v2/everything")),
        ("wrong method", get(&s, "/v1/detect")),
    ];
    let want = [415, 422, 422, 413, 404, 405];
    for ((what, (code, body)), want) in cases.iter().zip(want) {
        assert_eq!(*code, want, "{what}: {body}");
        let v = json(body);
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {body}"
        );
        still_healthy(&s);
    }
    // below the client library: no length, binary noise, a client that never finishes
    assert_eq!(
        raw(
            &s,
            b"POST /v1/detect HTTP/1.1\r\nContent-Type: image/jpeg\r\n\r\n",
            false
        ),
        411
    );
    still_healthy(&s);
    assert_eq!(
        raw(
            &s,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            false
        ),
        400
    );
    still_healthy(&s);
    assert_eq!(
        raw(
            &s,
            b"POST /v1/detect HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial",
            true
        ),
        408
    );
    still_healthy(&s);
}

#[test]
fn the_pool_runs_workers_plus_queue_jobs_and_refuses_the_next_at_once() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let pool = Arc::new(Pool::start(vec![common::pipeline(320, 240)], 1).unwrap());
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let wait = Arc::new(std::sync::Mutex::new(wait));
    let (started, is_started) = std::sync::mpsc::channel::<()>();
    rt.block_on(async {
        let job = |w: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
                   s: Option<std::sync::mpsc::Sender<()>>| {
            move |_: &mut maskgate::Pipeline| {
                if let Some(s) = s {
                    s.send(()).unwrap();
                }
                w.lock().unwrap().recv().unwrap();
                7
            }
        };
        let p = pool.clone();
        let first = tokio::spawn({
            let j = job(wait.clone(), Some(started));
            async move { p.run(j).await }
        });
        is_started.recv().unwrap(); // the worker holds the first job
        let p = pool.clone();
        let second = tokio::spawn({
            let j = job(wait.clone(), None);
            async move { p.run(j).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await; // queued
        let t = Instant::now();
        assert_eq!(pool.run(|_| 0).await, Err(PoolError::Busy));
        assert!(t.elapsed() < Duration::from_millis(500));
        go.send(()).unwrap();
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(7));
        assert_eq!(second.await.unwrap(), Ok(7));
        assert_eq!(pool.run(|_| 1).await, Ok(1));
    });
}

#[test]
fn a_full_pool_answers_503_at_once_while_health_and_metrics_still_answer() {
    // one worker, one queue slot, a burst of uploads big enough to keep it busy
    let (s, shared) = server(1, 1, 8 << 20, Duration::from_secs(10));
    let big = image::imageops::resize(
        &image_io::load(&common::sample("chelsea.png")).unwrap(),
        1920,
        1080,
        image::imageops::FilterType::Triangle,
    );
    let mut png = Vec::new();
    big.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let png = Arc::new(png);
    let u = url(&s, "/v1/detect");
    let burst: Vec<_> = (0..12)
        .map(|_| {
            let (png, u) = (png.clone(), u.clone());
            std::thread::spawn(move || {
                outcome(
                    ureq::post(&u)
                        .set("Content-Type", "image/png")
                        .send_bytes(&png),
                )
            })
        })
        .collect();
    // while the burst runs, the endpoints that never wait for inference answer at once
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        still_healthy(&s);
        assert_eq!(get(&s, "/metrics").0, 200);
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let codes: Vec<(u16, String)> = burst.into_iter().map(|h| h.join().unwrap()).collect();
    let busy = codes.iter().filter(|(c, _)| *c == 503).count();
    let ok = codes.iter().filter(|(c, _)| *c == 200).count();
    println!("burst of 12 on 1 worker + 1 queue slot: {ok} answered, {busy} turned away; slowest health check {slowest:?}");
    assert_eq!(ok + busy, 12, "{codes:?}");
    assert!(ok >= 2 && busy >= 1, "{codes:?}");
    for (c, body) in &codes {
        if *c == 503 {
            assert!(
                json(body)["error"].as_str().unwrap().contains("busy"),
                "{body}"
            );
        }
    }
    let want = format!("maskgate_http_rejected_busy_total {busy}\n");
    let metrics = shared.metrics.render();
    assert!(metrics.contains(&want), "want {want:?} in\n{metrics}");
}

/// Reads one response (head and a Content-Length body) from a kept-alive connection.
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>, String) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let code = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (code, headers, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn keep_alive_chunked_uploads_and_framing_errors() {
    let (s, _) = server(1, 8, 1 << 20, Duration::from_secs(5));
    let c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    // three requests on one connection: two GETs and a chunked upload
    w.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (code, _, body) = read_response(&mut r);
    assert_eq!(code, 200, "{body}");
    let jpeg = std::fs::read(common::sample("astronaut.jpg")).unwrap();
    let mut req = b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in jpeg.chunks(7000) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    w.write_all(&req).unwrap();
    let (code, _, body) = read_response(&mut r);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["faces"].as_array().unwrap().len(), 1);
    // 405 names what is allowed, in a header and in the JSON
    w.write_all(b"DELETE /v1/detect HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (code, headers, body) = read_response(&mut r);
    assert_eq!(code, 405, "{body}");
    let allow = headers
        .iter()
        .find(|(k, _)| k == "allow")
        .map(|(_, v)| v.clone());
    assert_eq!(allow.as_deref(), Some("POST"), "{headers:?}");
    assert!(
        json(&body)["error"].as_str().unwrap().contains("POST"),
        "{body}"
    );
    w.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (code, _, body) = read_response(&mut r);
    assert_eq!(code, 200);
    assert!(
        body.contains("maskgate_http_requests_total{endpoint=\"healthz\",code=\"200\"} 1\n"),
        "{body}"
    );

    // a chunked body over the limit is read to its end and answered 413
    let mut big = b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        big.extend_from_slice(format!("{:x}\r\n", 64 << 10).as_bytes());
        big.extend_from_slice(&vec![0u8; 64 << 10]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw(&s, &big, true), 413);
    // RFC 9112: differing Content-Length headers, or one with a sign, are a bad request
    assert_eq!(
        raw(&s, b"POST /v1/detect HTTP/1.1\r\nContent-Type: image/png\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", false),
        400
    );
    assert_eq!(
        raw(
            &s,
            b"POST /v1/detect HTTP/1.1\r\nContent-Type: image/png\r\nContent-Length: +3\r\n\r\nabc",
            false
        ),
        400
    );
    still_healthy(&s);
}

#[test]
fn slow_and_idle_clients_cannot_starve_the_service() {
    // 50 clients dripping a request one byte a second, 50 more connected and silent
    let (s, _) = server(1, 2, 1 << 20, Duration::from_secs(3));
    let addr = s.addr;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dripper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let head = b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n";
            let mut conns: Vec<(TcpStream, usize)> = (0..50)
                .map(|_| (TcpStream::connect(addr).unwrap(), 0))
                .collect();
            let idle: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();
            let mut reconnects = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (c, sent) in conns.iter_mut() {
                    let byte = head.get(*sent).copied().unwrap_or(b'x');
                    if c.write_all(&[byte]).is_err() {
                        // the server gave up on it (deadline): come back, as an attacker would
                        *c = TcpStream::connect(addr).unwrap();
                        *sent = 0;
                        reconnects += 1;
                    } else {
                        *sent += 1;
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            drop(idle);
            reconnects
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let t_end = Instant::now() + Duration::from_secs(8);
    let mut slowest = Duration::ZERO;
    let mut checks = 0;
    while Instant::now() < t_end {
        let t = Instant::now();
        let r = ureq::get(&url(&s, "/healthz"))
            .timeout(Duration::from_secs(1))
            .call();
        let took = t.elapsed();
        assert!(
            matches!(&r, Ok(r) if r.status() == 200),
            "/healthz under slow clients: {r:?}"
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
        slowest = slowest.max(took);
        checks += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reconnects = dripper.join().unwrap();
    println!(
        "slow clients: {checks} health checks over 8 s against 50 drippers + 50 idle, slowest {slowest:?}; \
         drippers cut off by the deadline and reconnected {reconnects} times"
    );
    assert!(
        reconnects >= 50,
        "the 3 s deadline cuts each dripper off ({reconnects})"
    );
}

#[test]
fn a_token_guards_everything_but_healthz() {
    let token = Token::new("correct-horse-battery-staple");
    let (s, _) = server_with(1, 4, 1 << 20, Duration::from_secs(5), Some(token));
    let (code, _) = get(&s, "/healthz");
    assert_eq!(code, 200);
    for path in ["/metrics", "/", "/v1/status", "/v1/verdict"] {
        match ureq::get(&url(&s, path)).call() {
            Err(ureq::Error::Status(401, r)) => {
                let challenges: Vec<&str> = r.all("WWW-Authenticate");
                assert!(
                    challenges
                        .iter()
                        .any(|c| c.starts_with("Basic realm=\"maskgate\"")),
                    "{challenges:?}"
                );
                assert!(
                    challenges.iter().any(|c| c.starts_with("Bearer")),
                    "{challenges:?}"
                );
                let body = r.into_string().unwrap();
                assert_eq!(json(&body)["status"], 401, "{body}");
            }
            other => panic!("{path} without the token: {other:?}"),
        }
        let wrong = ureq::get(&url(&s, path))
            .set("Authorization", "Bearer correct-horse-battery-stapl")
            .call();
        assert!(matches!(wrong, Err(ureq::Error::Status(401, _))), "{path}");
    }
    let ok = ureq::get(&url(&s, "/metrics"))
        .set("Authorization", "Bearer correct-horse-battery-staple")
        .call()
        .unwrap();
    assert_eq!(ok.status(), 200);
    // a browser's Basic auth, any user name
    let page = ureq::get(&url(&s, "/"))
        .set(
            "Authorization",
            "Basic aW5zdGFsbGVyOmNvcnJlY3QtaG9yc2UtYmF0dGVyeS1zdGFwbGU=",
        )
        .call()
        .unwrap();
    assert!(page
        .into_string()
        .unwrap()
        .contains("<title>maskgate</title>"));
    let jpeg = std::fs::read(common::sample("astronaut.jpg")).unwrap();
    let r = ureq::post(&url(&s, "/v1/detect"))
        .set("Content-Type", "image/jpeg")
        .send_bytes(&jpeg);
    assert!(matches!(r, Err(ureq::Error::Status(401, _))));
    let r = ureq::post(&url(&s, "/v1/detect"))
        .set("Content-Type", "image/jpeg")
        .set("Authorization", "Bearer correct-horse-battery-staple")
        .send_bytes(&jpeg)
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn bounded_load_run_has_no_failures() {
    let emulated = std::env::var("MASKGATE_TEST_RUNNER").is_ok_and(|r| !r.is_empty());
    let total: usize = if emulated { 320 } else { 2000 };
    let clients = 16;
    let (s, _) = server(2, 32, 1 << 20, Duration::from_secs(30));
    let crop = Arc::new(face_crop());
    let addr = url(&s, "/v1/classify");
    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (crop, addr) = (crop.clone(), addr.clone());
            std::thread::spawn(move || {
                let n = total / clients + usize::from(i < total % clients);
                let mut lat = Vec::with_capacity(n);
                let mut failures = 0;
                for _ in 0..n {
                    let t = Instant::now();
                    match ureq::post(&addr)
                        .set("Content-Type", "image/jpeg")
                        .send_bytes(&crop)
                    {
                        Ok(r) if r.status() == 200 => {}
                        _ => failures += 1,
                    }
                    lat.push(t.elapsed());
                }
                (lat, failures)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut failures = 0;
    for h in handles {
        let (l, f) = h.join().unwrap();
        lat.extend(l);
        failures += f;
    }
    let wall = t0.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "load: {} requests from {clients} clients on /v1/classify (2 workers): {failures} failed, \
         p50 {:.1} ms, p99 {:.1} ms, {:.0} requests/s",
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat.len() as f64 / wall
    );
    assert_eq!(lat.len(), total);
    assert_eq!(failures, 0);
}

/// `maskgate serve` on `listen` with one 1-thread worker.
fn serve_cmd(listen: &str) -> std::process::Command {
    let mut c = common::maskgate_bin();
    c.args([
        "serve",
        "--listen",
        listen,
        "--workers",
        "1",
        "--threads",
        "1",
    ]);
    c
}

#[test]
fn maskgate_serve_binary_answers_and_stops_on_sigterm() {
    use std::io::BufRead;
    let mut child = serve_cmd("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let jpeg = std::fs::read(common::sample("astronaut.jpg")).unwrap();
    let r = ureq::post(&format!("{base}/v1/detect"))
        .set("Content-Type", "image/jpeg")
        .send_bytes(&jpeg)
        .unwrap();
    let v = json(&r.into_string().unwrap());
    assert_eq!(v["faces"].as_array().unwrap().len(), 1);
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
}

#[test]
fn serving_beyond_loopback_without_a_token_is_refused_with_the_fix() {
    let out = serve_cmd("0.0.0.0:0").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token-file") && err.contains("127.0.0.1"),
        "{err}"
    );

    // with a token file that does not exist yet: made, printed once, required
    let dir = common::scratch("serve-token");
    let file = dir.join("http-token");
    let _ = std::fs::remove_file(&file);
    let mut child = serve_cmd("0.0.0.0:0")
        .arg("--token-file")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_string();
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert_eq!(token.len(), 64);
    let base = format!("http://127.0.0.1:{port}");
    assert!(matches!(
        ureq::get(&format!("{base}/metrics")).call(),
        Err(ureq::Error::Status(401, _))
    ));
    let r = ureq::get(&format!("{base}/metrics"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(err.matches(&token).count(), 1, "printed once: {err}");
}
