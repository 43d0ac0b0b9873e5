//! What the door announces. A vocabulary type of its own, so the decision (`kiosk`), the
//! outputs (`signal`) and the HTTP status (`serve`) share it without importing each other.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Idle,
    Mask,
    NoMask,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Idle => "idle",
            Verdict::Mask => "mask",
            Verdict::NoMask => "no_mask",
        }
    }
}
