//! The folder of annotated verdict images (`service.save_verdict_images`), kept under a size
//! cap (`service.verdict_images_max_mb`) so a busy door cannot fill the disk: when a new image
//! takes the folder over the cap, the oldest of maskgate's own images go. Only files named the
//! way maskgate names them (`<unix ms>-<verdict>.jpg`) are counted or deleted; anything else
//! in the folder is never touched.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use crate::verdict::Verdict;

/// The Unix-millisecond stamp of one of maskgate's image names, `None` for any other name.
pub fn stamp_of(name: &str) -> Option<u64> {
    let (stamp, rest) = name.split_once('-')?;
    let verdict = rest.strip_suffix(".jpg")?;
    let ours = matches!(verdict, "mask" | "no_mask")
        && !stamp.is_empty()
        && stamp.bytes().all(|b| b.is_ascii_digit());
    ours.then(|| stamp.parse().ok()).flatten()
}

/// How many of the oldest files (`sizes`, oldest first, summing to `total`) to delete so the
/// rest fit in `cap` bytes; the newest is always kept, even when it alone is over.
pub fn to_prune(sizes: impl IntoIterator<Item = u64>, total: u64, cap: u64) -> usize {
    let sizes: Vec<u64> = sizes.into_iter().collect();
    let mut left = total;
    let mut n = 0;
    while left > cap && n + 1 < sizes.len() {
        left -= sizes[n];
        n += 1;
    }
    n
}

/// maskgate's images in the folder, oldest first, with their sizes.
pub struct VerdictImages {
    dir: PathBuf,
    cap: u64,
    files: VecDeque<(u64, String, u64)>,
    total: u64,
    pruned: u64,
}

impl VerdictImages {
    /// Takes stock of the images already in `dir` (earlier runs count towards the cap). An
    /// unreadable folder starts an empty list: saving still works, pruning then covers only
    /// this run's images.
    pub fn open(dir: &Path, cap_bytes: u64) -> Self {
        let mut files = Vec::new();
        match std::fs::read_dir(dir) {
            Ok(rd) => {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let (Some(stamp), Ok(m)) = (stamp_of(&name), e.metadata()) {
                        if m.is_file() {
                            files.push((stamp, name, m.len()));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list the verdict images; older ones will not be pruned");
            }
        }
        files.sort();
        let total = files.iter().map(|f| f.2).sum();
        Self {
            dir: dir.to_path_buf(),
            cap: cap_bytes,
            files: files.into(),
            total,
            pruned: 0,
        }
    }

    /// Writes the annotated frame as `<stamp_ms>-<verdict>.jpg`, then prunes to the cap.
    pub fn save(&mut self, img: &image::RgbImage, stamp_ms: u64, v: Verdict) {
        let name = format!("{stamp_ms}-{}.jpg", v.as_str());
        let path = self.dir.join(&name);
        if let Err(e) = img.save(&path) {
            tracing::warn!(file = %path.display(), error = %e, "cannot save verdict image");
            return;
        }
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        self.files.push_back((stamp_ms, name, size));
        self.total += size;
        self.prune();
    }

    fn prune(&mut self) {
        let n = to_prune(self.files.iter().map(|f| f.2), self.total, self.cap);
        for _ in 0..n {
            let Some((_, name, size)) = self.files.pop_front() else {
                break;
            };
            let path = self.dir.join(&name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                // already gone (removed by hand): it no longer takes space either
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot delete an old verdict image");
                }
            }
            self.total -= size;
            if self.pruned == 0 {
                tracing::info!(dir = %self.dir.display(), cap_mb = self.cap >> 20,
                    "verdict images reached service.verdict_images_max_mb; the oldest are deleted from now on");
            }
            self.pruned += 1;
        }
    }

    /// Bytes the images take now.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// How many images are kept now.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_maskgates_names_are_ours() {
        assert_eq!(stamp_of("1733170000123-mask.jpg"), Some(1733170000123));
        assert_eq!(stamp_of("17-no_mask.jpg"), Some(17));
        for other in [
            "holiday.jpg",
            "1733170000123-mask.png",
            "1733170000123-idle.jpg",
            "-mask.jpg",
            "12a-mask.jpg",
            "1733170000123-mask.jpg.bak",
            "99999999999999999999999-mask.jpg",
        ] {
            assert_eq!(stamp_of(other), None, "{other}");
        }
    }

    #[test]
    fn prunes_the_oldest_until_under_the_cap_keeping_the_newest() {
        assert_eq!(to_prune([10, 10, 10], 30, 30), 0);
        assert_eq!(to_prune([10, 10, 10], 30, 29), 1);
        assert_eq!(to_prune([10, 10, 10], 30, 10), 2);
        assert_eq!(to_prune([5, 30, 10], 45, 20), 2);
        // the newest stays, even alone over the cap
        assert_eq!(to_prune([10, 10, 50], 70, 20), 2);
        assert_eq!(to_prune([50], 50, 20), 0);
        assert_eq!(to_prune([], 0, 0), 0);
    }

    #[test]
    fn a_folder_keeps_under_its_cap_and_foreign_files_survive() {
        let dir = std::env::temp_dir().join(format!("maskgate-vi-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), b"installer's notes").unwrap();
        std::fs::write(dir.join("1000-mask.jpg"), vec![0u8; 5900]).unwrap();
        let img = image::RgbImage::from_pixel(64, 48, image::Rgb([200, 30, 30]));
        let mut vi = VerdictImages::open(&dir, 6000);
        assert_eq!((vi.len(), vi.total()), (1, 5900));
        vi.save(&img, 2000, Verdict::NoMask);
        // the earlier run's image went to make room; the new one and the notes stay
        assert!(!dir.join("1000-mask.jpg").exists());
        assert!(dir.join("2000-no_mask.jpg").is_file());
        for t in 3000..3010 {
            vi.save(&img, t, Verdict::Mask);
            assert!(vi.total() <= 6000, "{}", vi.total());
        }
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(names.contains(&"notes.txt".to_string()), "{names:?}");
        assert!(names.contains(&"3009-mask.jpg".to_string()), "{names:?}");
        assert_eq!(names.len(), vi.len() + 1, "{names:?}");
        let on_disk: u64 = names
            .iter()
            .filter(|n| stamp_of(n).is_some())
            .map(|n| std::fs::metadata(dir.join(n)).unwrap().len())
            .sum();
        assert_eq!(on_disk, vi.total());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
