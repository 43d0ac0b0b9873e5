//! Buzzer patterns as pure schedules: a pattern is on/off durations starting with "on";
//! [`Player`] answers "which edges are due by `now`" so that the same code drives a real pin
//! from a 2 ms ticker thread and a simulated one with exact timestamps.

use std::time::Duration;

use heapless::Vec as HVec;

/// Most on/off steps a pattern may have.
pub const MAX_STEPS: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Pattern {
    /// Milliseconds: on, off, on, off, ... (the buzzer is off after the last step).
    steps: HVec<u16, MAX_STEPS>,
}

/// A pattern the buzzer cannot play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("buzzer pattern steps must be > 0 ms")]
    ZeroStep,
    #[error("buzzer pattern has more than {MAX_STEPS} steps")]
    TooLong,
}

impl Pattern {
    pub fn new(steps_ms: &[u16]) -> Result<Self, PatternError> {
        if steps_ms.contains(&0) {
            return Err(PatternError::ZeroStep);
        }
        let steps = HVec::from_slice(steps_ms).map_err(|_| PatternError::TooLong)?;
        Ok(Self { steps })
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Plays one pattern at a time; a new pattern replaces the running one.
#[derive(Debug, Default)]
pub struct Player {
    pattern: Pattern,
    started: Duration,
    /// Index of the next edge to emit (edge i ends step i).
    next: usize,
    level: bool,
}

impl Player {
    /// Starts `p` at `now`; returns the level to set right away (on, unless `p` is empty).
    pub fn start(&mut self, p: &Pattern, now: Duration) -> bool {
        self.pattern = p.clone();
        self.started = now;
        self.next = 0;
        self.level = !p.is_empty();
        self.level
    }

    pub fn stop(&mut self) {
        self.pattern = Pattern::default();
        self.next = 0;
        self.level = false;
    }

    /// The next edge due at or before `now`: (time it was due, new level).
    pub fn due(&mut self, now: Duration) -> Option<(Duration, bool)> {
        let steps = &self.pattern.steps;
        if self.next >= steps.len() {
            return None;
        }
        let end: u64 = steps[..=self.next].iter().map(|&s| u64::from(s)).sum();
        let at = self.started + Duration::from_millis(end);
        if at > now {
            return None;
        }
        self.next += 1;
        // after the last step the buzzer is always off
        self.level = self.next < steps.len() && self.next % 2 == 0;
        Some((at, self.level))
    }

    pub fn level(&self) -> bool {
        self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn beeps_toggle_at_exact_times_and_end_off() {
        let p = Pattern::new(&[150, 100, 150]).unwrap();
        let mut pl = Player::default();
        assert!(pl.start(&p, ms(1000)));
        assert_eq!(pl.due(ms(1149)), None);
        let mut edges = vec![];
        while let Some(e) = pl.due(ms(5000)) {
            edges.push(e);
        }
        assert_eq!(
            edges,
            vec![(ms(1150), false), (ms(1250), true), (ms(1400), false)]
        );
        assert!(!pl.level());
    }

    #[test]
    fn an_even_length_pattern_still_ends_off() {
        let p = Pattern::new(&[50, 50]).unwrap();
        let mut pl = Player::default();
        pl.start(&p, ms(0));
        assert_eq!(pl.due(ms(60)), Some((ms(50), false)));
        assert_eq!(pl.due(ms(200)), Some((ms(100), false)));
        assert_eq!(pl.due(ms(300)), None);
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Pattern::new(&[0]).is_err());
        assert!(Pattern::new(&[1; 17]).is_err());
        let mut pl = Player::default();
        assert!(!pl.start(&Pattern::default(), ms(0)));
        assert_eq!(pl.due(ms(10)), None);
    }
}
