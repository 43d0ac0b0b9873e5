//! Time for the frame loop and the sources: real, or simulated so that a directory plays at
//! exactly its frame rate and every test and `--simulate` run gives the same timestamps.

use std::time::{Duration, Instant};

pub trait Clock {
    /// Time since the clock started.
    fn now(&self) -> Duration;
    /// Waits until `t` (returns at once if it has passed).
    fn sleep_until(&mut self, t: Duration);
    /// Whether frames that are late should be dropped (a real clock) or all played (simulated).
    fn is_real(&self) -> bool;
}

pub struct SystemClock(Instant);

impl SystemClock {
    pub fn new() -> Self {
        Self(Instant::now())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
    fn sleep_until(&mut self, t: Duration) {
        let now = self.now();
        if t > now {
            std::thread::sleep(t - now);
        }
    }
    fn is_real(&self) -> bool {
        true
    }
}

/// Advances only when someone sleeps: inference takes no simulated time.
#[derive(Default)]
pub struct SimClock(Duration);

impl Clock for SimClock {
    fn now(&self) -> Duration {
        self.0
    }
    fn sleep_until(&mut self, t: Duration) {
        self.0 = self.0.max(t);
    }
    fn is_real(&self) -> bool {
        false
    }
}
