//! The real outputs: GPIO lines and the I2C bus, opened from the board's config.
//!
//! Raspberry Pi boards use `rppal` (GPIO through /dev/gpiomem, I2C through /dev/i2c-N);
//! Jetson and any other Linux board use `linux-embedded-hal` (GPIO character device
//! /dev/gpiochipN + line offset, I2C through i2c-dev). Errors name the device and the group
//! the service user must be in, because that is what an installer can fix.

use std::io;

use embedded_hal::digital::{self, ErrorType, OutputPin};
use embedded_hal::i2c::{self, I2c, Operation};
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
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

fn gpio_hint(dev: &str) -> String {
    format!(
        "cannot open {dev}: add the service user to the gpio group \
         (sudo usermod -aG gpio $USER, then log in again), or run with --simulate"
    )
}

/// Opens output lines `pins` (None = not wired) with the given backend; all start low.
pub fn open_pins<const N: usize>(
    backend: Backend,
    chip: &str,
    pins: [Option<u32>; N],
) -> Result<[Option<HwPin>; N], String> {
    let mut out: [Option<HwPin>; N] = std::array::from_fn(|_| None);
    match backend {
        Backend::None => {}
        Backend::Rppal => {
            let gpio = rppal::gpio::Gpio::new().map_err(|e| match e {
                rppal::gpio::Error::PermissionDenied(p) => gpio_hint(&p),
                rppal::gpio::Error::UnknownModel => {
                    "this is not a Raspberry Pi rppal knows (gpio.backend = \"rppal\"); \
                     use gpio.backend = \"cdev\" with the board's gpiochip, or --simulate"
                        .to_string()
                }
                e => format!("cannot open the Raspberry Pi GPIO: {e} (or run with --simulate)"),
            })?;
            for (slot, pin) in out.iter_mut().zip(pins) {
                if let Some(n) = pin {
                    let n8 = u8::try_from(n).map_err(|_| format!("GPIO {n} is not a BCM pin"))?;
                    let p = gpio
                        .get(n8)
                        .map_err(|e| format!("cannot claim BCM GPIO {n}: {e}"))?;
                    *slot = Some(HwPin::Rppal(p.into_output_low()));
                }
            }
        }
        Backend::Cdev => {
            let mut c = Chip::new(chip).map_err(|e| {
                if is_permission(&e.to_string()) {
                    gpio_hint(chip)
                } else {
                    format!("cannot open GPIO chip {chip}: {e} (list chips with `gpiodetect`, or run with --simulate)")
                }
            })?;
            for (slot, pin) in out.iter_mut().zip(pins) {
                if let Some(n) = pin {
                    let h = c
                        .get_line(n)
                        .and_then(|l| l.request(LineRequestFlags::OUTPUT, 0, "maskgate"))
                        .map_err(|e| {
                            format!("cannot claim line {n} of {chip}: {e} (is it in use? see `gpioinfo`)")
                        })?;
                    let p = CdevPin::new(h).map_err(|e| format!("line {n} of {chip}: {e}"))?;
                    *slot = Some(HwPin::Cdev(p));
                }
            }
        }
    }
    Ok(out)
}

fn is_permission(msg: &str) -> bool {
    msg.contains("ermission denied") || msg.contains("EACCES")
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

/// Opens I2C bus `bus` (/dev/i2c-`bus`).
pub fn open_i2c(backend: Backend, bus: u8) -> Result<HwI2c, String> {
    let path = format!("/dev/i2c-{bus}");
    let hint = |e: &dyn std::fmt::Display| {
        let msg = e.to_string();
        if is_permission(&msg) {
            format!("cannot open {path}: add the service user to the i2c group")
        } else if msg.contains("No such file") || msg.contains("not found") {
            format!(
                "{path} does not exist: enable I2C (Raspberry Pi: sudo raspi-config nonint do_i2c 0; \
                 Jetson: the 40-pin header bus is /dev/i2c-7 on Orin, /dev/i2c-1 on Nano)"
            )
        } else {
            format!("cannot open {path}: {msg}")
        }
    };
    match backend {
        Backend::Rppal => rppal::i2c::I2c::with_bus(bus)
            .map(HwI2c::Rppal)
            .map_err(|e| hint(&e)),
        _ => I2cdev::new(&path).map(HwI2c::Dev).map_err(|e| {
            let io: io::Error = e.into();
            hint(&io)
        }),
    }
}
