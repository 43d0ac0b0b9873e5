//! I420 conversion (rpicam-vid's frames) with the size taken from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maskgate::source::convert::i420_to_rgb;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let w = usize::from(u16::from_le_bytes([data[0], data[1]]) % 512);
    let h = usize::from(u16::from_le_bytes([data[2], data[3]]) % 512);
    let mut dst = vec![0u8; w * h * 3];
    let _ = i420_to_rgb(&data[4..], w, h, &mut dst);
});
