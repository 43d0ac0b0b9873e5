//! A one-frame mailbox between the capture thread and the frame loop: the producer always
//! overwrites, the consumer always gets the newest frame, stale ones are simply dropped.
//! Frames move by swapping two buffers, so after warm-up nothing is allocated.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Raw bytes as the camera delivered them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PixelFormat {
    #[default]
    Yuyv,
    Mjpeg,
    /// Packed RGB8 (ffmpeg's rawvideo rgb24: IP cameras).
    Rgb24,
    /// Planar YUV 4:2:0 (rpicam-vid's yuv420).
    I420,
}

#[derive(Default)]
pub struct RawFrame {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    pub format: PixelFormat,
}

#[derive(Default)]
struct State {
    frame: RawFrame,
    seq: u64,
    error: Option<String>,
}

#[derive(Default)]
pub struct Latest {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// A newer frame was swapped into the caller's buffer; this is its sequence number.
    Frame(u64),
    /// The producer reported an error (and stopped).
    Failed(String),
    /// Nothing new within the timeout: the camera stalled.
    Timeout,
}

impl Latest {
    /// Producer: hands `back` over and gets the previous slot buffer back to refill.
    pub fn publish(&self, back: &mut RawFrame) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut s.frame, back);
        s.seq += 1;
        self.cv.notify_one();
    }

    /// Producer: reports why it stopped.
    pub fn fail(&self, msg: String) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.error = Some(msg);
        self.cv.notify_one();
    }

    /// Consumer: waits up to `timeout` for a frame newer than `seen` and swaps it into `front`.
    pub fn take_newer(&self, seen: u64, front: &mut RawFrame, timeout: Duration) -> Take {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut s, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |s| s.seq <= seen && s.error.is_none())
            .unwrap_or_else(|e| e.into_inner());
        if s.seq > seen {
            std::mem::swap(&mut s.frame, front);
            return Take::Frame(s.seq);
        }
        match s.error.take() {
            Some(e) => Take::Failed(e),
            None => Take::Timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn frame(tag: u8) -> RawFrame {
        RawFrame {
            data: vec![tag; 4],
            ..RawFrame::default()
        }
    }

    #[test]
    fn consumer_gets_the_newest_and_stale_frames_are_dropped() {
        let l = Latest::default();
        for tag in 1..=3 {
            l.publish(&mut frame(tag));
        }
        let mut front = RawFrame::default();
        assert_eq!(l.take_newer(0, &mut front, Duration::ZERO), Take::Frame(3));
        assert_eq!(front.data, vec![3; 4]);
        assert_eq!(
            l.take_newer(3, &mut front, Duration::from_millis(1)),
            Take::Timeout
        );
    }

    #[test]
    fn buffers_are_swapped_not_reallocated() {
        let l = Latest::default();
        let mut back = frame(1);
        let produced = back.data.as_ptr();
        l.publish(&mut back);
        let mut front = frame(9);
        let consumed = front.data.as_ptr();
        l.take_newer(0, &mut front, Duration::ZERO);
        assert_eq!(front.data.as_ptr(), produced);
        // the consumer's old buffer goes back to the producer on its next publish
        l.publish(&mut back);
        assert_eq!(back.data.as_ptr(), consumed);
    }

    #[test]
    fn producer_failure_wakes_the_waiting_consumer() {
        let l = Arc::new(Latest::default());
        let l2 = l.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            l2.fail("device unplugged".into());
        });
        let mut front = RawFrame::default();
        let got = l.take_newer(0, &mut front, Duration::from_secs(10));
        assert_eq!(got, Take::Failed("device unplugged".into()));
        t.join().unwrap();
    }
}
