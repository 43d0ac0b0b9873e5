//! YUYV conversion with the size and stride taken from the input (what a driver reports):
//! a frame that does not fit is an error, never an out-of-bounds read or write.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maskgate::source::convert::yuyv_to_rgb;

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let w = usize::from(u16::from_le_bytes([data[0], data[1]]) % 512);
    let h = usize::from(u16::from_le_bytes([data[2], data[3]]) % 512);
    let stride = usize::from(u16::from_le_bytes([data[4], data[5]]) % 2048);
    let mut dst = vec![0u8; w * h * 3];
    let _ = yuyv_to_rgb(&data[6..], w, h, stride, &mut dst);
});
