//! How full the kernel's ring buffer is, read from its two position pages.
//!
//! A BPF ring buffer map exposes, through mmap, a consumer page (the reader's position) and a
//! producer page (the kernel's position) before its data pages; what the kernel has written
//! and the reader not yet consumed is their difference. Mapping the two pages read-only costs
//! nothing on the hot path: a scrape reads two words.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use libbpf_rs::{MapCore, MapHandle};

/// The ring buffer's positions, mapped read-only.
pub struct RingFill {
    base: *mut libc::c_void,
    page: usize,
    size: u64,
}

// SAFETY: the mapping is read-only shared memory the kernel updates; reading it through atomic
// loads from any thread is what every ring buffer consumer does.
unsafe impl Send for RingFill {}
// SAFETY: as above: only atomic loads, no interior mutation from Rust.
unsafe impl Sync for RingFill {}

impl RingFill {
    /// Maps the consumer and producer pages of `events` (a `BPF_MAP_TYPE_RINGBUF` map).
    pub fn new(events: &MapHandle) -> std::io::Result<RingFill> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: a fresh read-only shared mapping of two pages of the map's fd at offset 0
        // (the consumer page, then the producer page), which the kernel allows read-only for
        // ring buffers; the result is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ,
                libc::MAP_SHARED,
                events.as_fd().as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(RingFill {
            base,
            page,
            size: u64::from(events.max_entries()),
        })
    }

    /// The ring's data size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes written by the kernel and not yet consumed by the reader.
    pub fn used(&self) -> u64 {
        // SAFETY: both pages are mapped for the life of self; the positions are the first
        // (8-byte aligned) word of each page, and AtomicU64 has u64's layout.
        let (consumer, producer) = unsafe {
            (
                (*(self.base as *const AtomicU64)).load(Ordering::Acquire),
                (*(self.base.cast::<u8>().add(self.page) as *const AtomicU64))
                    .load(Ordering::Acquire),
            )
        };
        producer.saturating_sub(consumer).min(self.size)
    }
}

impl Drop for RingFill {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in new(), once.
        unsafe { libc::munmap(self.base, 2 * self.page) };
    }
}
