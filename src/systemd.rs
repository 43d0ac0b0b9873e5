//! Everything maskgate tells systemd, in one place: READY once the door runs, STATUS for
//! `systemctl status`, watchdog pings from the frame loop, STOPPING on the way out. Outside
//! systemd (no `NOTIFY_SOCKET`) every call does nothing, so the same code runs on a desk.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Whether systemd listens (`NOTIFY_SOCKET` set): callers skip building STATUS lines
/// otherwise, so the frame loop formats nothing outside systemd.
pub fn active() -> bool {
    static ACTIVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ACTIVE.get_or_init(|| std::env::var_os("NOTIFY_SOCKET").is_some())
}

fn notify(state: &[NotifyState]) {
    // sd_notify is fire-and-forget: a missing socket only means "not under systemd"
    let _ = sd_notify::notify(state);
}

/// The service is up: the frame loop is about to take its first frame.
pub fn ready() {
    notify(&[NotifyState::Ready]);
}

/// The service is shutting down (outputs go to their safe state next).
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// One line for `systemctl status`.
pub fn status(line: &str) {
    notify(&[NotifyState::Status(line)]);
}

/// Pings systemd's watchdog at half its period (`WatchdogSec=` in the unit).
#[derive(Debug)]
pub struct Watchdog {
    period: Option<Duration>,
    last: Instant,
}

impl Watchdog {
    /// Reads `WATCHDOG_USEC` when `enabled` (the kiosk's `service.watchdog`); otherwise, or
    /// outside systemd, [`Watchdog::ping_if_due`] does nothing.
    pub fn from_env(enabled: bool) -> Self {
        Self::with_period(if enabled {
            sd_notify::watchdog_enabled()
        } else {
            None
        })
    }

    pub fn with_period(period: Option<Duration>) -> Self {
        Self {
            period,
            last: Instant::now(),
        }
    }

    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// Called once per loop turn; pings when half the period has passed.
    pub fn ping_if_due(&mut self) {
        if let Some(p) = self.period {
            if self.last.elapsed() >= p / 2 {
                notify(&[NotifyState::Watchdog]);
                self.last = Instant::now();
            }
        }
    }
}
