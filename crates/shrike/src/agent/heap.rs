//! Freed memory goes back to the system. The pipeline's working set swings with the event rate
//! (a reader starved of CPU hands over a ring buffer's worth at once, a blocked output queues
//! its bound, a reload builds a second policy), and glibc's allocator keeps what was freed in
//! its arenas for reuse: after a burst the agent's RSS stays near the burst's peak, and over a
//! long run it wanders with the bursts instead of following what is live. Every
//! [`TRIM_EVERY`] the running agent asks the allocator to return its free pages
//! (`malloc_trim`); each trim is logged at debug level with its time and what it freed
//! (`--log-level info,shrike::agent::heap=debug`).

use std::time::{Duration, Instant};

use tracing::{debug, Level};

/// How often free heap memory is returned.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// When the heap is next trimmed.
pub(super) struct HeapTrim {
    next: Instant,
}

impl HeapTrim {
    pub(super) fn new() -> Self {
        HeapTrim {
            next: Instant::now() + TRIM_EVERY,
        }
    }

    /// Trims the heap when it is due.
    pub(super) fn tick(&mut self) {
        let now = Instant::now();
        if now >= self.next {
            // What it freed is read from /proc only when someone logs it.
            let logged = tracing::enabled!(Level::DEBUG);
            let before = if logged { resident_kib() } else { 0 };
            let start = Instant::now();
            trim();
            let took = start.elapsed();
            if logged {
                debug!(
                    micros = took.as_micros() as u64,
                    freed_kib = before.saturating_sub(resident_kib()),
                    "heap trimmed"
                );
            }
            self.next = Instant::now() + TRIM_EVERY;
        }
    }
}

/// Returns the allocator's free memory to the system, where the allocator is glibc's.
fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it takes no pointers
    // and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This process's resident memory, in KiB.
fn resident_kib() -> u64 {
    crate::self_memory::resident_bytes() / 1024
}

#[cfg(all(test, target_env = "gnu"))]
mod tests {
    use super::*;

    /// Memory freed in the middle of the heap (where glibc cannot give it back by shrinking
    /// the top) stays resident until a trim returns it.
    #[test]
    fn a_trim_returns_freed_memory_the_allocator_kept() {
        // 64 MiB in 1 KiB blocks, touched; then all but every 1024th block freed, so the kept
        // ones pin the heap's extent and only a trim can release the pages between them.
        let mut blocks: Vec<Vec<u8>> = (0..65_536).map(|i| vec![i as u8; 1024]).collect();
        let mut kept = Vec::new();
        for (i, block) in blocks.drain(..).enumerate() {
            if i % 1024 == 0 {
                kept.push(block);
            }
        }
        let before = resident_kib();
        trim();
        let after = resident_kib();
        assert!(
            before.saturating_sub(after) > 32 * 1024,
            "a trim should return most of the 64 MiB freed: {before} KiB → {after} KiB"
        );
        assert_eq!(kept.len(), 64);
    }
}
