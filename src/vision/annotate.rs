//! Draws results onto an image: green box = mask, red box = no mask (grey = too small to judge),
//! a filled label with the probability above each box. Uses embedded-graphics, the same drawing
//! stack as the kiosk's OLED, through a `DrawTarget` over an `RgbImage`.

use embedded_graphics::mono_font::{ascii, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use image::RgbImage;

use super::Face;

pub const GREEN: Rgb888 = Rgb888::new(0, 200, 0);
pub const RED: Rgb888 = Rgb888::new(230, 0, 0);
pub const GREY: Rgb888 = Rgb888::new(160, 160, 160);

/// `DrawTarget` over an `RgbImage`; pixels outside the image are ignored.
pub struct Canvas<'a>(pub &'a mut RgbImage);

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = Rgb888;
    type Error = core::convert::Infallible;
    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        let (w, h) = (self.0.width() as i32, self.0.height() as i32);
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && p.x < w && p.y < h {
                self.0
                    .put_pixel(p.x as u32, p.y as u32, image::Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }
}

/// Colour of a face's box.
pub fn face_color(f: &Face) -> Rgb888 {
    if f.mask_prob.is_nan() {
        GREY
    } else if f.mask {
        GREEN
    } else {
        RED
    }
}

/// Label text, e.g. "Mask 97%" / "No mask 88%" (the probability of the shown verdict).
pub fn label(f: &Face) -> heapless::String<24> {
    use core::fmt::Write;
    let mut s = heapless::String::new();
    let _ = if f.mask_prob.is_nan() {
        write!(s, "Face {:.0}%", f.det.score * 100.0)
    } else if f.mask {
        write!(s, "Mask {:.0}%", f.mask_prob * 100.0)
    } else {
        write!(s, "No mask {:.0}%", (1.0 - f.mask_prob) * 100.0)
    };
    s
}

pub fn draw_faces(img: &mut RgbImage, faces: &[Face]) {
    let big = img.width().max(img.height()) >= 900;
    let font = if big {
        &ascii::FONT_10X20
    } else {
        &ascii::FONT_6X10
    };
    let stroke = (img.width().max(img.height()) / 300).clamp(1, 6);
    let mut canvas = Canvas(img);
    for f in faces {
        let color = face_color(f);
        let b = f.det.bbox;
        let (x, y) = (b.x1.round() as i32, b.y1.round() as i32);
        let size = Size::new(
            b.width().round().max(1.0) as u32,
            b.height().round().max(1.0) as u32,
        );
        let _ = Rectangle::new(Point::new(x, y), size)
            .into_styled(PrimitiveStyle::with_stroke(color, stroke))
            .draw(&mut canvas);
        for lm in f.det.landmarks {
            let _ = Circle::with_center(
                Point::new(lm[0].round() as i32, lm[1].round() as i32),
                stroke + 2,
            )
            .into_styled(PrimitiveStyle::with_fill(color))
            .draw(&mut canvas);
        }
        let text = label(f);
        let cw = font.character_size;
        let tw = cw.width * text.len() as u32 + 4;
        let th = cw.height + 2;
        let ty = if y >= th as i32 {
            y - th as i32
        } else {
            y + size.height as i32
        };
        let _ = Rectangle::new(Point::new(x, ty), Size::new(tw, th))
            .into_styled(PrimitiveStyle::with_fill(color))
            .draw(&mut canvas);
        let _ = Text::with_baseline(
            &text,
            Point::new(x + 2, ty + 1),
            MonoTextStyle::new(font, Rgb888::WHITE),
            Baseline::Top,
        )
        .draw(&mut canvas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::{BBox, Detection};

    fn face(mask_prob: f32) -> Face {
        Face {
            det: Detection {
                bbox: BBox {
                    x1: 20.0,
                    y1: 30.0,
                    x2: 60.0,
                    y2: 80.0,
                },
                score: 0.9,
                landmarks: [[40.0, 50.0]; 5],
            },
            mask_prob,
            mask: mask_prob >= 0.5,
        }
    }

    #[test]
    fn labels_and_colours() {
        assert_eq!(label(&face(0.97)).as_str(), "Mask 97%");
        assert_eq!(label(&face(0.12)).as_str(), "No mask 88%");
        assert_eq!(label(&face(f32::NAN)).as_str(), "Face 90%");
        assert_eq!(face_color(&face(0.97)), GREEN);
        assert_eq!(face_color(&face(0.2)), RED);
    }

    #[test]
    fn box_edges_are_drawn_in_the_verdict_colour() {
        let mut img = RgbImage::new(100, 100);
        draw_faces(&mut img, &[face(0.1)]);
        assert_eq!(img.get_pixel(20, 55).0, [230, 0, 0]); // left edge
        assert_eq!(img.get_pixel(59, 79).0, [230, 0, 0]); // bottom-right corner
        assert_eq!(img.get_pixel(30, 70).0, [0, 0, 0]); // inside untouched
        let mut img = RgbImage::new(100, 100);
        draw_faces(&mut img, &[face(0.9)]);
        assert_eq!(img.get_pixel(20, 55).0, [0, 200, 0]);
    }
}
