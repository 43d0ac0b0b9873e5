//! The inference pool: a fixed set of threads, each owning one pipeline (TFLite interpreters
//! are not shared between threads), fed by a bounded queue. The service submits a job only
//! after the whole request has been read, so a slow client never holds a pipeline, and a job
//! that finds every worker busy and the queue full is refused at once (the caller answers 503).

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::Pipeline;

type Job = Box<dyn FnOnce(&mut Pipeline) + Send>;

/// Why a job did not run.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("busy: every inference worker and queue slot is taken; retry")]
    Busy,
    #[error("the inference worker stopped")]
    Gone,
}

pub struct Pool {
    tx: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// One worker thread per pipeline; `queue` jobs may wait beyond those being run.
    pub fn start(pipelines: Vec<Pipeline>, queue: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for (i, mut pipe) in pipelines.into_iter().enumerate() {
            let rx = rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("infer-{i}"))
                    .spawn(move || loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(job) = next else { return };
                        job(&mut pipe);
                    })?,
            );
        }
        Ok(Self {
            tx: Some(tx),
            threads,
        })
    }

    pub fn workers(&self) -> usize {
        self.threads.len()
    }

    /// Runs `f` on a worker and waits for its answer without blocking the async runtime.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Pipeline) -> T + Send + 'static,
    {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |p| {
            let _ = done.send(f(p));
        });
        match self.tx.as_ref().map(|tx| tx.try_send(job)) {
            Some(Ok(())) => {}
            Some(Err(TrySendError::Full(_))) => return Err(PoolError::Busy),
            Some(Err(TrySendError::Disconnected(_))) | None => return Err(PoolError::Gone),
        }
        answer.await.map_err(|_| PoolError::Gone)
    }
}

impl Drop for Pool {
    /// Lets queued jobs finish, then joins the workers.
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
