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
                "source {} is neither a camera (/dev/video*), a directory nor an image file",
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
        })
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
                    return Ok(false);
                }
                clock.sleep_until(start + self.period * (self.next - self.base) as u32);
            }
            let Some(path) = self.files.get(self.next) else {
                return Ok(false);
            };
            self.next += 1;
            match image_io::load(path) {
                Ok(img) => {
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
