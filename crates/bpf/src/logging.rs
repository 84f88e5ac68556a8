//! libbpf's own messages, routed into the agent's log.
//!
//! libbpf prints to stderr by default; shrike sends its warnings (verifier logs among them) to
//! `tracing` at warn level and the rest at debug, and silences it while probing, where a
//! refused load is an answer, not a problem. While an object loads, its warnings are captured
//! instead ([`capturing`]), so the loader can tell which program the verifier refused and say
//! so once, at ERROR, with the capability it costs (see `capability`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use libbpf_rs::PrintLevel;

static QUIET: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();
/// Warnings held back while [`capturing`] runs; `None` when nothing captures.
static CAPTURED: Mutex<Option<Vec<String>>> = Mutex::new(None);

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
    if level == PrintLevel::Warn {
        if let Ok(mut captured) = CAPTURED.lock() {
            if let Some(lines) = captured.as_mut() {
                tracing::debug!(target: "libbpf", "{message}");
                lines.push(
                    message
                        .strip_prefix("libbpf: ")
                        .unwrap_or(message)
                        .to_string(),
                );
                return;
            }
        }
    }
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

/// Runs `f` (an object load) with libbpf's warnings captured rather than logged; returns its
/// result and the warnings, in order. Loads happen on one thread at a time, so one buffer serves.
pub fn capturing<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    install();
    if let Ok(mut captured) = CAPTURED.lock() {
        *captured = Some(Vec::new());
    }
    let out = f();
    let lines = CAPTURED
        .lock()
        .ok()
        .and_then(|mut captured| captured.take())
        .unwrap_or_default();
    (out, lines)
}

/// Logs warnings that [`capturing`] held back, as libbpf would have.
pub fn replay(lines: &[String]) {
    for line in lines {
        tracing::warn!(target: "libbpf", "{line}");
    }
}
