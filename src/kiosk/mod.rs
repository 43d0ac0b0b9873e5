//! Door kiosk mode: frames in, one verdict per person out, told through LEDs, buzzer and
//! display. [`decide`] is the pure per-person logic; [`outputs`] drives the signals inline
//! (simulation, tests) or on their own threads (hardware); [`run`] is the frame loop.

pub mod decide;
pub mod metrics;
pub mod outputs;
pub mod run;
pub mod selftest;
pub mod verdict_images;

use std::io::Write;

use serde::Serialize;

use crate::verdict::Verdict;

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
        /// Faces found in that frame (judged or not).
        faces: u32,
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
    /// Another indicator's line (a relay, ...) changed.
    Line {
        t_ms: u64,
        line: &'static str,
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

/// Receives every event of the door loop, in order: JSON lines in simulation ([`JsonLines`]),
/// the HTTP status (`serve::Shared`), a fleet publisher. Called on the loop's thread: a sink
/// that does I/O which can block must hand the event to a thread of its own.
pub trait EventSink {
    fn event(&mut self, e: &Event);
    /// The door is stopping: send what is pending and say goodbye (MQTT's `offline`).
    fn close(&mut self) {}
}

/// Each event as one JSON line (`maskgate run --simulate` on stdout).
pub struct JsonLines<W: Write>(pub W);

impl JsonLines<std::io::Stdout> {
    pub fn stdout() -> Self {
        Self(std::io::stdout())
    }
}

impl<W: Write> EventSink for JsonLines<W> {
    fn event(&mut self, e: &Event) {
        // a closed stdout (the reader went away) must not stop the door
        let _ = serde_json::to_writer(&mut self.0, e);
        let _ = self.0.write_all(b"\n");
        let _ = self.0.flush();
    }
}
