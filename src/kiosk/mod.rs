//! Door kiosk mode: frames in, one verdict per person out, told through LEDs, buzzer and
//! display. [`decide`] is the pure per-person logic; [`outputs`] drives the signals inline
//! (simulation, tests) or on their own threads (hardware); [`run`] is the frame loop.

pub mod decide;
pub mod outputs;
pub mod run;

use serde::Serialize;

use crate::kiosk::decide::Verdict;

/// What the loop reports; `maskgate run --simulate` prints these as JSON lines (a stable
/// interface: fields may be added, none renamed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The announced verdict changed (or a new person got one).
    Decision {
        t_ms: u64,
        decision: Verdict,
        prob: f32,
        frame: u64,
    },
    Led {
        t_ms: u64,
        led: &'static str,
        on: bool,
    },
    Buzzer {
        t_ms: u64,
        on: bool,
    },
    /// A new picture on the OLED (`--display-dump` wrote it as `index`.png).
    Display {
        t_ms: u64,
        index: u32,
    },
    Camera {
        t_ms: u64,
        online: bool,
    },
}
