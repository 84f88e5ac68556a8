//! Fuzzes the condition lexer and parser alone: arbitrary text never panics.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run condition` (from crates/rules).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = shrike_rules::parser::parse(&text);
});
