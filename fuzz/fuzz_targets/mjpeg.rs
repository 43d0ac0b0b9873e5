//! A camera's MJPEG frame, as the capture thread hands it over: any bytes must give a frame or
//! an error, never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maskgate::source::convert::mjpeg_to_rgb;

fuzz_target!(|data: &[u8]| {
    let (mut scratch, mut dst) = (Vec::new(), Vec::new());
    if let Ok((w, h)) = mjpeg_to_rgb(data, &mut scratch, &mut dst) {
        assert_eq!(dst.len(), w as usize * h as usize * 3);
    }
});
