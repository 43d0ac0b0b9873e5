//! Where verdicts and screens go. [`InlineOutputs`] runs signals and display in the loop's
//! thread on the loop's clock (simulation and tests: exact, repeatable timestamps).
//! [`ThreadedOutputs`] gives the buzzer a 2 ms ticker thread and the display its own
//! thread, so a 23 ms I2C frame never delays inference.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use embedded_hal::digital::OutputPin;
use embedded_hal::i2c::I2c;

use super::decide::Verdict;
use super::Event;
use crate::signal::display::{Oled, Screen};
use crate::signal::doubles::{Bitmap, PanelProbe};
use crate::signal::{Output, Signals};

pub trait Outputs {
    /// A verdict to show from `now`.
    fn verdict(&mut self, v: Verdict, now: Duration);
    /// Lets buzzer patterns advance to `now` (threaded outputs keep their own time).
    fn tick(&mut self, now: Duration);
    /// Shows `s` (skipped when unchanged).
    fn screen(&mut self, s: Screen, now: Duration);
    /// LEDs and buzzer off, "out of service" on the display; called on every way out.
    fn shutdown(&mut self, now: Duration);
    /// Passes on what changed since the last call.
    fn drain(&mut self, sink: &mut dyn FnMut(Event));
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Signals and display driven synchronously; with a [`PanelProbe`] each new picture is
/// reported (and written as PNG when `dump` is set).
pub struct InlineOutputs<P: OutputPin, I: I2c> {
    pub signals: Signals<P>,
    pub oled: Option<Oled<I>>,
    probe: Option<PanelProbe>,
    dump: Option<PathBuf>,
    last_pic: Option<Bitmap>,
    pics: u32,
    pending: heapless::Deque<Event, 8>,
}

impl<P: OutputPin, I: I2c> InlineOutputs<P, I> {
    pub fn new(
        signals: Signals<P>,
        oled: Option<Oled<I>>,
        probe: Option<PanelProbe>,
        dump: Option<PathBuf>,
    ) -> Self {
        Self {
            signals,
            oled,
            probe,
            dump,
            // a dark panel is what is on the glass before anything was drawn
            last_pic: Some(Bitmap::default()),
            pics: 0,
            pending: heapless::Deque::new(),
        }
    }

    fn capture(&mut self, now: Duration) {
        let Some(probe) = &self.probe else { return };
        let pic = probe.picture();
        if self.last_pic.as_ref() == Some(&pic) {
            return;
        }
        if let Some(dir) = &self.dump {
            let path = dir.join(format!("{:04}.png", self.pics));
            if let Err(e) = pic.to_image(4).save(&path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot write display dump");
            }
        }
        let _ = self.pending.push_back(Event::Display {
            t_ms: ms(now),
            index: self.pics,
        });
        self.pics += 1;
        self.last_pic = Some(pic);
    }
}

impl<P: OutputPin, I: I2c> Outputs for InlineOutputs<P, I> {
    fn verdict(&mut self, v: Verdict, now: Duration) {
        self.signals.show(v, now);
    }
    fn tick(&mut self, now: Duration) {
        self.signals.tick(now);
    }
    fn screen(&mut self, s: Screen, now: Duration) {
        if let Some(o) = &mut self.oled {
            o.show(&s);
        }
        self.capture(now);
    }
    fn shutdown(&mut self, now: Duration) {
        self.signals.tick(now);
        self.signals.all_off(now);
        self.screen(Screen::OUT_OF_SERVICE, now);
    }
    fn drain(&mut self, sink: &mut dyn FnMut(Event)) {
        for e in self.signals.drain_events() {
            let t_ms = ms(e.at);
            sink(match e.output {
                Output::Buzzer => Event::Buzzer { t_ms, on: e.on },
                o => Event::Led {
                    t_ms,
                    led: o.as_str(),
                    on: e.on,
                },
            });
        }
        while let Some(e) = self.pending.pop_front() {
            sink(e);
        }
    }
}

enum Cmd {
    Show(Verdict),
    Off,
}

#[derive(Default)]
struct ScreenSlot {
    next: Option<Screen>,
    closing: bool,
}

/// Hardware outputs on their own threads; the frame loop only posts small messages.
pub struct ThreadedOutputs {
    tx: SyncSender<Cmd>,
    screen: Arc<(Mutex<ScreenSlot>, Condvar)>,
    threads: Vec<JoinHandle<()>>,
}

impl ThreadedOutputs {
    pub fn spawn<P, I>(mut signals: Signals<P>, oled: Option<Oled<I>>) -> std::io::Result<Self>
    where
        P: OutputPin + Send + 'static,
        I: I2c + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel::<Cmd>(16);
        let mut threads =
            vec![std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    let t0 = Instant::now();
                    loop {
                        match rx.recv_timeout(Duration::from_millis(2)) {
                            Ok(Cmd::Show(v)) => signals.show(v, t0.elapsed()),
                            Ok(Cmd::Off) | Err(RecvTimeoutError::Disconnected) => {
                                signals.all_off(t0.elapsed());
                                return;
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                        }
                        signals.tick(t0.elapsed());
                        // nobody reads the events on hardware: keep the log from filling
                        signals.drain_events().for_each(drop);
                    }
                })?];
        let screen = Arc::new((Mutex::new(ScreenSlot::default()), Condvar::new()));
        if let Some(mut oled) = oled {
            let slot = screen.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("display".into())
                    .spawn(move || loop {
                        let (next, closing) = {
                            let (m, cv) = &*slot;
                            let g = m.lock().unwrap_or_else(|e| e.into_inner());
                            let mut g = cv
                                .wait_while(g, |s| s.next.is_none() && !s.closing)
                                .unwrap_or_else(|e| e.into_inner());
                            (g.next.take(), g.closing)
                        };
                        if let Some(s) = next {
                            oled.show(&s);
                        }
                        if closing {
                            return;
                        }
                    })?,
            );
        }
        Ok(Self {
            tx,
            screen,
            threads,
        })
    }
}

impl Outputs for ThreadedOutputs {
    fn verdict(&mut self, v: Verdict, _now: Duration) {
        // a full queue means the signal thread is stuck; dropping beats blocking the door
        let _ = self.tx.try_send(Cmd::Show(v));
    }
    fn tick(&mut self, _now: Duration) {}
    fn screen(&mut self, s: Screen, _now: Duration) {
        let (m, cv) = &*self.screen;
        m.lock().unwrap_or_else(|e| e.into_inner()).next = Some(s);
        cv.notify_one();
    }
    fn shutdown(&mut self, _now: Duration) {
        let _ = self.tx.send(Cmd::Off);
        {
            let (m, cv) = &*self.screen;
            let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
            g.next = Some(Screen::OUT_OF_SERVICE);
            g.closing = true;
            cv.notify_one();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
    fn drain(&mut self, _sink: &mut dyn FnMut(Event)) {}
}

impl Drop for ThreadedOutputs {
    /// Safe state even on an early return or a panic in the loop.
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown(Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::display::{Status, View};
    use crate::signal::doubles::{fake_oled, fake_signals};
    use crate::signal::Patterns;

    /// What `s` looks like on an SSD1306, drawn synchronously for comparison.
    fn expected(s: Screen) -> Bitmap {
        let (mut oled, probe) = fake_oled();
        oled.show(&s);
        probe.picture()
    }

    fn wait_for(probe: &PanelProbe, want: &Bitmap) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if probe.picture() == *want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn threaded_outputs_draw_off_the_loop_and_shut_down_safely() {
        let signals = fake_signals(Patterns::default());
        let (oled, probe) = fake_oled();
        let mut out = ThreadedOutputs::spawn(signals, Some(oled)).unwrap();
        let mask = Screen {
            view: View::Mask,
            status: Status {
                fps_x10: 123,
                camera_ok: true,
            },
        };
        out.verdict(Verdict::Mask, Duration::ZERO);
        out.screen(mask, Duration::ZERO);
        assert!(wait_for(&probe, &expected(mask)));
        out.shutdown(Duration::ZERO);
        let oos = Screen::OUT_OF_SERVICE;
        // shutdown joined the display thread: the last picture is already on the glass
        assert_eq!(probe.picture(), expected(oos));
        assert!(out.threads.is_empty());
    }
}
