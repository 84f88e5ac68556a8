//! libbpf's own messages, routed into the agent's log.
//!
//! libbpf prints to stderr by default; shrike sends its warnings (verifier logs among them) to
//! `tracing` at warn level and the rest at debug, and silences it while probing, where a
//! refused load is an answer, not a problem.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use libbpf_rs::PrintLevel;

static QUIET: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Routes libbpf's messages into `tracing`. Idempotent.
pub fn install() {
    INSTALL.call_once(|| {
        libbpf_rs::set_print(Some((PrintLevel::Debug, print)));
    });
}

fn print(level: PrintLevel, message: String) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    let message = message.trim_end();
    match level {
        PrintLevel::Warn => tracing::warn!(target: "libbpf", "{message}"),
        PrintLevel::Info => tracing::debug!(target: "libbpf", "{message}"),
        PrintLevel::Debug => tracing::trace!(target: "libbpf", "{message}"),
    }
}

/// Runs `f` with libbpf's messages silenced.
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    install();
    let was = QUIET.swap(true, Ordering::Relaxed);
    let out = f();
    QUIET.store(was, Ordering::Relaxed);
    out
}
