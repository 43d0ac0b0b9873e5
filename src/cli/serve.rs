//! `maskgate serve`: the HTTP API (the old Flask server's job, bounded for an edge box).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::builder::RangedU64ValueParser;
use clap::Args;
use maskgate::config::MAX_THREADS;
use maskgate::door;
use maskgate::error::InvalidSetting;
use maskgate::serve::{auth, ServeConfig, Server, Shared};

use super::settings::{auto_threads, ModelArgs};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on. Localhost by default: another address needs --token-file
    /// (e.g. --listen 0.0.0.0:3000 --token-file /etc/maskgate/http-token).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// File with the token every endpoint but /healthz requires (Authorization: Bearer);
    /// created with a random token, printed once, when missing.
    #[arg(long, env = "MASKGATE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Inference workers, each with its own interpreters (inference threads are split between them).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Read requests that may wait for a worker (1..=4096); more get 503 at once.
    #[arg(long, default_value_t = 32, value_parser = RangedU64ValueParser::<usize>::new().range(1..=4096))]
    queue: usize,
    /// Largest request body in MiB (1..=64: a body is held in memory until it is decoded).
    #[arg(long, default_value_t = 8, value_parser = RangedU64ValueParser::<usize>::new().range(1..=64))]
    max_body_mb: usize,
    /// The request headers, and then the body, must each arrive within this many seconds
    /// (1..=3600).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout_s: u64,
    /// Open connections at most (1..=65536); more are answered 503 and closed.
    #[arg(long, default_value_t = 256, value_parser = RangedU64ValueParser::<usize>::new().range(1..=65536))]
    max_connections: usize,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(a: ServeArgs) -> Result<ExitCode> {
    let token_file = a
        .token_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // refused before the models load: the answer to a forgotten token comes at once
    let token = auth::for_listener(a.listen, &token_file)?;
    if a.workers == 0 || a.workers > MAX_THREADS {
        return Err(InvalidSetting::new(
            "workers",
            format!("--workers must be 1..={MAX_THREADS}, got {}", a.workers),
        )
        .into());
    }
    let workers = a.workers;
    let mut cfg = a.model.settings()?;
    if a.model.threads.is_none() {
        // the cores are shared between the workers' interpreters
        cfg.model.threads = (auto_threads() / workers).max(1);
    }
    let pipelines = (0..workers)
        .map(|_| door::pipeline(&cfg.model, cfg.model.threads))
        .collect::<Result<Vec<_>, _>>()?;
    let cfg = ServeConfig {
        listen: a.listen,
        workers,
        queue: a.queue,
        max_body: a.max_body_mb << 20,
        timeout: Duration::from_secs(a.timeout_s),
        max_connections: a.max_connections,
        token,
    };
    let mut server = Server::start(cfg, pipelines, Shared::for_api())
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    // the bound address on stdout, so a script (or a test) can use --listen 127.0.0.1:0
    println!("listening on http://{}", server.addr);
    let stop = door::stop_on_signals().context("cannot install signal handlers")?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::info!("stop requested: closing the listener, finishing requests in progress");
    server.shutdown();
    tracing::info!("HTTP service stopped");
    Ok(ExitCode::SUCCESS)
}
