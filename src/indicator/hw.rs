//! The real outputs: GPIO lines and the I2C bus, opened from the board's config.
//!
//! Raspberry Pi boards use `rppal` (GPIO through /dev/gpiomem, I2C through /dev/i2c-N);
//! Jetson and any other Linux board use `linux-embedded-hal` (GPIO character device
//! /dev/gpiochipN + line offset, I2C through i2c-dev). Errors name the device and the group
//! the service user must be in, because that is what an installer can fix.

use std::io;

use embedded_hal::digital::{self, ErrorType, OutputPin};
use embedded_hal::i2c::{self, I2c, Operation};
use linux_embedded_hal::gpio_cdev::{self, Chip, LineRequestFlags};
use linux_embedded_hal::{CdevPin, I2cdev};

/// Which library reaches the pins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Raspberry Pi (rppal): pins are BCM GPIO numbers, the bus is /dev/i2c-N.
    Rppal,
    /// Any Linux board (gpio-cdev + i2c-dev): pins are line offsets on `chip`.
    Cdev,
    /// No GPIO at all (display only, or a bench setup).
    None,
}

/// A GPIO output from either library.
pub enum HwPin {
    Rppal(rppal::gpio::OutputPin),
    Cdev(CdevPin),
}

#[derive(Debug)]
pub struct HwPinError(pub String);

impl digital::Error for HwPinError {
    fn kind(&self) -> digital::ErrorKind {
        digital::ErrorKind::Other
    }
}

impl ErrorType for HwPin {
    type Error = HwPinError;
}

impl OutputPin for HwPin {
    fn set_low(&mut self) -> Result<(), HwPinError> {
        match self {
            HwPin::Rppal(p) => {
                p.set_low();
                Ok(())
            }
            HwPin::Cdev(p) => p.set_low().map_err(|e| HwPinError(e.to_string())),
        }
    }
    fn set_high(&mut self) -> Result<(), HwPinError> {
        match self {
            HwPin::Rppal(p) => {
                p.set_high();
                Ok(())
            }
            HwPin::Cdev(p) => p.set_high().map_err(|e| HwPinError(e.to_string())),
        }
    }
}

/// Why an output could not be opened. Each message says what an installer can do: the group
/// to join, the setting or tool to check, or `--simulate`.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// Judged from `io::ErrorKind::PermissionDenied` (or rppal's own variant), never from text.
    #[error(
        "cannot open {device}: add the service user to the {group} group \
         (sudo usermod -aG {group} $USER, then log in again), or run with --simulate"
    )]
    PermissionDenied { device: String, group: &'static str },
    #[error(
        "this is not a Raspberry Pi rppal knows (gpio.backend = \"rppal\"); \
         use gpio.backend = \"cdev\" with the board's gpiochip, or --simulate"
    )]
    NotARaspberryPi,
    #[error("cannot open the Raspberry Pi GPIO: {0} (or run with --simulate)")]
    RppalGpio(#[source] rppal::gpio::Error),
    #[error("GPIO {0} is not a BCM pin")]
    NotBcmPin(u32),
    #[error("cannot claim BCM GPIO {pin}: {source}")]
    ClaimBcm {
        pin: u32,
        #[source]
        source: rppal::gpio::Error,
    },
    #[error("cannot open GPIO chip {chip}: {source} (list chips with `gpiodetect`, or run with --simulate)")]
    OpenChip {
        chip: String,
        #[source]
        source: gpio_cdev::Error,
    },
    #[error("cannot claim line {line} of {chip}: {source} (is it in use? see `gpioinfo`)")]
    ClaimLine {
        line: u32,
        chip: String,
        #[source]
        source: gpio_cdev::Error,
    },
    #[error(
        "{path} does not exist: enable I2C (Raspberry Pi: sudo raspi-config nonint do_i2c 0; \
         Jetson: the 40-pin header bus is /dev/i2c-7 on Orin, /dev/i2c-1 on Nano)"
    )]
    NoI2cBus { path: String },
    #[error("cannot open {path}: {source}")]
    OpenI2c {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl HwError {
    /// True when joining a group would fix it (the door then runs without the device).
    pub fn is_permission(&self) -> bool {
        matches!(self, HwError::PermissionDenied { .. })
    }
}

/// The `io::ErrorKind` somewhere in `e`'s source chain (gpio-cdev wraps the `open(2)` error).
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

fn denied(device: &str, group: &'static str) -> HwError {
    HwError::PermissionDenied {
        device: device.to_string(),
        group,
    }
}

/// Opens output lines `pins` (None = not wired) with the given backend; all start low.
pub fn open_pins<const N: usize>(
    backend: Backend,
    chip: &str,
    pins: [Option<u32>; N],
) -> Result<[Option<HwPin>; N], HwError> {
    let mut out: [Option<HwPin>; N] = std::array::from_fn(|_| None);
    match backend {
        Backend::None => {}
        Backend::Rppal => {
            let gpio = rppal::gpio::Gpio::new().map_err(|e| match e {
                rppal::gpio::Error::PermissionDenied(p) => denied(&p, "gpio"),
                rppal::gpio::Error::UnknownModel => HwError::NotARaspberryPi,
                rppal::gpio::Error::Io(ref io) if io.kind() == io::ErrorKind::PermissionDenied => {
                    denied("/dev/gpiomem", "gpio")
                }
                e => HwError::RppalGpio(e),
            })?;
            for (slot, pin) in out.iter_mut().zip(pins) {
                if let Some(n) = pin {
                    let n8 = u8::try_from(n).map_err(|_| HwError::NotBcmPin(n))?;
                    let p = gpio
                        .get(n8)
                        .map_err(|source| HwError::ClaimBcm { pin: n, source })?;
                    *slot = Some(HwPin::Rppal(p.into_output_low()));
                }
            }
        }
        Backend::Cdev => {
            let mut c = Chip::new(chip).map_err(|source| {
                if io_kind(&source) == Some(io::ErrorKind::PermissionDenied) {
                    denied(chip, "gpio")
                } else {
                    HwError::OpenChip {
                        chip: chip.to_string(),
                        source,
                    }
                }
            })?;
            for (slot, pin) in out.iter_mut().zip(pins) {
                if let Some(n) = pin {
                    let claim = |source| HwError::ClaimLine {
                        line: n,
                        chip: chip.to_string(),
                        source,
                    };
                    let h = c
                        .get_line(n)
                        .and_then(|l| l.request(LineRequestFlags::OUTPUT, 0, "maskgate"))
                        .map_err(claim)?;
                    *slot = Some(HwPin::Cdev(CdevPin::new(h).map_err(claim)?));
                }
            }
        }
    }
    Ok(out)
}

/// An I2C bus from either library.
pub enum HwI2c {
    Rppal(rppal::i2c::I2c),
    Dev(I2cdev),
}

#[derive(Debug)]
pub struct HwI2cError(pub i2c::ErrorKind, pub String);

impl i2c::Error for HwI2cError {
    fn kind(&self) -> i2c::ErrorKind {
        self.0
    }
}

impl i2c::ErrorType for HwI2c {
    type Error = HwI2cError;
}

impl I2c for HwI2c {
    fn transaction(&mut self, address: u8, ops: &mut [Operation<'_>]) -> Result<(), HwI2cError> {
        match self {
            HwI2c::Rppal(b) => b
                .transaction(address, ops)
                .map_err(|e| HwI2cError(i2c::Error::kind(&e), e.to_string())),
            HwI2c::Dev(b) => b
                .transaction(address, ops)
                .map_err(|e| HwI2cError(i2c::Error::kind(&e), e.to_string())),
        }
    }
}

/// Whether the adapter behind `/dev/i2c-N` does plain I2C transfers (`I2C_FUNC_I2C`), as
/// the SSD1306 needs: [control byte, data...] writes of any length. SMBus-only adapters
/// (i2c-stub, some SoC and USB bridges) answer such a write with an error every time.
pub fn i2c_plain_transfers(path: &str) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    const I2C_FUNCS: libc::c_ulong = 0x0705;
    const I2C_FUNC_I2C: libc::c_ulong = 0x0000_0001;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let mut funcs: libc::c_ulong = 0;
    // SAFETY: I2C_FUNCS writes one unsigned long through the pointer, which outlives the call
    let r = unsafe {
        libc::ioctl(
            f.as_raw_fd(),
            I2C_FUNCS as _,
            &mut funcs as *mut libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(funcs & I2C_FUNC_I2C != 0)
}

/// Opens I2C bus `bus` (/dev/i2c-`bus`).
pub fn open_i2c(backend: Backend, bus: u8) -> Result<HwI2c, HwError> {
    let path = format!("/dev/i2c-{bus}");
    let fail = |source: io::Error| match source.kind() {
        io::ErrorKind::PermissionDenied => denied(&path, "i2c"),
        io::ErrorKind::NotFound => HwError::NoI2cBus { path: path.clone() },
        _ => HwError::OpenI2c {
            path: path.clone(),
            source,
        },
    };
    match backend {
        Backend::Rppal => rppal::i2c::I2c::with_bus(bus)
            .map(HwI2c::Rppal)
            .map_err(|e| match e {
                rppal::i2c::Error::Io(io) => fail(io),
                e => fail(io::Error::other(e)),
            }),
        _ => I2cdev::new(&path)
            .map(HwI2c::Dev)
            .map_err(|e| fail(e.into())),
    }
}
