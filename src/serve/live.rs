//! Live view for aiming the camera (`http.live_view = true`): the frame loop offers each
//! frame to a [`LiveView`], which copies one into its slot only while somebody is watching
//! (a request in the last few seconds) and at most at the live rate, never waiting for the
//! lock (a viewer holding it only costs the loop that one copy). Drawing the boxes, labels
//! and the minimum-face-size guide and encoding the JPEG happen on the HTTP side, once per
//! new frame however many viewers there are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use embedded_graphics::mono_font::{ascii, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use heapless::Vec as HVec;

use crate::source::RgbFrame;
use crate::vision::annotate::{self, Canvas};
use crate::vision::MAX_FACES;
use crate::Face;

/// A viewer keeps frames coming for this long after its last request.
pub const WATCH_FOR: Duration = Duration::from_secs(5);
/// Frames per second the live view copies and streams.
pub const LIVE_FPS: u64 = 4;
const GUIDE: Rgb888 = Rgb888::new(255, 200, 0);

#[derive(Default)]
struct Slot {
    seq: u64,
    at: Option<Instant>,
    frame: RgbFrame,
    faces: HVec<Face, MAX_FACES>,
}

pub struct LiveView {
    started: Instant,
    min_face_px: f32,
    wanted_until_ms: AtomicU64,
    last_copy_ms: AtomicU64,
    slot: Mutex<Slot>,
    jpeg: Mutex<Option<(u64, Bytes)>>,
}

impl std::fmt::Debug for LiveView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveView")
            .field("min_face_px", &self.min_face_px)
            .finish_non_exhaustive()
    }
}

impl LiveView {
    /// `min_face_px`: the decision's minimum face width, drawn as the guide square.
    pub fn new(min_face_px: f32) -> Self {
        Self {
            started: Instant::now(),
            min_face_px,
            wanted_until_ms: AtomicU64::new(0),
            last_copy_ms: AtomicU64::new(0),
            slot: Mutex::default(),
            jpeg: Mutex::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The frame loop, after each frame: copies it (and its faces) when a viewer is watching
    /// and the live interval has passed. Allocates only when the frame size grows.
    pub fn offer(&self, frame: &RgbFrame, faces: &[Face]) {
        let now = self.now_ms();
        if now >= self.wanted_until_ms.load(Ordering::Relaxed) {
            return;
        }
        let last = self.last_copy_ms.load(Ordering::Relaxed);
        if last != 0 && now < last + 1000 / LIVE_FPS {
            return;
        }
        let Ok(mut s) = self.slot.try_lock() else {
            return;
        };
        s.frame.width = frame.width;
        s.frame.height = frame.height;
        s.frame.data.clear();
        s.frame.data.extend_from_slice(&frame.data);
        s.faces.clear();
        for f in faces.iter().take(MAX_FACES) {
            let _ = s.faces.push(*f);
        }
        s.seq += 1;
        s.at = Some(Instant::now());
        self.last_copy_ms.store(now.max(1), Ordering::Relaxed);
    }

    /// A viewer asked: frames are copied for the next [`WATCH_FOR`].
    pub fn want(&self) {
        let until = self.now_ms() + WATCH_FOR.as_millis() as u64;
        self.wanted_until_ms.store(until, Ordering::Relaxed);
    }

    /// The newest copied frame as an annotated JPEG with its sequence number, if it is younger
    /// than `max_age`; encoded once per frame.
    pub fn jpeg(&self, max_age: Duration) -> Option<(u64, Bytes)> {
        self.want();
        let mut cache = self.jpeg.lock().unwrap_or_else(|e| e.into_inner());
        let (seq, mut img, faces) = {
            let s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            if s.at.is_none_or(|t| t.elapsed() > max_age) {
                return None;
            }
            if let Some((c, j)) = cache.as_ref() {
                if *c == s.seq {
                    return Some((*c, j.clone()));
                }
            }
            let img =
                image::RgbImage::from_raw(s.frame.width, s.frame.height, s.frame.data.clone())?;
            (s.seq, img, s.faces.clone())
        };
        annotate::draw_faces(&mut img, &faces);
        self.draw_guide(&mut img);
        let mut out = Vec::with_capacity(64 << 10);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&img)
            .ok()?;
        let j = Bytes::from(out);
        *cache = Some((seq, j.clone()));
        Some((seq, j))
    }

    /// The smallest face the door judges, as a square in the lower left corner: an installer
    /// aims and zooms until faces at the door are bigger than it.
    fn draw_guide(&self, img: &mut image::RgbImage) {
        let side = self.min_face_px.round().max(4.0) as u32;
        let (w, h) = (img.width(), img.height());
        if side + 8 >= w.min(h) {
            return;
        }
        let mut c = Canvas(img);
        let top = (h - side - 6) as i32;
        let _ = Rectangle::new(Point::new(6, top), Size::new(side, side))
            .into_styled(PrimitiveStyle::with_stroke(GUIDE, 1))
            .draw(&mut c);
        let mut label = heapless::String::<32>::new();
        let _ = core::fmt::Write::write_fmt(&mut label, format_args!("min face {side}px"));
        let _ = Text::with_baseline(
            &label,
            Point::new(10 + side as i32, top + side as i32),
            MonoTextStyle::new(&ascii::FONT_6X10, GUIDE),
            Baseline::Bottom,
        )
        .draw(&mut c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: u8) -> RgbFrame {
        let mut f = RgbFrame::default();
        f.set_size(160, 120);
        f.data.fill(v);
        f
    }

    #[test]
    fn copies_only_while_watched_and_encodes_once_per_frame() {
        let live = LiveView::new(40.0);
        live.offer(&frame(10), &[]);
        assert!(
            live.jpeg(Duration::from_secs(2)).is_none(),
            "nobody watched"
        );
        live.want();
        live.offer(&frame(10), &[]);
        let (seq, a) = live.jpeg(Duration::from_secs(2)).unwrap();
        assert_eq!(seq, 1);
        // within the live interval a second offer is skipped; the cached JPEG is the same bytes
        live.offer(&frame(200), &[]);
        let (seq2, b) = live.jpeg(Duration::from_secs(2)).unwrap();
        assert_eq!((seq2, a.as_ptr()), (1, b.as_ptr()));
        let img = image::load_from_memory(&a).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (160, 120));
        // the guide: its left edge is drawn in the guide colour over the grey frame
        let p = img.get_pixel(6, 120 - 6 - 20);
        assert!(p[0] as i32 > p[2] as i32 + 60, "{p:?}");
        std::thread::sleep(Duration::from_millis(1000 / LIVE_FPS + 20));
        live.offer(&frame(200), &[]);
        assert_eq!(live.jpeg(Duration::from_secs(2)).unwrap().0, 2);
    }
}
