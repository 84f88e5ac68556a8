//! Fuzzes the `--net-config` reader: any text is a configuration or an error that says what is
//! wrong, never a panic.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run netconfig` (from crates/shrike); seeds in
//! corpus/netconfig.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(err) = shrike::netconfig::parse(text) {
            assert!(!format!("{err:#}").is_empty());
        }
    }
});
