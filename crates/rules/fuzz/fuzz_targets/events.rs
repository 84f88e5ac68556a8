//! Fuzzes `shrike policy test`'s event reader: arbitrary bytes as an events file (JSON lines,
//! as `shrike run` writes them) replayed through the default pack. Every input is a report —
//! bad lines (not UTF-8, not JSON, not an event) are named by number and counted, never a panic
//! or an abort — and the report carries no character a terminal acts on.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run events` (from crates/rules); seeds in corpus/events.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shrike_rules::Policy;

fuzz_target!(|data: &[u8]| {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    let policy = POLICY.get_or_init(|| Policy::default_pack().expect("the default pack compiles"));
    let report = shrike_rules::text::test_policy(policy, data).expect("reading memory cannot fail");
    let lines = data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert!(report.events + report.invalid <= lines);
    let text = shrike_event::text::escape_controls_keep_lines(&report.text);
    assert_eq!(text, report.text, "the report carries raw control characters");
});
