//! Errors shared by several library seams. Each module keeps its own error type for what only it
//! can fail at (`config::ConfigError`, `models::ModelError`, `indicator::hw::HwError`, ...).

/// A setting out of its range: `key` names it as the config file spells it, the message says
/// what is allowed (shown to the installer as it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidSetting {
    pub key: &'static str,
    pub message: String,
}

impl InvalidSetting {
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}
