//! Config layering: a board profile and a site file (the input split at its first NUL),
//! merged over the defaults and validated. Any text must give a config or an error naming
//! its layer, never a panic; a config that comes out passes its own validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maskgate::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (board, site) = text.split_once('\0').unwrap_or((text, ""));
    if let Ok(c) = Config::layered([("board", board), ("site", site)]) {
        assert!(c.validate().is_ok());
        // what --print-config writes reads back as the same config
        let again = toml::to_string(&c).expect("serializes");
        assert_eq!(Config::layered([("printed", again.as_str())]).ok(), Some(c));
    }
});
