//! What the 128x64 OLED says, and the SSD1306 driver around it.
//!
//! [`render`] is pure (any `DrawTarget` of `BinaryColor`), so the screens are checked on the
//! decoded picture of the fake controller. [`Oled`] keeps a missing or NACKing display from
//! ever stopping the door: it logs once, runs without it, and retries now and then.

use prometheus_client::metrics::gauge::Gauge;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_6X10};
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use embedded_hal::i2c::I2c;
use ssd1306::mode::BufferedGraphicsMode;
use ssd1306::prelude::*;
use ssd1306::{I2CDisplayInterface, Ssd1306};

use crate::verdict::Verdict;

/// The big message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Idle,
    Mask,
    NoMask,
    CameraOffline,
    OutOfService,
    /// The wiring self-test's screen.
    SelfTest,
}

impl From<Verdict> for View {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Idle => View::Idle,
            Verdict::Mask => View::Mask,
            Verdict::NoMask => View::NoMask,
        }
    }
}

/// The status line: frame rate (tenths) and whether the camera delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Status {
    pub fps_x10: u16,
    pub camera_ok: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    pub view: View,
    pub status: Status,
}

impl Screen {
    /// Shown on every way out: nothing is judged any more.
    pub const OUT_OF_SERVICE: Screen = Screen {
        view: View::OutOfService,
        status: Status {
            fps_x10: 0,
            camera_ok: false,
        },
    };
}

fn lines(v: View) -> (&'static str, &'static str) {
    match v {
        View::Idle => ("WELCOME", "look at the camera"),
        View::Mask => ("THANK YOU", "mask ok - come in"),
        View::NoMask => ("PLEASE WEAR", "A MASK"),
        View::CameraOffline => ("CAMERA", "OFFLINE"),
        View::OutOfService => ("OUT OF", "SERVICE"),
        View::SelfTest => ("SELF TEST", "display ok"),
    }
}

/// Draws `s` on a 128x64 target. "No mask" is drawn inverted so it reads from across a hall.
pub fn render<D: DrawTarget<Color = BinaryColor>>(s: &Screen, d: &mut D) -> Result<(), D::Error> {
    let inverted = s.view == View::NoMask;
    let (fg, bg) = if inverted {
        (BinaryColor::Off, BinaryColor::On)
    } else {
        (BinaryColor::On, BinaryColor::Off)
    };
    d.clear(BinaryColor::Off)?;
    Rectangle::new(Point::zero(), Size::new(128, 52))
        .into_styled(PrimitiveStyle::with_fill(bg))
        .draw(d)?;
    let center = TextStyleBuilder::new()
        .alignment(Alignment::Center)
        .baseline(Baseline::Top)
        .build();
    let (big, small) = lines(s.view);
    let big_font = MonoTextStyle::new(&FONT_10X20, fg);
    Text::with_text_style(big, Point::new(64, 4), big_font, center).draw(d)?;
    // a two-line message uses the big font twice; a hint uses the small one
    let two_big = matches!(
        s.view,
        View::NoMask | View::CameraOffline | View::OutOfService
    );
    if two_big {
        Text::with_text_style(small, Point::new(64, 27), big_font, center).draw(d)?;
    } else {
        let small_font = MonoTextStyle::new(&FONT_6X10, fg);
        Text::with_text_style(small, Point::new(64, 32), small_font, center).draw(d)?;
    }
    Line::new(Point::new(0, 53), Point::new(127, 53))
        .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 1))
        .draw(d)?;
    let mut status: heapless::String<24> = heapless::String::new();
    let cam = if s.status.camera_ok {
        "cam ok"
    } else {
        "cam --"
    };
    let _ = if s.view == View::OutOfService {
        write!(status, "maskgate stopped")
    } else if s.view == View::SelfTest {
        write!(status, "wiring self-test")
    } else {
        write!(
            status,
            "{:>3}.{} fps  {cam}",
            s.status.fps_x10 / 10,
            s.status.fps_x10 % 10
        )
    };
    let x = if s.view == View::SelfTest { 4 } else { 1 };
    Text::with_baseline(
        &status,
        Point::new(x, 54),
        MonoTextStyle::new(&FONT_6X10, BinaryColor::On),
        Baseline::Top,
    )
    .draw(d)?;
    if s.view == View::SelfTest {
        // the panel's outermost pixels: a dead edge or a wrong size shows at once
        Rectangle::new(Point::zero(), Size::new(128, 64))
            .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 1))
            .draw(d)?;
    }
    Ok(())
}

type Driver<I> =
    Ssd1306<I2CInterface<I>, DisplaySize128x64, BufferedGraphicsMode<DisplaySize128x64>>;

/// Retry a failed display this often (a re-plugged OLED comes back by itself).
pub const RETRY: Duration = Duration::from_secs(10);

/// An SSD1306 on I2C that degrades instead of failing.
pub struct Oled<I: I2c> {
    dev: Driver<I>,
    ready: bool,
    failed_at: Option<Instant>,
    warned: bool,
    last: Option<Screen>,
    label: String,
    /// 1 while the panel acknowledges (the kiosk's `display_up` metric).
    up: Option<Gauge>,
}

impl<I: I2c> Oled<I> {
    /// `label` names the bus and address in log lines, e.g. "/dev/i2c-1 @ 0x3c".
    pub fn new(i2c: I, address: u8, rotate180: bool, label: String) -> Self {
        let rot = if rotate180 {
            DisplayRotation::Rotate180
        } else {
            DisplayRotation::Rotate0
        };
        let iface = I2CDisplayInterface::new_custom_address(i2c, address);
        Self {
            dev: Ssd1306::new(iface, DisplaySize128x64, rot).into_buffered_graphics_mode(),
            ready: false,
            failed_at: None,
            warned: false,
            last: None,
            label,
            up: None,
        }
    }

    /// Reports whether the panel acknowledges into `g` (set on every attempt).
    pub fn with_up_gauge(mut self, g: Gauge) -> Self {
        self.up = Some(g);
        self
    }

    /// Whether the last attempt reached the display.
    pub fn ok(&self) -> bool {
        self.ready
    }

    /// Shows `s` unless it is already shown; errors are logged once and retried after [`RETRY`].
    pub fn show(&mut self, s: &Screen) {
        if self.ready && self.last.as_ref() == Some(s) {
            return;
        }
        if let Some(t) = self.failed_at {
            if t.elapsed() < RETRY {
                return;
            }
        }
        match self.try_show(s) {
            Ok(()) => {
                if self.failed_at.take().is_some() {
                    tracing::info!(display = %self.label, "display back");
                }
                self.last = Some(*s);
                if let Some(g) = &self.up {
                    g.set(1);
                }
            }
            Err(e) => {
                self.ready = false;
                self.failed_at = Some(Instant::now());
                if let Some(g) = &self.up {
                    g.set(0);
                }
                if !self.warned {
                    self.warned = true;
                    tracing::warn!(display = %self.label, error = ?e,
                        "display not responding; running without it (retrying every {}s)", RETRY.as_secs());
                }
            }
        }
    }

    fn try_show(&mut self, s: &Screen) -> Result<(), display_interface::DisplayError> {
        if !self.ready {
            self.dev.init()?;
            self.ready = true;
        }
        render(s, &mut self.dev)?;
        self.dev.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::super::sim::{Bitmap, SimSsd1306};
    use super::*;

    fn screen(view: View) -> Screen {
        Screen {
            view,
            status: Status {
                fps_x10: 150,
                camera_ok: true,
            },
        }
    }

    #[test]
    fn the_driver_stream_decodes_to_what_render_draws() {
        let (i2c, probe) = SimSsd1306::new(0x3C);
        let mut oled = Oled::new(i2c, 0x3C, false, "fake".into());
        oled.show(&screen(View::Mask));
        assert!(oled.ok());
        // draw the same screen straight into a bitmap and compare with the decoded glass
        let mut want = Bitmap::default();
        render(&screen(View::Mask), &mut BitmapTarget(&mut want)).unwrap();
        assert_eq!(probe.picture(), want);
        assert!(want.lit() > 300);
    }

    #[test]
    fn rotated_display_is_upside_down_on_the_glass() {
        let (i2c, probe) = SimSsd1306::new(0x3C);
        let mut oled = Oled::new(i2c, 0x3C, true, "fake".into());
        oled.show(&screen(View::Idle));
        let mut want = Bitmap::default();
        render(&screen(View::Idle), &mut BitmapTarget(&mut want)).unwrap();
        let got = probe.picture();
        for y in 0..64 {
            for x in 0..128 {
                assert_eq!(got.0[63 - y][127 - x], want.0[y][x]);
            }
        }
    }

    #[test]
    fn nack_degrades_then_recovers_without_panicking() {
        let (i2c, probe) = SimSsd1306::new(0x3C);
        probe.set_nack(true);
        let mut oled = Oled::new(i2c, 0x3C, false, "fake".into());
        oled.show(&screen(View::Idle));
        assert!(!oled.ok());
        probe.set_nack(false);
        oled.show(&screen(View::Mask)); // inside the retry wait: skipped
        assert_eq!(probe.picture().lit(), 0);
        oled.failed_at = Some(Instant::now() - RETRY);
        oled.show(&screen(View::Mask));
        assert!(oled.ok());
        assert!(probe.picture().lit() > 0);
    }

    #[test]
    fn unchanged_screen_is_not_resent() {
        let (i2c, probe) = SimSsd1306::new(0x3C);
        let mut oled = Oled::new(i2c, 0x3C, false, "fake".into());
        oled.show(&screen(View::Idle));
        let n = probe.writes();
        oled.show(&screen(View::Idle));
        assert_eq!(probe.writes(), n);
    }

    /// Draws straight into a [`Bitmap`] (the reference the decoded glass is compared with).
    pub struct BitmapTarget<'a>(pub &'a mut Bitmap);

    impl OriginDimensions for BitmapTarget<'_> {
        fn size(&self) -> Size {
            Size::new(128, 64)
        }
    }

    impl DrawTarget for BitmapTarget<'_> {
        type Color = BinaryColor;
        type Error = core::convert::Infallible;
        fn draw_iter<It: IntoIterator<Item = Pixel<BinaryColor>>>(
            &mut self,
            pixels: It,
        ) -> Result<(), Self::Error> {
            for Pixel(p, c) in pixels {
                if (0..128).contains(&p.x) && (0..64).contains(&p.y) {
                    self.0 .0[p.y as usize][p.x as usize] = c.is_on();
                }
            }
            Ok(())
        }
    }
}
