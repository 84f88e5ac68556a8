//! Freed memory goes back to the system. The pipeline's working set swings with the event rate
//! (a reader starved of CPU hands over a ring buffer's worth at once, a blocked output queues
//! its bound, a reload builds a second policy), and glibc's allocator keeps what was freed in
//! its arenas for reuse: after a burst the agent's RSS stays near the burst's peak, and over a
//! long run it wanders with the bursts instead of following what is live. Every
//! [`TRIM_EVERY`] the running agent asks the allocator to return its free pages
//! (`malloc_trim`); each trim is logged at debug level with its time, what it freed and how
//! much of the heap is in use (`--log-level info,shrike::agent::heap=debug`): the soak benchmark
//! tells growth of live data from growth of what the allocator keeps by that figure.
//!
//! Large blocks are kept out of the arenas altogether: glibc maps a block of its own for any
//! allocation from a threshold up, and by default raises that threshold to the largest such
//! block freed so far (up to 32 MiB). After the pipeline's first burst its multi-MiB buffers
//! (a batch, a blocked output's queue) were then carved from the arenas, where they fragment
//! them and keep pages resident between bursts, and the agent's RSS crept up over an hour
//! with nothing live growing. [`fix_mmap_threshold`] pins the threshold at
//! [`MMAP_THRESHOLD`], so each large block is mapped when allocated and unmapped when freed.

use std::time::{Duration, Instant};

use tracing::{debug, Level};

/// How often free heap memory is returned.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// From this size up, an allocation gets a mapping of its own, returned to the system when freed.
pub const MMAP_THRESHOLD: usize = 128 * 1024;

/// Pins glibc's mmap threshold at [`MMAP_THRESHOLD`] (setting it turns off glibc's raising it
/// after each large free), where the allocator is glibc's. Called once, as the agent starts.
pub(super) fn fix_mmap_threshold() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes the allocator's tuning; it takes no pointers and is safe to
    // call from any thread at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

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
                    in_use_kib = in_use_bytes() / 1024,
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

/// The bytes the allocator has handed out and not got back (small blocks and mmapped large
/// ones), where the allocator is glibc's; 0 elsewhere.
fn in_use_bytes() -> u64 {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics; it takes no arguments.
        let info = unsafe { libc::mallinfo2() };
        (info.uordblks + info.hblkhd) as u64
    }
    #[cfg(not(target_env = "gnu"))]
    0
}

/// This process's resident memory, in KiB.
fn resident_kib() -> u64 {
    crate::self_memory::resident_bytes() / 1024
}

#[cfg(all(test, target_env = "gnu"))]
mod tests {
    use super::*;

    /// The two tests measure the whole process's heap: not at the same time.
    static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Memory freed in the middle of the heap (where glibc cannot give it back by shrinking
    /// the top) stays resident until a trim returns it.
    #[test]
    fn a_trim_returns_freed_memory_the_allocator_kept() {
        let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
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

    /// With the threshold pinned, a large block allocated after a larger one was freed still
    /// gets its own mapping (glibc's default would have raised the threshold past it and
    /// carved it from an arena). Checked in a process of its own: free space other tests left
    /// in the arenas would serve the block before any mapping is considered.
    #[test]
    fn large_blocks_stay_mapped_after_a_larger_one_is_freed() {
        const NAME: &str =
            "agent::heap::tests::large_blocks_stay_mapped_after_a_larger_one_is_freed";
        if std::env::var_os("SHRIKE_HEAP_TEST_CHILD").is_none() {
            let exe = std::env::current_exe().unwrap();
            let out = std::process::Command::new(exe)
                .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
                .env("SHRIKE_HEAP_TEST_CHILD", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "the check in a fresh process failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        fix_mmap_threshold();
        // 16 MiB: mapped, and glibc's default raises the threshold to it when it is freed
        // (blocks above 32 MiB do not raise it).
        drop(std::hint::black_box(vec![1u8; 16 << 20]));
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let mapped = || unsafe { libc::mallinfo2() }.hblkhd;
        let before = mapped();
        let block = std::hint::black_box(vec![1u8; 4 << 20]);
        let with = mapped();
        assert!(
            with >= before + (4 << 20),
            "a 4 MiB block should be mapped on its own: mapped bytes {before} → {with}"
        );
        drop(block);
    }

    /// The in-use figure follows what is allocated, not what is resident: 64 MiB more while
    /// held, back when freed (within 8 MiB, for what other tests allocate meanwhile).
    #[test]
    fn in_use_counts_live_allocations() {
        let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
        const HELD: u64 = 64 << 20;
        const SLACK: u64 = 8 << 20;
        let base = in_use_bytes();
        let held: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 1 << 20]).collect();
        let with = in_use_bytes();
        assert!(with + SLACK >= base + HELD, "{base} → {with}");
        drop(held);
        let after = in_use_bytes();
        assert!(after + HELD <= with + SLACK, "{with} → {after}");
    }
}
