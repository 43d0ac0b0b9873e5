//! Still-image decoding: by content (never by extension), EXIF orientation applied, any colour
//! type converted to RGB8, and absurd dimensions refused before any pixel buffer is allocated.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::bounded_read;

/// Largest accepted image: 64 megapixels (an 8000x8000 photo) — far beyond any camera the kiosk
/// sees, small enough that decoding cannot exhaust a Pi's memory.
pub const MAX_PIXELS: u64 = 64_000_000;
/// Decoder allocation cap (bytes), a second guard for formats with large intermediate buffers.
const MAX_ALLOC: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    #[error("empty file")]
    Empty,
    #[error("not a supported image (JPEG, PNG, WebP, BMP, GIF, TIFF are read)")]
    UnknownFormat,
    #[error("image is {w}x{h}, more than the {MAX_PIXELS}-pixel limit")]
    TooLarge { w: u32, h: u32 },
    #[error("corrupt or truncated image: {0}")]
    Decode(String),
}

pub fn load(path: &Path) -> Result<RgbImage, ImageError> {
    decode(&bounded_read::read(path, bounded_read::IMAGE_LIMIT)?)
}

/// Decodes an encoded image held in memory.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(ImageError::Read)?;
    let Some(format) = reader.format() else {
        return Err(ImageError::UnknownFormat);
    };
    // The JPEG decoder pads a cut-off stream with grey instead of failing; a file without its
    // end-of-image marker near the end is truncated (a partial copy, an interrupted upload).
    if format == image::ImageFormat::Jpeg && !jpeg_has_eoi(bytes) {
        return Err(ImageError::Decode(
            "truncated JPEG (no end-of-image marker)".into(),
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(map_err)?;
    let (w, h) = decoder.dimensions();
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(ImageError::TooLarge { w, h });
    }
    if w == 0 || h == 0 {
        return Err(ImageError::Decode(format!("image has no pixels ({w}x{h})")));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(map_err)?;
    img.apply_orientation(orientation);
    Ok(match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// Whether an FF D9 marker sits in the last 4 KiB (some writers append padding or trailers).
fn jpeg_has_eoi(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

fn map_err(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(_) => ImageError::Decode(format!("exceeds decoder limits: {e}")),
        image::ImageError::Unsupported(_) => ImageError::UnknownFormat,
        image::ImageError::IoError(io) => ImageError::Decode(io.to_string()),
        other => ImageError::Decode(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, ImageFormat, Luma, Rgba};

    fn encode(img: DynamicImage, fmt: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, fmt).unwrap();
        out.into_inner()
    }

    #[test]
    fn grayscale_rgba_and_16_bit_become_rgb() {
        let g = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(3, 2, Luma([200u8])));
        let rgb = decode(&encode(g, ImageFormat::Png)).unwrap();
        assert_eq!((rgb.width(), rgb.height()), (3, 2));
        assert_eq!(rgb.get_pixel(0, 0).0, [200, 200, 200]);
        let a = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(2, 2, Rgba([10u8, 20, 30, 128])));
        assert_eq!(
            decode(&encode(a, ImageFormat::Png))
                .unwrap()
                .get_pixel(1, 1)
                .0,
            [10, 20, 30]
        );
        let g16 = DynamicImage::ImageLuma16(ImageBuffer::from_pixel(2, 2, Luma([65535u16])));
        assert_eq!(
            decode(&encode(g16, ImageFormat::Png))
                .unwrap()
                .get_pixel(0, 0)
                .0,
            [255, 255, 255]
        );
    }

    #[test]
    fn format_comes_from_content_not_name() {
        let g = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(5, 4, Luma([7u8])));
        for fmt in [
            ImageFormat::Png,
            ImageFormat::Bmp,
            ImageFormat::Jpeg,
            ImageFormat::WebP,
        ] {
            let img = decode(&encode(g.clone(), fmt)).unwrap_or_else(|e| panic!("{fmt:?}: {e}"));
            assert_eq!((img.width(), img.height()), (5, 4), "{fmt:?}");
        }
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        assert!(matches!(decode(b""), Err(ImageError::Empty)));
        assert!(matches!(
            decode(b"hello, this is text"),
            Err(ImageError::UnknownFormat)
        ));
        let g = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(64, 64, Luma([7u8])));
        let jpg = encode(g, ImageFormat::Jpeg);
        assert!(matches!(
            decode(&jpg[..jpg.len() / 2]),
            Err(ImageError::Decode(_))
        ));
    }

    /// A PNG header that claims 100000 x 100000 pixels is refused before decoding.
    #[test]
    fn huge_dimensions_are_refused_from_the_header() {
        let g = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(1, 1, Luma([7u8])));
        let mut png = encode(g, ImageFormat::Png);
        // IHDR width/height live at bytes 16..24; the CRC is then wrong, so also accept a
        // decode error — but never an allocation of 10^10 pixels.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        match decode(&png) {
            Err(ImageError::TooLarge { .. }) | Err(ImageError::Decode(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}
