//! The wiring self-test: each output in turn, named by its pin or bus (as rppal's examples
//! name theirs), so an installer sees and hears that what the config says is what is wired.
//! [`steps`] is the schedule from the config; [`run`] plays it on any [`Outputs`] and clock.
//! `maskgate selftest` runs it alone; `POST /v1/selftest` asks the frame loop to run it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::outputs::Outputs;
use super::Event;
use crate::clock::Clock;
use crate::config::Config;
use crate::indicator::display::{Screen, Status, View};
use crate::indicator::hw::Backend;
use crate::verdict::Verdict;

/// `POST /v1/selftest` sets `flag`; the frame loop, before its next frame, clears it and plays
/// `steps`.
#[derive(Clone, Debug)]
pub struct Request {
    pub flag: std::sync::Arc<AtomicBool>,
    pub steps: Vec<Step>,
}

/// One step: what it shows and how long it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// What the installer should see or hear, with the pin or bus.
    pub what: String,
    pub verdict: Verdict,
    pub view: View,
    pub hold: Duration,
}

fn pin(cfg: &Config, p: Option<u32>) -> String {
    match (p, cfg.gpio.backend) {
        (None, _) => "no pin (unwired in the config)".into(),
        (Some(_), Backend::None) => "no GPIO (gpio.backend = \"none\")".into(),
        (Some(n), Backend::Rppal) => format!("GPIO{n} (BCM)"),
        (Some(n), Backend::Cdev) => format!("line {n} of {}", cfg.gpio.chip),
    }
}

fn pattern(ms: &[u16], enabled: bool) -> String {
    if !enabled || ms.is_empty() {
        return "silent (buzzer off)".into();
    }
    let on: Vec<String> = ms.iter().map(|m| format!("{m}")).collect();
    format!("pattern {} ms", on.join("/"))
}

/// The test for this config: the display's test screen, then the green LED with the mask
/// beep, the red LED with the no-mask pattern, then everything off.
pub fn steps(cfg: &Config) -> Vec<Step> {
    let [g, r, b] = cfg.gpio.pins();
    let buzzer = pin(cfg, b);
    let display = if cfg.display.enabled {
        format!(
            "display: SSD1306 at {:#04x} on /dev/i2c-{} shows SELF TEST",
            cfg.display.address, cfg.display.i2c_bus
        )
    } else {
        "display: off (display.enabled = false)".into()
    };
    let bz = &cfg.buzzer;
    vec![
        Step {
            what: display,
            verdict: Verdict::Idle,
            view: View::SelfTest,
            hold: Duration::from_millis(1500),
        },
        Step {
            what: format!(
                "green LED on {}; buzzer on {buzzer}: {}",
                pin(cfg, g),
                pattern(&bz.mask_pattern_ms, bz.enabled)
            ),
            verdict: Verdict::Mask,
            view: View::Mask,
            hold: Duration::from_millis(2500),
        },
        Step {
            what: format!(
                "red LED on {}; buzzer on {buzzer}: {}",
                pin(cfg, r),
                pattern(&bz.no_mask_pattern_ms, bz.enabled)
            ),
            verdict: Verdict::NoMask,
            view: View::NoMask,
            hold: Duration::from_millis(2500),
        },
        Step {
            what: "all off: LEDs dark, buzzer quiet, display back to WELCOME".into(),
            verdict: Verdict::Idle,
            view: View::Idle,
            hold: Duration::ZERO,
        },
    ]
}

/// Plays `steps` on `outputs`, calling `announce` as each begins and passing every output
/// change to `sink`; stops early when `stop` is set. The outputs are left idle.
pub fn run(
    steps: &[Step],
    outputs: &mut dyn Outputs,
    clock: &mut dyn Clock,
    status: Status,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(Event),
    announce: &mut dyn FnMut(usize, &Step),
) {
    for (i, s) in steps.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        announce(i, s);
        let now = clock.now();
        outputs.verdict(s.verdict, now);
        outputs.screen(
            Screen {
                view: s.view,
                status,
            },
            now,
        );
        outputs.drain(sink);
        let end = now + s.hold;
        while !stop.load(Ordering::Relaxed) && clock.now() < end {
            let t = (clock.now() + Duration::from_millis(10)).min(end);
            clock.sleep_until(t);
            outputs.tick(clock.now());
            outputs.drain(sink);
        }
    }
    let now = clock.now();
    outputs.verdict(Verdict::Idle, now);
    outputs.tick(now);
    outputs.drain(sink);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;
    use crate::door::{outputs, Mode};
    use crate::kiosk::metrics::KioskMetrics;

    #[test]
    fn names_every_pin_and_bus_of_the_board() {
        let cfg = Config::load(Some("rpi4"), None).unwrap();
        let s = steps(&cfg);
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[0].what,
            "display: SSD1306 at 0x3c on /dev/i2c-1 shows SELF TEST"
        );
        assert!(
            s[1].what
                .starts_with("green LED on GPIO17 (BCM); buzzer on GPIO22 (BCM)"),
            "{}",
            s[1].what
        );
        assert!(
            s[2].what.starts_with("red LED on GPIO27 (BCM)"),
            "{}",
            s[2].what
        );
        let jetson = Config::load(Some("jetson-orin-nano"), None).unwrap();
        assert!(
            steps(&jetson)[1].what.contains(" of /dev/gpiochip"),
            "{:?}",
            steps(&jetson)
        );
    }

    #[test]
    fn lights_green_then_red_with_the_buzzer_and_ends_dark() {
        let cfg = Config::default();
        let metrics = KioskMetrics::default();
        let mut out = outputs(&cfg, &Mode::Simulate { display_dump: None }, &metrics).unwrap();
        let mut clock = SimClock::default();
        let (mut events, mut said) = (Vec::new(), Vec::new());
        run(
            &steps(&cfg),
            &mut *out,
            &mut clock,
            Status::default(),
            &AtomicBool::new(false),
            &mut |e| events.push(e),
            &mut |i, s| said.push((i, s.what.clone())),
        );
        assert_eq!(said.len(), 4);
        assert_eq!(clock.now(), Duration::from_millis(6500));
        let leds: Vec<(u64, &str, bool)> = events
            .iter()
            .filter_map(|e| match *e {
                Event::Led { t_ms, led, on } => Some((t_ms, led, on)),
                _ => None,
            })
            .collect();
        assert_eq!(
            leds,
            [
                (1500, "green", true),
                (4000, "green", false),
                (4000, "red", true),
                (6500, "red", false)
            ]
        );
        let beeps = events
            .iter()
            .filter(|e| matches!(e, Event::Buzzer { on: true, .. }))
            .count();
        assert!(beeps >= 2, "{events:?}");
        assert!(events.iter().any(|e| matches!(e, Event::Display { .. })));
        assert!(!matches!(
            events
                .iter()
                .rev()
                .find(|e| matches!(e, Event::Buzzer { .. })),
            Some(Event::Buzzer { on: true, .. })
        ));
    }
}
