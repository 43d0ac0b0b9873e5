//! A directory of images (played in name order) or a single image, at a fixed frame rate.
//! On a real clock a slow loop skips the frames it missed (latest-frame semantics, as with a
//! camera); on the simulated clock every frame is played at its exact time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{FrameSource, RgbFrame, SourceError};
use crate::clock::Clock;
use crate::vision::image_io;

pub struct FileSource {
    root: PathBuf,
    files: Vec<PathBuf>,
    /// Frame period; zero plays as fast as the loop goes.
    period: Duration,
    start: Option<Duration>,
    /// Frame index played at `start` (moves on a reopen, which resumes from "now").
    base: usize,
    next: usize,
    /// Starts again from the first file after the last (`run --loop`).
    repeat: bool,
    /// Some file was decoded (a folder of bad files must not spin).
    loaded: bool,
}

impl FileSource {
    /// `fps` <= 0 plays without pacing (benchmarks).
    pub fn open(path: &Path, fps: f64) -> Result<Self, SourceError> {
        let files = if path.is_dir() {
            let rd = std::fs::read_dir(path)
                .map_err(|e| SourceError::Open(format!("cannot read {}: {e}", path.display())))?;
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            v.sort();
            v
        } else if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            return Err(SourceError::Open(format!(
                "source {} is neither a camera (/dev/videoN, rpicam, rtsp:// or http://), a video, a folder nor an image file",
                path.display()
            )));
        };
        if files.is_empty() {
            return Err(SourceError::Open(format!(
                "{} holds no files",
                path.display()
            )));
        }
        let period = if fps > 0.0 {
            Duration::from_secs_f64(1.0 / fps)
        } else {
            Duration::ZERO
        };
        Ok(Self {
            root: path.to_path_buf(),
            files,
            period,
            start: None,
            base: 0,
            next: 0,
            repeat: false,
            loaded: false,
        })
    }

    /// Plays the files forever: after the last comes the first again, on time.
    pub fn repeating(mut self) -> Self {
        self.repeat = true;
        self
    }

    /// At the end with `repeat`: the first file again, one period after the last.
    fn wrap(&mut self) -> bool {
        // `loaded`: some file decoded at all, so a folder of undecodable files ends instead of
        // spinning. Not "in the last round": on a real clock a round can pass unplayed (one
        // image at 4 fps behind a 600 ms inference), and the source must go on then too.
        if self.repeat && self.loaded && self.next >= self.files.len() {
            // the first file again where the one after the last would have been due
            let played = (self.files.len() - self.base) as u32;
            self.start = self.start.map(|s| s + self.period * played);
            self.base = 0;
            self.next = 0;
            true
        } else {
            false
        }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl FrameSource for FileSource {
    fn next_frame(
        &mut self,
        clock: &mut dyn Clock,
        out: &mut RgbFrame,
    ) -> Result<bool, SourceError> {
        loop {
            let start = *self.start.get_or_insert_with(|| clock.now());
            if !self.period.is_zero() {
                if clock.is_real() {
                    // frames whose time has passed while the loop was busy are dropped
                    let due = (clock.now() - start).as_nanos() / self.period.as_nanos();
                    self.next = self.next.max(self.base + due as usize);
                }
                if self.next >= self.files.len() {
                    if self.wrap() {
                        continue;
                    }
                    return Ok(false);
                }
                clock.sleep_until(start + self.period * (self.next - self.base) as u32);
            }
            let Some(path) = self.files.get(self.next) else {
                if self.wrap() {
                    continue;
                }
                return Ok(false);
            };
            self.next += 1;
            match image_io::load(path) {
                Ok(img) => {
                    self.loaded = true;
                    out.set_size(img.width(), img.height());
                    out.data.copy_from_slice(img.as_raw());
                    return Ok(true);
                }
                // a bad file in a demo folder is skipped, not fatal
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "skipping frame"),
            }
        }
    }

    /// Resumes with the next file, from now.
    fn reopen(&mut self) -> Result<(), SourceError> {
        self.start = None;
        self.base = self.next;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("{} ({} images)", self.root.display(), self.files.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;

    #[test]
    fn repeating_plays_the_folder_again_on_time() {
        let dir = std::env::temp_dir().join(format!("maskgate-loop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, v) in [10u8, 20].iter().enumerate() {
            image::RgbImage::from_pixel(4, 4, image::Rgb([*v; 3]))
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
        let mut src = FileSource::open(&dir, 10.0).unwrap().repeating();
        let mut clock = SimClock::default();
        let mut f = RgbFrame::default();
        let mut seen = Vec::new();
        for _ in 0..5 {
            assert!(src.next_frame(&mut clock, &mut f).unwrap());
            seen.push((clock.now().as_millis(), f.data[0]));
        }
        assert_eq!(seen, [(0, 10), (100, 20), (200, 10), (300, 20), (400, 10)]);
        // without repeat the folder ends
        let mut once = FileSource::open(&dir, 10.0).unwrap();
        assert!(once.next_frame(&mut clock, &mut f).unwrap());
        assert!(once.next_frame(&mut clock, &mut f).unwrap());
        assert!(!once.next_frame(&mut clock, &mut f).unwrap());
        // a folder of undecodable files ends even when repeating
        let bad = dir.join("bad");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("x.png"), b"not a png").unwrap();
        let mut src = FileSource::open(&bad, 10.0).unwrap().repeating();
        assert!(!src.next_frame(&mut clock, &mut f).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A real clock that moves on only when told to (or slept on).
    struct LateClock(Duration);

    impl Clock for LateClock {
        fn now(&self) -> Duration {
            self.0
        }
        fn sleep_until(&mut self, t: Duration) {
            self.0 = self.0.max(t);
        }
        fn is_real(&self) -> bool {
            true
        }
    }

    #[test]
    fn repeating_goes_on_when_the_loop_is_slower_than_the_files() {
        // one image at 4 fps behind a 630 ms pipeline (the aarch64 VM's speed): every round
        // but the current one passes unplayed; it ended after one frame before
        let dir = std::env::temp_dir().join(format!("maskgate-late-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let one = dir.join("face.png");
        image::RgbImage::from_pixel(4, 4, image::Rgb([7; 3]))
            .save(&one)
            .unwrap();
        let mut src = FileSource::open(&one, 4.0).unwrap().repeating();
        let mut clock = LateClock(Duration::ZERO);
        let mut f = RgbFrame::default();
        let mut at = Vec::new();
        for _ in 0..4 {
            assert!(src.next_frame(&mut clock, &mut f).unwrap());
            at.push(clock.now().as_millis());
            clock.0 += Duration::from_millis(630);
        }
        // late: the frame now due plays at once when the loop comes back
        assert_eq!(at, [0, 630, 1260, 1890]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
