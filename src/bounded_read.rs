//! Whole-file reads with a size limit. A path a user names (a config, a token, a model, an
//! image) may be `/dev/zero`, a pipe that never ends or a 40 GB file given by mistake:
//! `std::fs::read` would take all of a board's memory before saying anything (`image
//! /dev/zero` did). std has no bounded read of a whole file; `Read::take` is the whole trick.

use std::io::{self, Read};
use std::path::Path;

/// Settings files: a config layer, the HTTP token, the MQTT password.
pub const TEXT_LIMIT: u64 = 1 << 20;
/// A TFLite model (the shipped ones are under 1 MB; an int8 ResNet-50 is 25 MB).
pub const MODEL_LIMIT: u64 = 256 << 20;
/// An encoded still image (a 64-megapixel PNG is under 200 MB).
pub const IMAGE_LIMIT: u64 = 256 << 20;

/// The bytes of `path`, or an error naming the limit when it holds more than `limit` bytes.
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    // a regular file says its size: one allocation, and a too-large one is refused unread
    let len = f
        .metadata()
        .map(|m| if m.is_file() { m.len() } else { 0 })?;
    if len > limit {
        return Err(too_large(limit));
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(buf)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("more than {} MiB, the limit for this file", limit >> 20),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_up_to_the_limit_are_read_and_larger_ones_refused() {
        let dir = std::env::temp_dir().join(format!("maskgate-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, vec![b'a'; 2 << 20]).unwrap();
        assert_eq!(read(&f, 2 << 20).unwrap().len(), 2 << 20);
        let e = read(&f, 1 << 20).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(e.to_string(), "more than 1 MiB, the limit for this file");
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        let e = read_to_string(&f, 1 << 20).unwrap_err();
        assert_eq!(e.to_string(), "not UTF-8 text");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_endless_device_stops_at_the_limit() {
        // not a regular file: no size to check first, the read itself stops one byte past
        let e = read(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
    }
}
