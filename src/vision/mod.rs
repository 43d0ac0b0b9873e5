//! Everything between decoded pixels and a list of classified faces.
//!
//! Pure pieces (no I/O, no clock, exact unit tests): [`priors`], [`decode`], [`preprocess`],
//! [`crop`] (int8 maths: [`crate::quant`]). Model-backed pieces: [`detector`], [`classifier`], [`pipeline`].
//! Around them: [`image_io`] (decode files) and [`annotate`] (draw results).

pub mod annotate;
pub mod classifier;
pub mod crop;
pub mod decode;
pub mod detector;
pub mod image_io;
pub mod pipeline;
pub mod preprocess;
pub mod priors;

/// Upper bound on faces reported per frame; more than this in front of a door camera is a crowd,
/// and the highest-scoring ones are kept.
pub const MAX_FACES: usize = 64;

/// A borrowed, tightly packed RGB8 image: what every source hands to the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct ImageView<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
}

impl<'a> ImageView<'a> {
    /// Wraps packed RGB8 pixels; `None` when the buffer does not hold `width * height * 3` bytes.
    pub fn new(data: &'a [u8], width: u32, height: u32) -> Option<Self> {
        (width > 0 && height > 0 && data.len() == width as usize * height as usize * 3).then_some(
            Self {
                data,
                width,
                height,
            },
        )
    }

    pub fn from_rgb(img: &'a image::RgbImage) -> Self {
        Self {
            data: img.as_raw(),
            width: img.width(),
            height: img.height(),
        }
    }

    #[inline]
    pub(crate) fn px(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width as usize + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

/// Axis-aligned box in pixels, corners inclusive-exclusive like the JSON output.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }
    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }
    pub fn iou(&self, o: &BBox) -> f32 {
        let iw = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let ih = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + o.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// One face found by the detector, in original-image pixels.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    /// Right eye, left eye, nose, right mouth corner, left mouth corner (RetinaFace order).
    pub landmarks: [[f32; 2]; 5],
}

/// A detection with the classifier's verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Face {
    pub det: Detection,
    /// Probability of "mask" from the classifier.
    pub mask_prob: f32,
    /// `mask_prob >= mask_threshold`.
    pub mask: bool,
}
