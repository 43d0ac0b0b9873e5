//! Camera pixel formats to packed RGB8, written into a caller's reused buffer.

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::{ColorType, ImageDecoder, ImageError};

/// A frame that cannot be turned into RGB (the camera source reports it and keeps going).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("YUYV frame too short: {len} bytes for {width}x{height} (stride {stride})")]
    ShortYuyv {
        len: usize,
        width: usize,
        height: usize,
        stride: usize,
    },
    #[error("I420 frame too short: {len} bytes for {width}x{height} (even sizes only)")]
    ShortI420 {
        len: usize,
        width: usize,
        height: usize,
    },
    #[error("RGB buffer has the wrong size")]
    BufferSize,
    #[error("bad MJPEG frame: no JPEG start marker")]
    NoJpegStart,
    #[error("bad MJPEG frame: {0}")]
    BadJpeg(#[from] ImageError),
    #[error("MJPEG frame in unsupported colour type {0:?}")]
    UnsupportedColour(ColorType),
}

/// YUYV 4:2:2 (BT.601, limited range, as UVC cameras send it) to RGB8. `stride` is the
/// source bytes per line (at least `2 * width`); `dst` must hold `width * height * 3` bytes.
pub fn yuyv_to_rgb(
    src: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    dst: &mut [u8],
) -> Result<(), FrameError> {
    if width % 2 != 0 || stride < width * 2 || src.len() < stride * (height.max(1) - 1) + width * 2
    {
        return Err(FrameError::ShortYuyv {
            len: src.len(),
            width,
            height,
            stride,
        });
    }
    if dst.len() != width * height * 3 {
        return Err(FrameError::BufferSize);
    }
    for y in 0..height {
        let row = &src[y * stride..y * stride + width * 2];
        let out = &mut dst[y * width * 3..(y + 1) * width * 3];
        for (px, o) in row.chunks_exact(4).zip(out.chunks_exact_mut(6)) {
            let (u, v) = (i32::from(px[1]) - 128, i32::from(px[3]) - 128);
            for (k, yy) in [px[0], px[2]].into_iter().enumerate() {
                let c = 298 * (i32::from(yy) - 16);
                o[k * 3] = clamp((c + 409 * v + 128) >> 8);
                o[k * 3 + 1] = clamp((c - 100 * u - 208 * v + 128) >> 8);
                o[k * 3 + 2] = clamp((c + 516 * u + 128) >> 8);
            }
        }
    }
    Ok(())
}

/// Planar I420 / YUV420 (BT.601 limited range: what `rpicam-vid --codec yuv420` writes) to
/// RGB8: the Y plane, then U and V at half size, rows packed. `dst` must hold
/// `width * height * 3` bytes; sizes must be even.
pub fn i420_to_rgb(
    src: &[u8],
    width: usize,
    height: usize,
    dst: &mut [u8],
) -> Result<(), FrameError> {
    let (cw, ch) = (width / 2, height / 2);
    if width % 2 != 0 || height % 2 != 0 || src.len() < width * height + 2 * cw * ch {
        return Err(FrameError::ShortI420 {
            len: src.len(),
            width,
            height,
        });
    }
    if dst.len() != width * height * 3 {
        return Err(FrameError::BufferSize);
    }
    let (yp, rest) = src.split_at(width * height);
    let (up, vp) = rest.split_at(cw * ch);
    for y in 0..height {
        let yrow = &yp[y * width..(y + 1) * width];
        let (urow, vrow) = (&up[y / 2 * cw..][..cw], &vp[y / 2 * cw..][..cw]);
        let out = &mut dst[y * width * 3..(y + 1) * width * 3];
        for (x, o) in out.chunks_exact_mut(3).enumerate() {
            let (u, v) = (i32::from(urow[x / 2]) - 128, i32::from(vrow[x / 2]) - 128);
            let c = 298 * (i32::from(yrow[x]) - 16);
            o[0] = clamp((c + 409 * v + 128) >> 8);
            o[1] = clamp((c - 100 * u - 208 * v + 128) >> 8);
            o[2] = clamp((c + 516 * u + 128) >> 8);
        }
    }
    Ok(())
}

#[inline]
fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Decodes one MJPEG frame into `dst` (resized to fit; its capacity is reused).
/// Returns the frame size. Frames without Huffman tables (many UVC cameras omit them)
/// get the standard tables from ITU T.81 Annex K first, using `scratch`.
pub fn mjpeg_to_rgb(
    src: &[u8],
    scratch: &mut Vec<u8>,
    dst: &mut Vec<u8>,
) -> Result<(u32, u32), FrameError> {
    let jpeg = if has_marker(src, 0xC4) {
        src
    } else {
        insert_default_dht(src, scratch)?;
        &scratch[..]
    };
    let dec = JpegDecoder::new(Cursor::new(jpeg))?;
    let (w, h) = dec.dimensions();
    let ct = dec.color_type();
    let n = w as usize * h as usize;
    match ct {
        ColorType::Rgb8 => {
            dst.resize(n * 3, 0);
            dec.read_image(dst)?;
        }
        ColorType::L8 => {
            dst.resize(n * 3, 0);
            dec.read_image(&mut dst[..n])?;
            // expand gray in place, back to front
            for i in (0..n).rev() {
                let g = dst[i];
                dst[i * 3..i * 3 + 3].copy_from_slice(&[g, g, g]);
            }
        }
        other => return Err(FrameError::UnsupportedColour(other)),
    }
    Ok((w, h))
}

/// Whether a marker segment 0xFF `code` appears before the scan data.
fn has_marker(src: &[u8], code: u8) -> bool {
    let mut i = 2;
    while i + 4 <= src.len() && src[i] == 0xFF {
        let m = src[i + 1];
        if m == code {
            return true;
        }
        if m == 0xDA {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([src[i + 2], src[i + 3]]));
        i += 2 + len;
    }
    false
}

/// The standard luminance / chrominance DC and AC tables (T.81 Annex K.3) as one DHT segment.
#[rustfmt::skip]
const DEFAULT_DHT: [u8; 420] = [
    0xFF, 0xC4, 0x01, 0xA2,
    0x00, 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
    0x01, 0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
    0x10, 0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D,
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
    0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5,
    0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2,
    0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA,
    0x11, 0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77,
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33, 0x52, 0xF0,
    0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26,
    0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
    0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
    0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA,
    0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA,
];

/// Copies `src` into `out` with [`DEFAULT_DHT`] right after the SOI marker.
fn insert_default_dht(src: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    if src.len() < 4 || src[0] != 0xFF || src[1] != 0xD8 {
        return Err(FrameError::NoJpegStart);
    }
    out.clear();
    out.extend_from_slice(&src[..2]);
    out.extend_from_slice(&DEFAULT_DHT);
    out.extend_from_slice(&src[2..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_reference_colours() {
        // white, black, pure red, pure blue pairs (BT.601 limited range)
        let src = [
            235, 128, 235, 128, 16, 128, 16, 128, 81, 90, 81, 240, 41, 240, 41, 110,
        ];
        let mut dst = [0u8; 8 * 3];
        yuyv_to_rgb(&src, 8, 1, 16, &mut dst).unwrap();
        assert_eq!(&dst[0..6], &[255, 255, 255, 255, 255, 255]);
        assert_eq!(&dst[6..12], &[0, 0, 0, 0, 0, 0]);
        assert_eq!(&dst[12..15], &[255, 0, 0]);
        assert_eq!(&dst[18..21], &[0, 0, 255]);
    }

    #[test]
    fn yuyv_respects_stride_and_refuses_short_frames() {
        // 2x2 frame, stride 6: the 2 padding bytes per line must be skipped
        let src = [235, 128, 235, 128, 9, 9, 16, 128, 16, 128];
        let mut dst = [7u8; 12];
        yuyv_to_rgb(&src, 2, 2, 6, &mut dst).unwrap();
        assert_eq!(dst, [255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0]);
        assert!(yuyv_to_rgb(&src[..8], 2, 2, 6, &mut dst).is_err());
        assert!(yuyv_to_rgb(&src, 3, 1, 6, &mut [0; 9]).is_err());
    }

    #[test]
    fn i420_planes_and_reference_colours() {
        // 4x2: left half white (Y 235, neutral chroma), right half pure red (Y 81, U 90, V 240)
        let src = [
            235, 235, 81, 81, //
            235, 235, 81, 81, // Y
            128, 90, // U
            128, 240, // V
        ];
        let mut dst = [0u8; 4 * 2 * 3];
        i420_to_rgb(&src, 4, 2, &mut dst).unwrap();
        for row in dst.chunks_exact(12) {
            assert_eq!(&row[..6], &[255, 255, 255, 255, 255, 255]);
            assert_eq!(&row[6..], &[255, 0, 0, 255, 0, 0]);
        }
        assert!(i420_to_rgb(&src[..11], 4, 2, &mut dst).is_err());
        assert!(i420_to_rgb(&src, 3, 2, &mut [0; 18]).is_err());
        assert!(i420_to_rgb(&src, 4, 2, &mut [0; 23]).is_err());
    }

    fn synthetic_jpeg() -> (image::RgbImage, Vec<u8>) {
        let img = image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&img)
            .unwrap();
        (img, jpeg)
    }

    fn close(a: &[u8], b: &[u8]) -> bool {
        let err: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).abs())
            .sum();
        err / (a.len() as f64) < 4.0
    }

    #[test]
    fn mjpeg_frame_decodes_into_the_reused_buffer() {
        let (img, jpeg) = synthetic_jpeg();
        let (mut scratch, mut dst) = (Vec::new(), Vec::with_capacity(64 * 48 * 3));
        let cap = dst.capacity();
        assert_eq!(
            mjpeg_to_rgb(&jpeg, &mut scratch, &mut dst).unwrap(),
            (64, 48)
        );
        assert_eq!(dst.capacity(), cap);
        assert!(close(&dst, img.as_raw()));
        assert!(mjpeg_to_rgb(&jpeg[..100], &mut scratch, &mut dst).is_err());
        assert!(mjpeg_to_rgb(b"not a jpeg", &mut scratch, &mut dst).is_err());
    }

    #[test]
    fn mjpeg_without_huffman_tables_gets_the_standard_ones() {
        // the encoder writes the standard tables; cut every DHT segment out, as UVC cameras do
        let (img, jpeg) = synthetic_jpeg();
        let mut stripped = jpeg[..2].to_vec();
        let mut i = 2;
        while jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
            let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
            if jpeg[i + 1] != 0xC4 {
                stripped.extend_from_slice(&jpeg[i..i + 2 + len]);
            }
            i += 2 + len;
        }
        stripped.extend_from_slice(&jpeg[i..]);
        assert!(!has_marker(&stripped, 0xC4));
        let (mut scratch, mut dst) = (Vec::new(), Vec::new());
        assert_eq!(
            mjpeg_to_rgb(&stripped, &mut scratch, &mut dst).unwrap(),
            (64, 48)
        );
        assert!(close(&dst, img.as_raw()));
    }
}
