//! Shutdown as a value: the agent's run loop takes one, main wires it to SIGINT/SIGTERM, and
//! tests trigger it directly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A shared stop flag, and a record that a stop was ever asked for (which [`Shutdown::take`]
/// does not clear).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    requested: Arc<AtomicBool>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag that SIGINT and SIGTERM set.
    pub fn on_signals() -> std::io::Result<Self> {
        let shutdown = Shutdown::new();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, shutdown.flag.clone())?;
            signal_hook::flag::register(signal, shutdown.requested.clone())?;
        }
        Ok(shutdown)
    }

    pub fn trigger(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.requested.store(true, Ordering::Relaxed);
    }

    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Whether a stop was ever asked for, even after [`Shutdown::take`] cleared the flag.
    pub fn was_requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    /// Clears the flag and says whether it was set: after the first request has been seen, a
    /// second one (a second Ctrl-C) can be told apart, e.g. to stop waiting for a slow output.
    pub fn take(&self) -> bool {
        self.flag.swap(false, Ordering::Relaxed)
    }
}
