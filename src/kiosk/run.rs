//! The frame loop: newest frame → pipeline → per-person decision → outputs, with camera
//! recovery, a status line, systemd watchdog pings and an orderly stop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::decide::{observe, DecideConfig, Decider, Verdict};
use super::metrics::KioskMetrics;
use super::outputs::Outputs;
use super::selftest;
use super::verdict_images::VerdictImages;
use super::Event;
use crate::clock::Clock;
use crate::engine::EngineError;
use crate::indicator::display::{Screen, Status, View};
use crate::serve::live::LiveView;
use crate::source::{FrameSource, RgbFrame, SourceError};
use crate::systemd::{self, Watchdog};
use crate::vision::annotate;
use crate::Pipeline;

/// First wait before reopening a lost camera; doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);

#[derive(Clone, Debug)]
pub struct LoopConfig {
    pub decide: DecideConfig,
    pub status_interval: Duration,
    /// systemd watchdog period (WATCHDOG_USEC); pings go out at half of it.
    pub watchdog: Option<Duration>,
    /// Annotated JPEG per verdict, only when set.
    pub save_dir: Option<PathBuf>,
    /// Most bytes the images in `save_dir` may take (the oldest go first).
    pub save_max_bytes: u64,
    /// Stop after this many processed frames (soak tests, benchmarks).
    pub max_frames: Option<u64>,
    /// Where the loop counts frames, latency, faces, camera and verdicts.
    pub metrics: Arc<KioskMetrics>,
    /// Frames for the HTTP live view (`http.live_view`).
    pub live: Option<Arc<LiveView>>,
    /// The self-test `POST /v1/selftest` asks for.
    pub selftest: Option<selftest::Request>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            decide: DecideConfig::default(),
            status_interval: Duration::from_secs(1),
            watchdog: None,
            save_dir: None,
            save_max_bytes: 200 << 20,
            max_frames: None,
            metrics: Arc::default(),
            live: None,
            selftest: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    pub frames: u64,
    pub verdicts: u64,
    pub reopens: u64,
    /// Loop time from the first frame to the end (the loop's clock).
    pub elapsed: Duration,
    /// Wall time spent in the pipeline.
    pub busy: Duration,
    /// Wall time from `run` to the first verdict.
    pub first_verdict: Option<Duration>,
}

pub struct Kiosk<O: Outputs> {
    pub pipeline: Pipeline,
    pub outputs: O,
    cfg: LoopConfig,
    decider: Decider,
    frame: RgbFrame,
    images: Option<VerdictImages>,
}

impl<O: Outputs> Kiosk<O> {
    pub fn new(pipeline: Pipeline, outputs: O, cfg: LoopConfig) -> Self {
        Self {
            pipeline,
            outputs,
            decider: Decider::new(cfg.decide),
            images: cfg
                .save_dir
                .as_deref()
                .map(|d| VerdictImages::open(d, cfg.save_max_bytes)),
            cfg,
            frame: RgbFrame::default(),
        }
    }

    /// Runs until the source ends, `stop` is set, or inference fails. Outputs end in the safe
    /// state on every path out.
    pub fn run(
        &mut self,
        source: &mut dyn FrameSource,
        clock: &mut dyn Clock,
        stop: &AtomicBool,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Summary, EngineError> {
        let res = self.run_inner(source, clock, stop, sink);
        let now = clock.now();
        self.outputs.shutdown(now);
        self.outputs.drain(sink);
        res
    }

    fn run_inner(
        &mut self,
        source: &mut dyn FrameSource,
        clock: &mut dyn Clock,
        stop: &AtomicBool,
        sink: &mut dyn FnMut(Event),
    ) -> Result<Summary, EngineError> {
        let t0 = clock.now();
        let mut st = LoopState::new(t0, source.describe());
        let mut watchdog = Watchdog::with_period(self.cfg.watchdog);
        self.outputs.screen(st.screen(), t0);
        self.outputs.drain(sink);
        while !stop.load(Ordering::Relaxed) {
            watchdog.ping_if_due();
            self.selftest_if_asked(&mut st, clock, stop, sink);
            match source.next_frame(clock, &mut self.frame) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.camera_lost(&e, &mut st, source, clock, stop, sink);
                    continue;
                }
            }
            let now = clock.now();
            if !st.status.camera_ok {
                self.camera_back(&mut st, now, sink);
            }
            self.outputs.tick(now);
            if !self.frame_in_hand(&mut st, now, sink)? {
                continue;
            }
            self.outputs.drain(sink);
            if self.cfg.max_frames.is_some_and(|m| st.sum.frames >= m) {
                break;
            }
        }
        st.sum.elapsed = clock.now().saturating_sub(t0);
        Ok(st.sum)
    }

    /// A source error: the first one turns the door idle and shows CAMERA OFFLINE; every one
    /// waits the back-off and tries to reopen.
    fn camera_lost(
        &mut self,
        e: &SourceError,
        st: &mut LoopState,
        source: &mut dyn FrameSource,
        clock: &mut dyn Clock,
        stop: &AtomicBool,
        sink: &mut dyn FnMut(Event),
    ) {
        let now = clock.now();
        if st.status.camera_ok {
            tracing::warn!(error = %e, "camera lost; reopening with back-off");
            if systemd::active() {
                systemd::status(&format!("{}: camera lost, reopening", st.source));
            }
            st.status.camera_ok = false;
            self.cfg.metrics.camera_up.set(0);
            st.view = View::CameraOffline;
            self.decider = Decider::new(self.cfg.decide);
            self.outputs.verdict(Verdict::Idle, now);
            self.outputs.screen(st.screen(), now);
            sink(Event::Camera {
                t_ms: ms(now),
                online: false,
            });
        }
        self.outputs.tick(now);
        self.outputs.drain(sink);
        sleep_unless_stopped(clock, st.backoff, stop);
        match source.reopen() {
            Ok(()) => {
                st.sum.reopens += 1;
                self.cfg.metrics.camera_reopens.inc();
                st.backoff = BACKOFF_MIN;
                st.source = source.describe();
                tracing::info!(source = %st.source, "camera reopened");
            }
            Err(SourceError::Open(m) | SourceError::Lost(m)) => {
                st.backoff = (st.backoff * 2).min(BACKOFF_MAX);
                tracing::debug!(error = %m, "reopen failed");
            }
        }
    }

    /// `POST /v1/selftest` asked: the outputs play the self-test (frames wait), then the door
    /// starts afresh from idle.
    fn selftest_if_asked(
        &mut self,
        st: &mut LoopState,
        clock: &mut dyn Clock,
        stop: &AtomicBool,
        sink: &mut dyn FnMut(Event),
    ) {
        let Some(req) = &self.cfg.selftest else {
            return;
        };
        if !req.flag.swap(false, Ordering::AcqRel) {
            return;
        }
        tracing::info!(steps = req.steps.len(), "self-test requested over HTTP");
        selftest::run(
            &req.steps,
            &mut self.outputs,
            clock,
            st.status,
            stop,
            sink,
            &mut |i, s| tracing::info!(step = i + 1, "self-test: {}", s.what),
        );
        self.decider = Decider::new(self.cfg.decide);
        st.view = View::Idle;
        let now = clock.now();
        self.outputs.screen(st.screen(), now);
        self.outputs.drain(sink);
        tracing::info!("self-test done; the door is back in service");
    }

    /// Frames again after a loss: the screen shows the current verdict again.
    fn camera_back(&mut self, st: &mut LoopState, now: Duration, sink: &mut dyn FnMut(Event)) {
        st.status.camera_ok = true;
        self.cfg.metrics.camera_up.set(1);
        st.view = View::from(self.decider.current());
        tracing::info!("camera back");
        sink(Event::Camera {
            t_ms: ms(now),
            online: true,
        });
        self.outputs.screen(st.screen(), now);
    }

    /// Pipeline, decision, outputs and the status line for the frame in hand; false when the
    /// frame is empty (nothing was processed).
    fn frame_in_hand(
        &mut self,
        st: &mut LoopState,
        now: Duration,
        sink: &mut dyn FnMut(Event),
    ) -> Result<bool, EngineError> {
        let Some(img) = self.frame.view() else {
            return Ok(false);
        };
        let t_wall = Instant::now();
        let res = self.pipeline.process(img)?;
        let took = t_wall.elapsed();
        st.sum.busy += took;
        let m = &self.cfg.metrics;
        m.frames.inc();
        m.inference.observe(took.as_secs_f64());
        m.inference_last.set(took.as_secs_f64());
        m.faces.observe(res.faces.len() as f64);
        st.sum.frames += 1;
        st.status_frames += 1;
        let obs = observe(&res.faces, img.width, img.height, &self.cfg.decide);
        let faces = res.faces.len();
        if let Some(live) = &self.cfg.live {
            live.offer(&self.frame, &res.faces);
        }
        if let Some(a) = self.decider.update(now, obs) {
            self.outputs.verdict(a.verdict, now);
            self.cfg.metrics.verdict(a.verdict);
            st.view = View::from(a.verdict);
            self.outputs.screen(st.screen(), now);
            st.sum.verdicts += 1;
            st.sum
                .first_verdict
                .get_or_insert_with(|| st.wall0.elapsed());
            // frame in hand → signals set: the latency a person at the door feels
            let latency_ms = t_wall.elapsed().as_secs_f64() * 1e3;
            tracing::info!(
                verdict = a.verdict.as_str(),
                prob = format_args!("{:.3}", a.prob),
                latency_ms = format_args!("{latency_ms:.1}"),
                faces,
                "verdict"
            );
            sink(Event::Decision {
                t_ms: ms(now),
                decision: a.verdict,
                prob: a.prob,
                frame: st.sum.frames - 1,
                faces: faces as u32,
            });
            if a.verdict != Verdict::Idle {
                self.save(a.verdict);
            }
        }
        self.status_line(st, now);
        Ok(true)
    }

    /// The fps on the screen, refreshed every `status_interval`.
    fn status_line(&mut self, st: &mut LoopState, now: Duration) {
        if st.sum.frames == 1 {
            // the rate counts frames after the first one, over the time since it
            st.status_at = now;
            st.status_frames = 0;
        }
        let since = now.saturating_sub(st.status_at);
        if since >= self.cfg.status_interval {
            let fps = st.status_frames as f64 / since.as_secs_f64();
            self.cfg.metrics.fps.set(fps);
            st.status.fps_x10 = (fps * 10.0).round().min(9999.0) as u16;
            if systemd::active() {
                let camera = if st.status.camera_ok {
                    ""
                } else {
                    " (camera lost)"
                };
                systemd::status(&format!(
                    "{}{camera}: {fps:.1} fps, last verdict {}",
                    st.source,
                    self.decider.current().as_str()
                ));
            }
            st.status_at = now;
            st.status_frames = 0;
            self.outputs.screen(st.screen(), now);
        }
    }

    /// Only when `service.save_verdict_images` is set: an annotated JPEG of this frame.
    fn save(&mut self, v: Verdict) {
        if self.images.is_none() {
            return;
        }
        let Some(mut img) =
            image::RgbImage::from_raw(self.frame.width, self.frame.height, self.frame.data.clone())
        else {
            return;
        };
        let faces: Vec<_> = self.pipeline_faces();
        annotate::draw_faces(&mut img, &faces);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        if let Some(images) = &mut self.images {
            images.save(&img, stamp, v);
        }
    }

    fn pipeline_faces(&self) -> Vec<crate::Face> {
        self.pipeline.last().faces.iter().copied().collect()
    }
}

/// What the frame loop carries from one frame to the next.
struct LoopState {
    sum: Summary,
    view: View,
    status: Status,
    status_at: Duration,
    status_frames: u64,
    backoff: Duration,
    wall0: Instant,
    /// The source as it describes itself (camera mode), for systemd's STATUS line.
    source: String,
}

impl LoopState {
    fn new(t0: Duration, source: String) -> Self {
        Self {
            sum: Summary::default(),
            view: View::Idle,
            status: Status {
                fps_x10: 0,
                camera_ok: true,
            },
            status_at: t0,
            status_frames: 0,
            backoff: BACKOFF_MIN,
            wall0: Instant::now(),
            source,
        }
    }

    fn screen(&self) -> Screen {
        Screen {
            view: self.view,
            status: self.status,
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Sleeps `d` on `clock` in short steps so a stop request is honoured quickly.
fn sleep_unless_stopped(clock: &mut dyn Clock, d: Duration, stop: &AtomicBool) {
    let end = clock.now() + d;
    while !stop.load(Ordering::Relaxed) && clock.now() < end {
        let step = (end - clock.now()).min(Duration::from_millis(100));
        let t = clock.now() + step;
        clock.sleep_until(t);
    }
}
