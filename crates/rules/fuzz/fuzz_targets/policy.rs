//! Fuzzes the whole pipeline: arbitrary bytes as a policy file (after the default pack's shared
//! lists and macros) must compile or fail with diagnostics, never panic; a policy that compiles
//! must evaluate sample events without panicking, and its kernel plan must admit every event a
//! rule matches.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run policy` (from crates/rules; cargo-fuzz needs nightly
//! flags, which RUSTC_BOOTSTRAP unlocks on the stable toolchain).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shrike_event::Event;
use shrike_rules::Policy;

const EVENTS: &[&str] = &[
    r#"{"time":"2026-01-01T00:00:00Z","kind":"file_open","process":{"binary":"/usr/bin/cat","args":["cat","/etc/shadow"],"comm":"cat"},"parent":{"binary":"/usr/bin/bash"},"ancestors":[{"binary":"/usr/bin/bash"},{"binary":"/usr/sbin/nginx"}],"file":{"path":"/etc/shadow","access":["read"]}}"#,
    r#"{"time":"2026-01-01T00:00:00Z","kind":"process_exec","process":{"binary":"/dev/shm/.x","args":["x","-e"],"comm":"sshd","uid":33,"env":{"LD_PRELOAD":"/tmp/x.so"},"stdio_sockets":[{"fd":0,"family":"ipv4","protocol":"tcp","peer_addr":"10.0.0.1","peer_port":4444}]}}"#,
    r#"{"time":"2026-01-01T00:00:00Z","kind":"net_connect","process":{"binary":"/usr/bin/bash"},"network":{"daddr":"169.254.169.254","dport":3333,"family":"ipv4"}}"#,
    r#"{"time":"2026-01-01T00:00:00Z","kind":"file_rename","process":{"binary":"/usr/bin/mv"},"file":{"path":"/tmp/x","new_path":"/etc/cron.d/x"}}"#,
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lists = shrike_rules::pack::DEFAULT_PACK[0];
    let Ok(policy) = Policy::compile([lists, ("fuzz.yaml", &text)]) else {
        return;
    };
    let _ = shrike_rules::text::explain(&policy);
    for json in EVENTS {
        let Ok(event) = serde_json::from_str::<Event>(json) else {
            continue;
        };
        let matches = policy.evaluate(&event);
        if !matches.is_empty() {
            assert!(
                policy.kernel_plan().admits(&event),
                "plan drops a matching event"
            );
        }
    }
});
