//! Telling the person: green / red LEDs, buzzer patterns, the OLED screen.
//!
//! Every output is an `embedded_hal` trait object of the smallest kind: LEDs and the buzzer are
//! [`OutputPin`]s, the display an `I2c` bus. [`hw`] opens the real ones (rppal on a Raspberry
//! Pi, gpio-cdev / i2c-dev through linux-embedded-hal elsewhere); [`sim`] has the simulated
//! ones (`--simulate` and the tests), including an SSD1306 that decodes its I2C byte stream back
//! into a picture.

pub mod buzzer;
pub mod display;
pub mod hw;
pub mod sim;

use std::time::Duration;

use embedded_hal::digital::OutputPin;
use heapless::Deque;

use crate::verdict::Verdict;
use buzzer::{Pattern, Player};

/// Something at the door that shows the verdict. The kiosk holds a list of them (the LED /
/// buzzer lines, [`Signals`], first); a new device (a door relay, an LED strip) is one file
/// implementing this and a config section, wired in `door::indicators`. The OLED is not one:
/// it shows whole screens (status, camera state), see [`display`].
pub trait Indicator: Send {
    /// Shows `v` from `now` (`Idle` = nothing to show).
    fn show(&mut self, v: Verdict, now: Duration);
    /// Advances timed patterns (a buzzer's beeps) to `now`.
    fn tick(&mut self, _now: Duration) {}
    /// The safe state: everything off (shutdown, camera lost, a panic in the loop).
    fn off(&mut self, now: Duration) {
        self.show(Verdict::Idle, now);
    }
    /// Hands over the level changes since the last call, oldest first (simulation prints them).
    fn drain(&mut self, _sink: &mut dyn FnMut(SignalEvent)) {}
}

/// Which physical output changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Green,
    Red,
    Buzzer,
    /// Any other indicator's line (e.g. "relay"), reported as a `line` event.
    Line(&'static str),
}

impl Output {
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Green => "green",
            Output::Red => "red",
            Output::Buzzer => "buzzer",
            Output::Line(name) => name,
        }
    }
}

/// One level change, stamped with the time it was due (simulation output and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalEvent {
    pub at: Duration,
    pub output: Output,
    pub on: bool,
}

/// Buzzer patterns per verdict; empty patterns (or `enabled = false`) keep it silent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patterns {
    pub mask: Pattern,
    pub no_mask: Pattern,
}

/// Mask: an 80 ms chirp. No mask: three 150 ms beeps, 100 ms apart.
pub const MASK_PATTERN_MS: [u16; 1] = [80];
pub const NO_MASK_PATTERN_MS: [u16; 5] = [150, 100, 150, 100, 150];

impl Default for Patterns {
    fn default() -> Self {
        Self {
            mask: Pattern::new(&MASK_PATTERN_MS).expect("valid"),
            no_mask: Pattern::new(&NO_MASK_PATTERN_MS).expect("valid"),
        }
    }
}

struct Line<P> {
    pin: P,
    output: Output,
    active_low: bool,
    on: Option<bool>,
}

/// LEDs and buzzer for one door. Only level *changes* reach the pins (and the event log).
pub struct Signals<P: OutputPin> {
    lines: [Option<Line<P>>; 3],
    patterns: Patterns,
    player: Player,
    events: Deque<SignalEvent, 64>,
    warned: bool,
}

impl<P: OutputPin> Signals<P> {
    /// Takes the pins and drives them all off: the safe state.
    pub fn new(
        green: Option<P>,
        red: Option<P>,
        buzzer: Option<P>,
        active_low: bool,
        patterns: Patterns,
    ) -> Self {
        let line = |pin: Option<P>, output| {
            pin.map(|pin| Line {
                pin,
                output,
                active_low,
                on: None,
            })
        };
        let mut s = Self {
            lines: [
                line(green, Output::Green),
                line(red, Output::Red),
                line(buzzer, Output::Buzzer),
            ],
            patterns,
            player: Player::default(),
            events: Deque::new(),
            warned: false,
        };
        for o in [Output::Green, Output::Red, Output::Buzzer] {
            s.set(o, false, Duration::ZERO);
        }
        s.events.clear(); // the initial "off" is not a change anyone needs to see
        s
    }

    /// Shows a verdict: LEDs at once, the buzzer pattern from `now`.
    pub fn show(&mut self, v: Verdict, now: Duration) {
        self.set(Output::Green, v == Verdict::Mask, now);
        self.set(Output::Red, v == Verdict::NoMask, now);
        let level = match v {
            Verdict::Mask => self.player.start(&self.patterns.mask.clone(), now),
            Verdict::NoMask => self.player.start(&self.patterns.no_mask.clone(), now),
            Verdict::Idle => {
                self.player.stop();
                false
            }
        };
        self.set(Output::Buzzer, level, now);
    }

    /// Plays buzzer edges due by `now`, each stamped with its exact due time.
    pub fn tick(&mut self, now: Duration) {
        while let Some((at, level)) = self.player.due(now) {
            self.set(Output::Buzzer, level, at);
        }
    }

    /// Everything off (shutdown, camera lost).
    pub fn all_off(&mut self, now: Duration) {
        self.show(Verdict::Idle, now);
    }

    /// Takes the level changes since the last call.
    pub fn drain_events(&mut self) -> impl Iterator<Item = SignalEvent> + '_ {
        std::iter::from_fn(move || self.events.pop_front())
    }

    /// Read access to a pin (tests check the real pin level, not only the event log).
    pub fn pin(&self, o: Output) -> Option<&P> {
        self.lines
            .iter()
            .flatten()
            .find(|l| l.output == o)
            .map(|l| &l.pin)
    }

    fn set(&mut self, o: Output, on: bool, at: Duration) {
        let Some(line) = self.lines.iter_mut().flatten().find(|l| l.output == o) else {
            return;
        };
        if line.on == Some(on) {
            return;
        }
        let high = on != line.active_low;
        let res = if high {
            line.pin.set_high()
        } else {
            line.pin.set_low()
        };
        match res {
            Ok(()) => {
                line.on = Some(on);
                if self.events.is_full() {
                    self.events.pop_front();
                }
                let _ = self.events.push_back(SignalEvent { at, output: o, on });
            }
            Err(e) if !self.warned => {
                self.warned = true;
                tracing::warn!(output = o.as_str(), error = ?e, "cannot drive output; will keep trying");
            }
            Err(_) => {}
        }
    }
}

impl<P: OutputPin + Send> Indicator for Signals<P> {
    fn show(&mut self, v: Verdict, now: Duration) {
        Signals::show(self, v, now);
    }
    fn tick(&mut self, now: Duration) {
        Signals::tick(self, now);
    }
    fn off(&mut self, now: Duration) {
        self.all_off(now);
    }
    fn drain(&mut self, sink: &mut dyn FnMut(SignalEvent)) {
        self.drain_events().for_each(sink);
    }
}

#[cfg(test)]
mod tests {
    use super::sim::SimPin;
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn signals(active_low: bool) -> Signals<SimPin> {
        Signals::new(
            Some(SimPin::default()),
            Some(SimPin::default()),
            Some(SimPin::default()),
            active_low,
            Patterns {
                mask: Pattern::new(&[80]).unwrap(),
                no_mask: Pattern::new(&[150, 100, 150]).unwrap(),
            },
        )
    }

    fn ev(at: u64, output: Output, on: bool) -> SignalEvent {
        SignalEvent {
            at: ms(at),
            output,
            on,
        }
    }

    #[test]
    fn starts_all_off_and_reports_only_changes() {
        let mut s = signals(false);
        assert_eq!(s.drain_events().count(), 0);
        for o in [Output::Green, Output::Red, Output::Buzzer] {
            assert!(!s.pin(o).unwrap().is_high());
        }
        s.show(Verdict::Mask, ms(100));
        s.tick(ms(500));
        s.show(Verdict::NoMask, ms(1000));
        s.tick(ms(1200));
        s.show(Verdict::Idle, ms(1300)); // cuts the beeps short
        let got: Vec<_> = s.drain_events().collect();
        use Output::*;
        assert_eq!(
            got,
            vec![
                ev(100, Green, true),
                ev(100, Buzzer, true),
                ev(180, Buzzer, false),
                ev(1000, Green, false),
                ev(1000, Red, true),
                ev(1000, Buzzer, true),
                ev(1150, Buzzer, false),
                ev(1300, Red, false),
            ]
        );
        assert!(!s.pin(Buzzer).unwrap().is_high());
    }

    #[test]
    fn active_low_inverts_the_pin_not_the_meaning() {
        let mut s = signals(true);
        assert!(s.pin(Output::Green).unwrap().is_high()); // off = high
        s.show(Verdict::Mask, ms(0));
        assert!(!s.pin(Output::Green).unwrap().is_high());
        assert!(s.pin(Output::Red).unwrap().is_high());
    }

    #[test]
    fn a_failing_pin_is_retried_and_does_not_stop_the_others() {
        let mut s = signals(false);
        s.lines[0].as_mut().unwrap().pin.fail = true;
        s.show(Verdict::Mask, ms(0));
        assert!(!s.pin(Output::Green).unwrap().is_high());
        assert!(s.pin(Output::Buzzer).unwrap().is_high());
        s.lines[0].as_mut().unwrap().pin.fail = false;
        s.show(Verdict::Mask, ms(10));
        assert!(s.pin(Output::Green).unwrap().is_high());
    }
}
