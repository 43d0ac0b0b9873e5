//! Per-person verdicts from per-frame observations. Pure: time is passed in, nothing is
//! printed or driven, so every rule below is unit-tested with scripted sequences.
//!
//! Rules:
//! * a frame's observation is the P(mask) of the face that matters ([`observe`]), or nothing
//!   when nobody judgeable is in view (too-small faces are ignored, never guessed);
//! * a verdict needs `agree` votes among the last `window` observations (`Vote::Count`), or
//!   at least `agree` observations whose mean decides (`Vote::Mean`);
//! * once announced, a verdict holds for `hold` (a wavering person does not flicker it);
//! * nobody in view for `absent` re-arms: the next person gets a fresh verdict even inside
//!   the hold; when the hold is over and nobody is there, the door goes idle.

use std::time::Duration;

use heapless::Deque;
use serde::{Deserialize, Serialize};

use crate::error::InvalidSetting;
pub use crate::verdict::Verdict;
use crate::vision::Face;

/// Longest vote window the fixed-capacity history can hold.
pub const MAX_WINDOW: usize = 32;

/// Which face decides when several are in view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// The biggest face: the person closest to the door.
    Largest,
    /// The face whose centre is nearest the frame centre: the person in front of the camera.
    Central,
    /// Everyone in view must wear a mask: the lowest P(mask) decides.
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    /// `agree` frames out of the last `window` say the same.
    Count,
    /// The mean P(mask) of the last `window` frames (at least `agree` of them) decides.
    Mean,
}

/// The rules' numbers; also the `[decision]` config section as it is (serde reads it from the
/// TOML, durations as milliseconds). `mask_threshold` comes from `[model]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecideConfig {
    /// Whose face decides: "largest" (default), "central" or "all" (everyone must be masked).
    pub select: Select,
    /// "count" (default): `agree` of the last `window` frames; "mean": mean P(mask).
    pub vote: Vote,
    /// Frames considered. Default 5.
    pub window: usize,
    /// Frames that must agree (or the minimum frames for "mean"). Default 3.
    pub agree: usize,
    /// P(mask) at or above which a face counts as masked (`model.mask_threshold`).
    #[serde(skip)]
    pub mask_threshold: f32,
    /// Faces narrower than this many camera pixels are ignored, not guessed. Default 40.
    pub min_face_px: f32,
    /// How long a verdict stays on. Default 2000 ms.
    #[serde(rename = "hold_ms", with = "millis")]
    pub hold: Duration,
    /// Nobody in view this long re-arms for the next person. Default 500 ms.
    #[serde(rename = "absent_ms", with = "millis")]
    pub absent: Duration,
}

/// A `Duration` as whole milliseconds in the config file.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

impl Default for DecideConfig {
    fn default() -> Self {
        Self {
            select: Select::Largest,
            vote: Vote::Count,
            window: 5,
            agree: 3,
            mask_threshold: 0.5,
            min_face_px: 40.0,
            hold: Duration::from_millis(2000),
            absent: Duration::from_millis(500),
        }
    }
}

/// The widest minimum face any camera frame can hold (4K is 3840 pixels wide): a larger
/// `min_face_px` means the door can never decide.
pub const MAX_MIN_FACE_PX: f32 = 3840.0;

impl DecideConfig {
    /// Checks the numbers a config file could get wrong.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.window == 0 || self.window > MAX_WINDOW {
            return Err(InvalidSetting::new(
                "decision.window",
                format!(
                    "decision.window must be 1..={MAX_WINDOW}, got {}",
                    self.window
                ),
            ));
        }
        if self.agree == 0 || self.agree > self.window {
            return Err(InvalidSetting::new(
                "decision.agree",
                format!(
                    "decision.agree must be 1..=window ({}), got {}",
                    self.window, self.agree
                ),
            ));
        }
        if !(0.0..=MAX_MIN_FACE_PX).contains(&self.min_face_px) {
            return Err(InvalidSetting::new(
                "decision.min_face_px",
                format!(
                    "decision.min_face_px must be in 0..={MAX_MIN_FACE_PX} (pixels of the camera frame), got {}",
                    self.min_face_px
                ),
            ));
        }
        Ok(())
    }
}

/// What one frame says: P(mask) of the face that matters, or `None` when nobody judgeable
/// is in view. Faces below `min_face_px` or left unclassified (NaN) do not count.
pub fn observe(faces: &[Face], frame_w: u32, frame_h: u32, cfg: &DecideConfig) -> Option<f32> {
    let judgeable = faces
        .iter()
        .filter(|f| f.det.bbox.width() >= cfg.min_face_px && f.mask_prob.is_finite());
    let (cx, cy) = (frame_w as f32 / 2.0, frame_h as f32 / 2.0);
    let dist = |f: &Face| {
        let b = &f.det.bbox;
        let (dx, dy) = ((b.x1 + b.x2) / 2.0 - cx, (b.y1 + b.y2) / 2.0 - cy);
        dx * dx + dy * dy
    };
    match cfg.select {
        Select::Largest => judgeable
            .max_by(|a, b| a.det.bbox.area().total_cmp(&b.det.bbox.area()))
            .map(|f| f.mask_prob),
        Select::Central => judgeable
            .min_by(|a, b| dist(a).total_cmp(&dist(b)))
            .map(|f| f.mask_prob),
        Select::All => judgeable.map(|f| f.mask_prob).min_by(f32::total_cmp),
    }
}

/// A verdict to show, with the mean P(mask) of the votes behind it (0 for idle).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Announcement {
    pub verdict: Verdict,
    pub prob: f32,
}

pub struct Decider {
    cfg: DecideConfig,
    votes: Deque<f32, MAX_WINDOW>,
    last_seen: Option<Duration>,
    current: Verdict,
    announced_at: Duration,
    /// The next verdict belongs to a new person: announce it even inside the hold.
    armed: bool,
    /// A frame without the person came since they were last seen: only then can they have
    /// left (at 2 fps or less, consecutive frames of one person are `absent` apart).
    gap: bool,
}

impl Decider {
    pub fn new(cfg: DecideConfig) -> Self {
        Self {
            cfg,
            votes: Deque::new(),
            last_seen: None,
            current: Verdict::Idle,
            announced_at: Duration::ZERO,
            armed: true,
            gap: false,
        }
    }

    pub fn current(&self) -> Verdict {
        self.current
    }

    /// Feeds one frame's observation taken at `now`; returns a verdict to announce, if any.
    pub fn update(&mut self, now: Duration, obs: Option<f32>) -> Option<Announcement> {
        self.gap |= obs.is_none();
        if let Some(seen) = self.last_seen {
            if self.gap && now.saturating_sub(seen) >= self.cfg.absent {
                // the person left: whoever comes next is judged afresh
                self.votes.clear();
                self.last_seen = None;
                self.armed = true;
            }
        }
        let in_hold =
            self.current != Verdict::Idle && now.saturating_sub(self.announced_at) < self.cfg.hold;
        match obs {
            Some(p) => {
                self.last_seen = Some(now);
                self.gap = false;
                if self.votes.len() >= self.cfg.window {
                    self.votes.pop_front();
                }
                // capacity MAX_WINDOW >= window, checked by `validate`
                let _ = self.votes.push_back(p);
                let (verdict, prob) = self.tally()?;
                if self.armed || (verdict != self.current && !in_hold) {
                    return Some(self.announce(now, verdict, prob));
                }
                None
            }
            None => {
                if self.last_seen.is_none() && self.current != Verdict::Idle && !in_hold {
                    return Some(self.announce(now, Verdict::Idle, 0.0));
                }
                None
            }
        }
    }

    fn announce(&mut self, now: Duration, verdict: Verdict, prob: f32) -> Announcement {
        self.current = verdict;
        self.announced_at = now;
        self.armed = false;
        Announcement { verdict, prob }
    }

    fn tally(&self) -> Option<(Verdict, f32)> {
        let n = self.votes.len();
        let mean = self.votes.iter().sum::<f32>() / n.max(1) as f32;
        let thr = self.cfg.mask_threshold;
        match self.cfg.vote {
            Vote::Count => {
                let masked = self.votes.iter().filter(|&&p| p >= thr).count();
                if masked >= self.cfg.agree {
                    Some((Verdict::Mask, mean))
                } else if n - masked >= self.cfg.agree {
                    Some((Verdict::NoMask, mean))
                } else {
                    None
                }
            }
            Vote::Mean if n >= self.cfg.agree => {
                let v = if mean >= thr {
                    Verdict::Mask
                } else {
                    Verdict::NoMask
                };
                Some((v, mean))
            }
            Vote::Mean => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::{BBox, Detection};

    const FRAME: Duration = Duration::from_millis(100);

    fn face(x1: f32, y1: f32, size: f32, p: f32) -> Face {
        Face {
            det: Detection {
                bbox: BBox {
                    x1,
                    y1,
                    x2: x1 + size,
                    y2: y1 + size,
                },
                score: 0.9,
                landmarks: [[0.0; 2]; 5],
            },
            mask_prob: p,
            mask: p >= 0.5,
        }
    }

    /// Plays one observation per 100 ms and returns (frame index, verdict) announcements.
    fn play(cfg: DecideConfig, obs: &[Option<f32>]) -> Vec<(usize, Verdict)> {
        let mut d = Decider::new(cfg);
        obs.iter()
            .enumerate()
            .filter_map(|(i, o)| d.update(FRAME * i as u32, *o).map(|a| (i, a.verdict)))
            .collect()
    }

    const M: Option<f32> = Some(0.9);
    const U: Option<f32> = Some(0.1);
    const N: Option<f32> = None;

    #[test]
    fn largest_central_and_all_pick_the_right_face() {
        let big_unmasked_left = face(0.0, 0.0, 100.0, 0.2);
        let small_masked_centre = face(280.0, 200.0, 80.0, 0.8);
        let tiny = face(300.0, 220.0, 20.0, 0.99);
        let faces = [big_unmasked_left, small_masked_centre, tiny];
        let mut cfg = DecideConfig::default();
        assert_eq!(observe(&faces, 640, 480, &cfg), Some(0.2));
        cfg.select = Select::Central;
        assert_eq!(observe(&faces, 640, 480, &cfg), Some(0.8));
        cfg.select = Select::All;
        assert_eq!(observe(&faces, 640, 480, &cfg), Some(0.2));
        // the tiny face alone is ignored, not guessed
        assert_eq!(observe(&[tiny], 640, 480, &cfg), None);
        let unclassified = face(0.0, 0.0, 100.0, f32::NAN);
        assert_eq!(observe(&[unclassified], 640, 480, &cfg), None);
        assert_eq!(observe(&[], 640, 480, &cfg), None);
    }

    #[test]
    fn verdict_needs_agreement_then_idles_after_hold_and_absence() {
        let cfg = DecideConfig::default(); // 3 of 5, hold 2 s, absent 0.5 s
        let mut obs = vec![N, M, U, M, M];
        obs.extend([N; 30]);
        // third masked vote at frame 4; absent from frame 5; hold ends at 4 + 20 frames
        assert_eq!(
            play(cfg, &obs),
            vec![(4, Verdict::Mask), (24, Verdict::Idle)]
        );
    }

    #[test]
    fn a_slow_loop_still_decides_a_person_seen_in_every_frame() {
        // 1 frame/s (an overloaded board): frames of one person are further apart than
        // `absent`, and only an empty frame means they left
        let mut d = Decider::new(DecideConfig::default());
        let got: Vec<(u32, Verdict)> = [U, U, U, U, N, N, M, M, M]
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let t = Duration::from_secs(i as u64);
                d.update(t, *o).map(|a| (i as u32, a.verdict))
            })
            .collect();
        assert_eq!(
            got,
            vec![(2, Verdict::NoMask), (4, Verdict::Idle), (8, Verdict::Mask)]
        );
    }

    #[test]
    fn one_missed_detection_does_not_reset_the_votes() {
        let obs = [M, N, M, N, M];
        assert_eq!(
            play(DecideConfig::default(), &obs),
            vec![(4, Verdict::Mask)]
        );
    }

    #[test]
    fn wavering_person_does_not_flicker_inside_the_hold_but_changes_after() {
        let mut obs = vec![U, U, U]; // no mask at frame 2, hold until frame 22
        obs.extend([M; 25]); // pulls the mask up at frame 3; votes agree from frame 5
        assert_eq!(
            play(DecideConfig::default(), &obs),
            vec![(2, Verdict::NoMask), (22, Verdict::Mask)]
        );
    }

    #[test]
    fn next_person_gets_a_fresh_verdict_inside_the_hold() {
        // masked person, 0.5 s of nobody, unmasked person: both judged, well inside 2 s hold
        let obs = [M, M, M, N, N, N, N, N, U, U, U];
        assert_eq!(
            play(DecideConfig::default(), &obs),
            vec![(2, Verdict::Mask), (10, Verdict::NoMask)]
        );
        // the same verdict for a new person is announced again (fresh chirp)
        let obs = [M, M, M, N, N, N, N, N, M, M, M];
        assert_eq!(
            play(DecideConfig::default(), &obs),
            vec![(2, Verdict::Mask), (10, Verdict::Mask)]
        );
    }

    #[test]
    fn mean_vote_uses_the_average_probability() {
        let cfg = DecideConfig {
            vote: Vote::Mean,
            ..DecideConfig::default()
        };
        // 0.9, 0.3, 0.4: two of three below 0.5 but mean 0.533 -> mask
        let mut d = Decider::new(cfg);
        assert_eq!(d.update(Duration::ZERO, Some(0.9)), None);
        assert_eq!(d.update(FRAME, Some(0.3)), None);
        let a = d.update(FRAME * 2, Some(0.4)).unwrap();
        assert_eq!(a.verdict, Verdict::Mask);
        assert!((a.prob - 1.6 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn nobody_at_all_stays_idle_silently() {
        assert_eq!(play(DecideConfig::default(), &[N; 50]), vec![]);
    }

    #[test]
    fn validate_rejects_impossible_windows() {
        let bad = DecideConfig {
            agree: 6,
            ..DecideConfig::default()
        };
        assert!(bad.validate().unwrap_err().key == "decision.agree");
        let bad = DecideConfig {
            window: 33,
            ..DecideConfig::default()
        };
        assert!(bad.validate().is_err());
        assert!(DecideConfig::default().validate().is_ok());
    }
}
