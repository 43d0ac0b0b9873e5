//! Annotated frames out to files: the video encoder, `ffmpeg` over a pipe (the same reasons as
//! the decoder in [`crate::source::video`]: no libav* link, nothing to cross-compile).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};

use crate::source::video::INSTALL_HINT;
use crate::source::RgbFrame;

/// Why the annotated video could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("ffmpeg not found on PATH; {INSTALL_HINT}")]
    NoFfmpeg,
    /// (`err` is not marked as the source: the message already says it)
    #[error("cannot write {}: {err}", path.display())]
    Create { path: PathBuf, err: io::Error },
    #[error("cannot run ffmpeg: {0}")]
    Spawn(#[source] io::Error),
    #[error("encoder for {} stopped: {source}", path.display())]
    Stopped {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("ffmpeg could not write {} ({status})", path.display())]
    Failed { path: PathBuf, status: ExitStatus },
}

/// Writes RGB24 frames to an encoder; H.264 in MP4 / MKV / MOV, ffmpeg's default codec for
/// other containers. Audio is never written.
///
/// The encoder writes a hidden sibling (`.NAME.partial.EXT`, made before ffmpeg starts, so an
/// unwritable folder is refused at once) that [`VideoWriter::finish`] renames to the final
/// name: a failed or interrupted run never leaves a half file under that name, nor replaces a
/// good one.
pub struct VideoWriter {
    child: Child,
    stdin: Option<ChildStdin>,
    path: PathBuf,
    partial: PathBuf,
}

/// The hidden file the encoder writes until [`VideoWriter::finish`]; same folder (so the
/// rename is atomic) and same extension (ffmpeg picks the container from it).
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial{ext}"))
}

impl VideoWriter {
    pub fn create(path: &Path, width: u32, height: u32, fps: f64) -> Result<Self, EncodeError> {
        let partial = partial_path(path);
        std::fs::File::create(&partial).map_err(|err| EncodeError::Create {
            path: path.to_path_buf(),
            err,
        })?;
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let mut c = Command::new("ffmpeg");
        c.args([
            "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        ])
        .args(["-s", &format!("{width}x{height}")])
        .args(["-framerate", &format!("{fps}")])
        .args(["-i", "-", "-an"]);
        if matches!(ext.as_str(), "mp4" | "mkv" | "mov" | "m4v") {
            // yuv420p needs even sizes: pad one pixel where needed
            c.args([
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            ])
            .args(["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]);
        }
        if matches!(ext.as_str(), "mp4" | "mov" | "m4v") {
            c.args(["-movflags", "+faststart"]);
        }
        let mut child = c
            .arg(&partial)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                let _ = std::fs::remove_file(&partial);
                if e.kind() == io::ErrorKind::NotFound {
                    EncodeError::NoFfmpeg
                } else {
                    EncodeError::Spawn(e)
                }
            })?;
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            path: path.to_path_buf(),
            partial,
        })
    }

    pub fn write(&mut self, f: &RgbFrame) -> Result<(), EncodeError> {
        let w = self.stdin.as_mut().expect("open until finish");
        w.write_all(&f.data).map_err(|source| EncodeError::Stopped {
            path: self.path.clone(),
            source,
        })
    }

    /// Closes the pipe, waits for the encoder to finish the file and gives it its name.
    pub fn finish(mut self) -> Result<(), EncodeError> {
        drop(self.stdin.take());
        let st = self.child.wait().map_err(|source| EncodeError::Stopped {
            path: self.path.clone(),
            source,
        })?;
        if !st.success() {
            return Err(EncodeError::Failed {
                path: self.path.clone(),
                status: st,
            });
        }
        std::fs::rename(&self.partial, &self.path).map_err(|err| EncodeError::Create {
            path: self.path.clone(),
            err,
        })
    }
}

impl Drop for VideoWriter {
    /// Not finished (an error, or nothing worth keeping): the encoder is stopped and its
    /// partial file removed; a renamed file is not there any more, so this is a no-op then.
    fn drop(&mut self) {
        if self.stdin.take().is_some() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.partial);
    }
}
