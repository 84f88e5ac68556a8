//! Shutdown as a value: the agent's run loop takes one, main wires it to SIGINT/SIGTERM, and
//! tests trigger it directly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A shared stop flag.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag that SIGINT and SIGTERM set.
    pub fn on_signals() -> std::io::Result<Self> {
        let shutdown = Shutdown::new();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, shutdown.0.clone())?;
        }
        Ok(shutdown)
    }

    pub fn trigger(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Clears the flag and says whether it was set: after the first request has been seen, a
    /// second one (a second Ctrl-C) can be told apart, e.g. to stop waiting for a slow output.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}
