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

use super::Event;
use crate::indicator::display::{Oled, Screen};
use crate::indicator::sim::{Bitmap, PanelProbe};
use crate::indicator::{Indicator, Output, SignalEvent, Signals};
use crate::verdict::Verdict;

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

/// The door as assembled at run time picks its outputs from the config (`door::outputs`).
impl<O: Outputs + ?Sized> Outputs for Box<O> {
    fn verdict(&mut self, v: Verdict, now: Duration) {
        (**self).verdict(v, now)
    }
    fn tick(&mut self, now: Duration) {
        (**self).tick(now)
    }
    fn screen(&mut self, s: Screen, now: Duration) {
        (**self).screen(s, now)
    }
    fn shutdown(&mut self, now: Duration) {
        (**self).shutdown(now)
    }
    fn drain(&mut self, sink: &mut dyn FnMut(Event)) {
        (**self).drain(sink)
    }
}

/// A level change as the event stream reports it.
fn signal_event(e: SignalEvent) -> Event {
    let t_ms = ms(e.at);
    match e.output {
        Output::Buzzer => Event::Buzzer { t_ms, on: e.on },
        Output::Line(line) => Event::Line {
            t_ms,
            line,
            on: e.on,
        },
        o => Event::Led {
            t_ms,
            led: o.as_str(),
            on: e.on,
        },
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Signals, further indicators and the display driven synchronously; with a [`PanelProbe`]
/// each new picture is reported (and written as PNG when `dump` is set).
pub struct InlineOutputs<P: OutputPin, I: I2c> {
    pub signals: Signals<P>,
    /// Indicators beyond the LED / buzzer lines, in the order they were added.
    pub more: Vec<Box<dyn Indicator>>,
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
            more: Vec::new(),
            oled,
            probe,
            dump,
            // a dark panel is what is on the glass before anything was drawn
            last_pic: Some(Bitmap::default()),
            pics: 0,
            pending: heapless::Deque::new(),
        }
    }

    /// Adds an indicator after the LED / buzzer lines.
    pub fn with(mut self, i: Box<dyn Indicator>) -> Self {
        self.more.push(i);
        self
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
        self.more.iter_mut().for_each(|i| i.show(v, now));
    }
    fn tick(&mut self, now: Duration) {
        self.signals.tick(now);
        self.more.iter_mut().for_each(|i| i.tick(now));
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
        for i in &mut self.more {
            i.tick(now);
            i.off(now);
        }
        self.screen(Screen::OUT_OF_SERVICE, now);
    }
    fn drain(&mut self, sink: &mut dyn FnMut(Event)) {
        for e in self.signals.drain_events() {
            sink(signal_event(e));
        }
        for i in &mut self.more {
            i.drain(&mut |e| sink(signal_event(e)));
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

/// Hardware outputs on their own threads (a 2 ms ticker for every indicator, one thread for
/// the display); the frame loop only posts small messages.
pub struct ThreadedOutputs {
    tx: SyncSender<Cmd>,
    screen: Arc<(Mutex<ScreenSlot>, Condvar)>,
    threads: Vec<JoinHandle<()>>,
}

impl ThreadedOutputs {
    pub fn spawn<I>(
        mut indicators: Vec<Box<dyn Indicator>>,
        oled: Option<Oled<I>>,
    ) -> std::io::Result<Self>
    where
        I: I2c + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel::<Cmd>(16);
        let mut threads =
            vec![std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    let t0 = Instant::now();
                    loop {
                        let now = || t0.elapsed();
                        match rx.recv_timeout(Duration::from_millis(2)) {
                            Ok(Cmd::Show(v)) => {
                                indicators.iter_mut().for_each(|i| i.show(v, now()))
                            }
                            Ok(Cmd::Off) | Err(RecvTimeoutError::Disconnected) => {
                                indicators.iter_mut().for_each(|i| i.off(now()));
                                return;
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                        }
                        for i in &mut indicators {
                            i.tick(now());
                            // nobody reads the events on hardware: keep the log from filling
                            i.drain(&mut drop);
                        }
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
    use crate::indicator::display::{Status, View};
    use crate::indicator::sim::{sim_oled, sim_signals};
    use crate::indicator::Patterns;

    /// What `s` looks like on an SSD1306, drawn synchronously for comparison.
    fn expected(s: Screen) -> Bitmap {
        let (mut oled, probe) = sim_oled();
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
        let signals = sim_signals(Patterns::default());
        let (oled, probe) = sim_oled();
        let mut out = ThreadedOutputs::spawn(vec![Box::new(signals)], Some(oled)).unwrap();
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
