//! Simulated hardware: what `maskgate run --simulate` drives instead of pins and a bus, and what
//! the tests check against. An SSD1306 that decodes its I2C byte stream back into a picture.
//!
//! [`SimSsd1306`] is an I2C device that understands the SSD1306 command / data stream the way
//! the controller does (control bytes, addressing modes, column / page windows, segment remap,
//! COM scan direction, display on / off, invert) and keeps the 128x64 picture a person would
//! see, so tests assert on pixels and save PNGs instead of trusting the driver.

use std::sync::{Arc, Mutex};

use embedded_hal::digital::{self, ErrorType as PinErrorType, OutputPin};
use embedded_hal::i2c::{self, ErrorKind, I2c, NoAcknowledgeSource, Operation};

use super::display::Oled;
use super::{Patterns, Signals};

pub const OLED_W: usize = 128;
pub const OLED_H: usize = 64;

/// A GPIO output that remembers its level; `fail` makes every write return an error.
#[derive(Debug, Default)]
pub struct SimPin {
    level: bool,
    pub fail: bool,
}

impl SimPin {
    pub fn is_high(&self) -> bool {
        self.level
    }
}

#[derive(Debug)]
pub struct SimPinError;

impl digital::Error for SimPinError {
    fn kind(&self) -> digital::ErrorKind {
        digital::ErrorKind::Other
    }
}

impl PinErrorType for SimPin {
    type Error = SimPinError;
}

impl OutputPin for SimPin {
    fn set_low(&mut self) -> Result<(), SimPinError> {
        if self.fail {
            return Err(SimPinError);
        }
        self.level = false;
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), SimPinError> {
        if self.fail {
            return Err(SimPinError);
        }
        self.level = true;
        Ok(())
    }
}

/// A door's signals on fake pins (green, red, buzzer; active high).
pub fn sim_signals(patterns: Patterns) -> Signals<SimPin> {
    Signals::new(
        Some(SimPin::default()),
        Some(SimPin::default()),
        Some(SimPin::default()),
        false,
        patterns,
    )
}

/// An OLED driver on a [`SimSsd1306`] at 0x3C, and the probe to look at its glass.
pub fn sim_oled() -> (Oled<SimSsd1306>, PanelProbe) {
    let (i2c, probe) = SimSsd1306::new(0x3C);
    (Oled::new(i2c, 0x3C, false, "fake SSD1306".into()), probe)
}

/// 128x64 one-bit picture, row-major, `true` = lit.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap(pub Box<[[bool; OLED_W]; OLED_H]>);

impl Default for Bitmap {
    fn default() -> Self {
        Self(Box::new([[false; OLED_W]; OLED_H]))
    }
}

impl std::fmt::Debug for Bitmap {
    /// ASCII art, so a failing assertion shows the screen.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for row in self.0.iter() {
            let line: String = row.iter().map(|&p| if p { '#' } else { '.' }).collect();
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl Bitmap {
    pub fn lit(&self) -> usize {
        self.0.iter().flatten().filter(|&&p| p).count()
    }

    /// Grayscale image, 4x upscaled so a PNG is readable: lit = white, dark = black.
    pub fn to_image(&self, scale: u32) -> image::GrayImage {
        image::GrayImage::from_fn(OLED_W as u32 * scale, OLED_H as u32 * scale, |x, y| {
            let lit = self.0[(y / scale) as usize][(x / scale) as usize];
            image::Luma([if lit { 255 } else { 0 }])
        })
    }

    /// Reads a PNG written by [`Bitmap::to_image`] back (for golden comparisons).
    pub fn from_image(img: &image::GrayImage) -> Option<Self> {
        let scale = img.width() / OLED_W as u32;
        if scale == 0
            || img.width() != OLED_W as u32 * scale
            || img.height() != OLED_H as u32 * scale
        {
            return None;
        }
        let mut b = Bitmap::default();
        for (y, row) in b.0.iter_mut().enumerate() {
            for (x, p) in row.iter_mut().enumerate() {
                *p = img.get_pixel(x as u32 * scale, y as u32 * scale)[0] > 127;
            }
        }
        Some(b)
    }
}

/// Controller state, as the SSD1306 datasheet describes it.
#[derive(Clone)]
struct Panel {
    gddram: [[u8; OLED_W]; OLED_H / 8],
    /// Horizontal (0), vertical (1) or page (2) addressing.
    mode: u8,
    col: (u8, u8),
    page: (u8, u8),
    cur_col: u8,
    cur_page: u8,
    seg_remap: bool,
    com_reverse: bool,
    on: bool,
    invert: bool,
    /// A command waiting for its argument bytes.
    pending: Option<(u8, usize)>,
    args: [u8; 8],
    nargs: usize,
}

impl Default for Panel {
    fn default() -> Self {
        Self {
            gddram: [[0; OLED_W]; OLED_H / 8],
            mode: 2, // reset default: page addressing
            col: (0, 127),
            page: (0, 7),
            cur_col: 0,
            cur_page: 0,
            seg_remap: false,
            com_reverse: false,
            on: false,
            invert: false,
            pending: None,
            args: [0; 8],
            nargs: 0,
        }
    }
}

/// How many argument bytes follow a command byte.
fn arg_count(cmd: u8) -> usize {
    match cmd {
        0x20 | 0x81 | 0x8D | 0xA8 | 0xAD | 0xD3 | 0xD5 | 0xD9 | 0xDA | 0xDB => 1,
        0x21 | 0x22 | 0xA3 => 2,
        0x29 | 0x2A => 5,
        0x26 | 0x27 => 6,
        _ => 0,
    }
}

impl Panel {
    fn command(&mut self, b: u8) {
        if let Some((cmd, need)) = self.pending {
            self.args[self.nargs] = b;
            self.nargs += 1;
            if self.nargs == need {
                self.pending = None;
                self.apply(cmd);
            }
            return;
        }
        let need = arg_count(b);
        if need > 0 {
            self.pending = Some((b, need));
            self.nargs = 0;
        } else {
            self.apply(b);
        }
    }

    fn apply(&mut self, cmd: u8) {
        let a = self.args;
        match cmd {
            0x20 => self.mode = a[0] & 3,
            0x21 => {
                self.col = (a[0] & 0x7F, a[1] & 0x7F);
                self.cur_col = self.col.0;
            }
            0x22 => {
                self.page = (a[0] & 7, a[1] & 7);
                self.cur_page = self.page.0;
            }
            0x00..=0x0F => self.cur_col = (self.cur_col & 0xF0) | cmd,
            0x10..=0x1F => self.cur_col = (self.cur_col & 0x0F) | ((cmd & 0x0F) << 4),
            0xB0..=0xB7 => self.cur_page = cmd & 7,
            0xA0 | 0xA1 => self.seg_remap = cmd == 0xA1,
            0xC0 => self.com_reverse = false,
            0xC8 => self.com_reverse = true,
            0xA6 | 0xA7 => self.invert = cmd == 0xA7,
            0xAE | 0xAF => self.on = cmd == 0xAF,
            _ => {} // timing, charge pump, contrast, scroll: no effect on the picture here
        }
    }

    fn data(&mut self, b: u8) {
        let (c, p) = (self.cur_col as usize, self.cur_page as usize);
        if c < OLED_W && p < OLED_H / 8 {
            self.gddram[p][c] = b;
        }
        match self.mode {
            0 => {
                if self.cur_col >= self.col.1 {
                    self.cur_col = self.col.0;
                    self.cur_page = if self.cur_page >= self.page.1 {
                        self.page.0
                    } else {
                        self.cur_page + 1
                    };
                } else {
                    self.cur_col += 1;
                }
            }
            1 => {
                if self.cur_page >= self.page.1 {
                    self.cur_page = self.page.0;
                    self.cur_col = if self.cur_col >= self.col.1 {
                        self.col.0
                    } else {
                        self.cur_col + 1
                    };
                } else {
                    self.cur_page += 1;
                }
            }
            _ => self.cur_col = (self.cur_col + 1) & 0x7F,
        }
    }

    /// The picture on the glass: GDDRAM mapped through remap / scan direction.
    fn picture(&self) -> Bitmap {
        let mut b = Bitmap::default();
        if !self.on {
            return b;
        }
        for (y, row) in b.0.iter_mut().enumerate() {
            // the usual module is mounted so that remap + reversed COM scan is upright
            let r = if self.com_reverse { y } else { OLED_H - 1 - y };
            for (x, px) in row.iter_mut().enumerate() {
                let c = if self.seg_remap { x } else { OLED_W - 1 - x };
                let bit = (self.gddram[r / 8][c] >> (r % 8)) & 1 == 1;
                *px = bit != self.invert;
            }
        }
        b
    }
}

/// Fault switches shared with the test that owns the probe.
#[derive(Default)]
struct Shared {
    panel: Panel,
    /// Every write is NACKed (display unplugged / broken wire).
    nack: bool,
    writes: usize,
}

/// An SSD1306 on a fake I2C bus at `address`; clone a [`PanelProbe`] to look at the glass.
pub struct SimSsd1306 {
    address: u8,
    shared: Arc<Mutex<Shared>>,
}

/// The test's view of a [`SimSsd1306`]: current picture and fault injection.
#[derive(Clone)]
pub struct PanelProbe(Arc<Mutex<Shared>>);

impl SimSsd1306 {
    pub fn new(address: u8) -> (Self, PanelProbe) {
        let shared = Arc::new(Mutex::new(Shared::default()));
        (
            Self {
                address,
                shared: shared.clone(),
            },
            PanelProbe(shared),
        )
    }
}

impl PanelProbe {
    pub fn picture(&self) -> Bitmap {
        self.0.lock().unwrap().panel.picture()
    }
    pub fn set_nack(&self, nack: bool) {
        self.0.lock().unwrap().nack = nack;
    }
    /// I2C write transactions accepted so far.
    pub fn writes(&self) -> usize {
        self.0.lock().unwrap().writes
    }
}

#[derive(Debug)]
pub struct SimI2cError(ErrorKind);

impl i2c::Error for SimI2cError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

impl i2c::ErrorType for SimSsd1306 {
    type Error = SimI2cError;
}

impl I2c for SimSsd1306 {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), SimI2cError> {
        let mut s = self.shared.lock().unwrap();
        if s.nack || address != self.address {
            return Err(SimI2cError(ErrorKind::NoAcknowledge(
                NoAcknowledgeSource::Address,
            )));
        }
        for op in operations {
            let Operation::Write(bytes) = op else {
                continue; // the SSD1306 on I2C is write-only
            };
            s.writes += 1;
            let mut i = 0;
            // control byte: bit 7 = Co (one byte follows, then another control byte),
            // bit 6 = D/C# (data vs command)
            while i < bytes.len() {
                let ctrl = bytes[i];
                i += 1;
                let is_data = ctrl & 0x40 != 0;
                let continuation = ctrl & 0x80 != 0;
                let end = if continuation {
                    (i + 1).min(bytes.len())
                } else {
                    bytes.len()
                };
                for &b in &bytes[i..end] {
                    if is_data {
                        s.panel.data(b);
                    } else {
                        s.panel.command(b);
                    }
                }
                i = end;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_horizontal_window_write() {
        let (mut dev, probe) = SimSsd1306::new(0x3C);
        // display on, remap + reversed COM (upright), horizontal mode, window cols 10..11 pages 1..1
        dev.write(
            0x3C,
            &[0x00, 0xAF, 0xA1, 0xC8, 0x20, 0x00, 0x21, 10, 11, 0x22, 1, 1],
        )
        .unwrap();
        dev.write(0x3C, &[0x40, 0b0000_0001, 0b1000_0000]).unwrap();
        let pic = probe.picture();
        assert_eq!(pic.lit(), 2);
        assert!(pic.0[8][10]); // page 1 bit 0 = row 8
        assert!(pic.0[15][11]); // page 1 bit 7 = row 15
    }

    #[test]
    fn remap_invert_and_off_change_what_is_seen() {
        let (mut dev, probe) = SimSsd1306::new(0x3C);
        dev.write(
            0x3C,
            &[0x00, 0xAF, 0xA0, 0xC0, 0x20, 0x00, 0x21, 0, 127, 0x22, 0, 7],
        )
        .unwrap();
        dev.write(0x3C, &[0x40, 0x01]).unwrap(); // column 0, row 0 of GDDRAM
        let pic = probe.picture();
        assert!(pic.0[63][127]); // not remapped: shows at the opposite corner
        dev.write(0x3C, &[0x80, 0xA7]).unwrap(); // Co=1 single command: invert
        assert_eq!(probe.picture().lit(), 128 * 64 - 1);
        dev.write(0x3C, &[0x00, 0xAE]).unwrap();
        assert_eq!(probe.picture().lit(), 0);
    }

    #[test]
    fn nack_and_wrong_address_fail_like_a_bus_would() {
        let (mut dev, probe) = SimSsd1306::new(0x3C);
        assert!(dev.write(0x3D, &[0x00, 0xAF]).is_err());
        probe.set_nack(true);
        let e = dev.write(0x3C, &[0x00, 0xAF]).unwrap_err();
        assert!(matches!(i2c::Error::kind(&e), ErrorKind::NoAcknowledge(_)));
        assert_eq!(probe.writes(), 0);
    }

    #[test]
    fn bitmap_png_round_trip() {
        let mut b = Bitmap::default();
        b.0[3][7] = true;
        b.0[63][127] = true;
        assert_eq!(Bitmap::from_image(&b.to_image(4)), Some(b));
    }
}
