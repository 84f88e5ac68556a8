//! The BPF ring buffer read with its data pages mapped once.
//!
//! The kernel lays a ring's data pages out twice in a row, so that a record that wraps around
//! the end reads as one piece, and libbpf's consumer maps that double view. The kernel inserts
//! every page when the map is mmapped, and a process's RSS counts each page once per mapping:
//! through libbpf a 16 MiB ring is 32 MiB of the agent's RSS before the first event. This
//! consumer maps the consumer page (read-write), the producer page and the data (read-only)
//! once, and copies the rare record that wraps into a scratch buffer.
//!
//! The protocol is the kernel's (`kernel/bpf/ringbuf.c`), read as libbpf reads it: the
//! producer position is loaded with acquire order, each record's 8-byte header holds its length
//! with a busy bit (not committed yet: stop there) and a discard bit (skip it), records are
//! 8-byte aligned, and the consumer position is stored with release order after each record,
//! which frees its space for the producers. Wake-ups come through epoll on the map's fd.
//!
//! [`RingFill`] maps the two position pages alone, read-only, for the metrics endpoint's view
//! of how full the ring is (a scrape reads two words, from any thread).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use libbpf_rs::{MapCore, MapHandle};

/// A record's header: its length (and the two flag bits), then the kernel's page offset.
const HEADER: usize = 8;
/// Set while the producer has reserved the record and not yet committed it.
const BUSY: u32 = 1 << 31;
/// Set on a record the producer discarded.
const DISCARD: u32 = 1 << 30;

/// One `mmap` of the map, unmapped when dropped.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, prot: libc::c_int, offset: usize) -> io::Result<Self> {
        // SAFETY: a fresh shared mapping of the map's fd at a kernel-chosen address; nothing in
        // this process aliases it, and the kernel checks length, offset and protection.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(ptr.cast())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned a null address"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no reference into the
        // mapping outlives the `RingBuffer` that owns it.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Where the positions and the data are: the protocol, apart from how the memory was mapped.
struct View {
    consumer_pos: *const AtomicU64,
    producer_pos: *const AtomicU64,
    data: *const u8,
    /// The data's size, a power of two.
    size: usize,
}

impl View {
    /// Hands each committed record, in order, to `each`; stops when the ring holds no more
    /// committed records (`false`), or after a record for which `each` returned `false`
    /// (`true`: more may wait). `scratch` holds a record that wraps around the end.
    ///
    /// # Safety
    /// The pointers must be valid for the life of the call: the positions 8-byte aligned, the
    /// data `size` bytes, page-aligned, laid out and written as the kernel's ring buffer is.
    unsafe fn consume(&self, scratch: &mut Vec<u8>, mut each: impl FnMut(&[u8]) -> bool) -> bool {
        let mask = self.size as u64 - 1;
        // SAFETY (this block): the caller's contract; positions and headers are read through
        // atomics because the kernel writes them concurrently.
        let (consumer, producer) = unsafe { (&*self.consumer_pos, &*self.producer_pos) };
        let mut cons = consumer.load(Ordering::Acquire);
        loop {
            let prod = producer.load(Ordering::Acquire);
            if cons >= prod {
                return false;
            }
            while cons < prod {
                let at = (cons & mask) as usize;
                // SAFETY: `at` is 8-aligned and below `size`; the header is 4-aligned.
                let len =
                    unsafe { (*self.data.add(at).cast::<AtomicU32>()).load(Ordering::Acquire) };
                if len & BUSY != 0 {
                    return false;
                }
                let body_len = (len & !(BUSY | DISCARD)) as usize;
                let more = if len & DISCARD != 0 {
                    true
                } else {
                    let start = (at + HEADER) & (self.size - 1);
                    if start + body_len <= self.size {
                        // SAFETY: within the data, committed (busy bit clear) and ours until
                        // the consumer position passes it.
                        each(unsafe { std::slice::from_raw_parts(self.data.add(start), body_len) })
                    } else {
                        let first = self.size - start;
                        scratch.clear();
                        // SAFETY: the record's two pieces, at the end and at the start of the
                        // data, committed and ours as above.
                        unsafe {
                            scratch.extend_from_slice(std::slice::from_raw_parts(
                                self.data.add(start),
                                first,
                            ));
                            scratch.extend_from_slice(std::slice::from_raw_parts(
                                self.data,
                                body_len - first,
                            ));
                        }
                        each(scratch)
                    }
                };
                cons += ((body_len + HEADER + 7) & !7) as u64;
                consumer.store(cons, Ordering::Release);
                if !more {
                    return true;
                }
            }
        }
    }
}

/// A ring-buffer map, mapped for reading; see the module documentation.
pub struct RingBuffer {
    /// The positions and the data, in the two mappings below (kept for their lifetime).
    view: View,
    _consumer: Mapping,
    _producer: Mapping,
    epoll: OwnedFd,
    scratch: Vec<u8>,
}

impl RingBuffer {
    /// Maps the ring-buffer map `fd` whose data is `size` bytes (its `max_entries`: a power of
    /// two, a multiple of the page size).
    pub fn new(fd: BorrowedFd<'_>, size: u32) -> io::Result<RingBuffer> {
        let size = size as usize;
        if !size.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a ring buffer of {size} bytes: its size must be a power of two"),
            ));
        }
        let page = page_size();
        let consumer = Mapping::new(fd, page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = Mapping::new(fd, page + size, libc::PROT_READ, page)?;
        // SAFETY: epoll_create1 has no memory arguments.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor epoll_create1 just returned, owned by nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(epfd) };
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: both descriptors are open; `event` is valid for the call.
        if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let view = View {
            consumer_pos: consumer.ptr.as_ptr().cast(),
            producer_pos: producer.ptr.as_ptr().cast(),
            // SAFETY: the producer mapping is a page, then the data.
            data: unsafe { producer.ptr.as_ptr().add(page) },
            size,
        };
        Ok(RingBuffer {
            view,
            _consumer: consumer,
            _producer: producer,
            epoll,
            scratch: Vec::new(),
        })
    }

    /// Waits until the kernel signals new data or `timeout` passes; `true` when signalled. An
    /// interrupted wait (a signal, a debugger) counts as a timeout.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `event` is valid for one entry; the epoll descriptor is open.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(err)
            };
        }
        Ok(n > 0)
    }

    /// Hands each committed record, in order, to `each`, until the ring is empty (`false`) or
    /// `each` returns `false` for a record (`true`: more may wait). Each record's space is
    /// given back to the kernel once `each` has returned.
    pub fn consume(&mut self, each: impl FnMut(&[u8]) -> bool) -> bool {
        // SAFETY: the view points into the kernel's consumer page, producer page and data,
        // mapped while `self` is.
        unsafe { self.view.consume(&mut self.scratch, each) }
    }
}

/// How full a ring buffer is, from its two position pages mapped read-only.
pub struct RingFill {
    positions: Mapping,
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
    pub fn new(events: &MapHandle) -> io::Result<RingFill> {
        let page = page_size();
        Ok(RingFill {
            positions: Mapping::new(events.as_fd(), 2 * page, libc::PROT_READ, 0)?,
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
        let base = self.positions.ptr.as_ptr();
        // SAFETY: both pages are mapped for the life of self; each position is the first
        // (8-byte aligned) word of its page, and AtomicU64 has u64's layout.
        let (consumer, producer) = unsafe {
            (
                (*base.cast::<AtomicU64>()).load(Ordering::Acquire),
                (*base.add(self.page).cast::<AtomicU64>()).load(Ordering::Acquire),
            )
        };
        producer.saturating_sub(consumer).min(self.size)
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory arguments.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring in ordinary memory, written as the kernel writes one.
    struct FakeRing {
        consumer: Box<AtomicU64>,
        producer: Box<AtomicU64>,
        data: Vec<u64>,
        size: usize,
    }

    impl FakeRing {
        fn new(size: usize) -> Self {
            FakeRing {
                consumer: Box::new(AtomicU64::new(0)),
                producer: Box::new(AtomicU64::new(0)),
                data: vec![0; size / 8],
                size,
            }
        }

        fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: a Vec<u64> viewed as its bytes.
            unsafe { std::slice::from_raw_parts_mut(self.data.as_mut_ptr().cast(), self.size) }
        }

        /// Writes a record at the producer position (wrapping as the kernel's double view
        /// would show it), with `flags` in its header, and advances the producer.
        fn produce(&mut self, body: &[u8], flags: u32) {
            let size = self.size;
            let at = (self.producer.load(Ordering::Relaxed) as usize) & (size - 1);
            let len = (body.len() as u32) | flags;
            let bytes = self.bytes();
            bytes[at..at + 4].copy_from_slice(&len.to_ne_bytes());
            for (i, b) in body.iter().enumerate() {
                bytes[(at + HEADER + i) & (size - 1)] = *b;
            }
            let total = (body.len() + HEADER + 7) & !7;
            self.producer.fetch_add(total as u64, Ordering::Release);
        }

        fn view(&mut self) -> View {
            View {
                consumer_pos: &*self.consumer,
                producer_pos: &*self.producer,
                data: self.data.as_ptr().cast(),
                size: self.size,
            }
        }

        fn read(&mut self, stop_after: usize) -> (Vec<Vec<u8>>, bool) {
            let mut got = Vec::new();
            let mut scratch = Vec::new();
            let view = self.view();
            // SAFETY: the view points into this fake ring, alive for the call.
            let more = unsafe {
                view.consume(&mut scratch, |r| {
                    got.push(r.to_vec());
                    got.len() < stop_after
                })
            };
            (got, more)
        }
    }

    /// Records come back whole and in order, including ones that wrap around the end of the
    /// data, many times round a small ring; the consumer position follows.
    #[test]
    fn records_wrap_around_whole_and_in_order() {
        let mut ring = FakeRing::new(256);
        let mut want = Vec::new();
        for round in 0..200u32 {
            let body: Vec<u8> = (0..(round % 61))
                .map(|i| (i as u8) ^ (round as u8))
                .collect();
            ring.produce(&body, 0);
            want.push(body);
            if round % 3 == 2 {
                let (got, more) = ring.read(usize::MAX);
                assert!(!more);
                assert_eq!(got, want, "round {round}");
                want.clear();
                assert_eq!(
                    ring.consumer.load(Ordering::Relaxed),
                    ring.producer.load(Ordering::Relaxed)
                );
            }
        }
    }

    /// An uncommitted record stops the read there; a discarded one is skipped but its space
    /// is given back; `each` returning false stops after that record.
    #[test]
    fn busy_stops_discarded_skips_and_the_callback_can_stop() {
        let mut ring = FakeRing::new(4096);
        ring.produce(b"one", 0);
        ring.produce(b"gone", DISCARD);
        ring.produce(b"two", 0);
        ring.produce(b"three", 0);
        let (got, more) = ring.read(2);
        assert!(more);
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
        let (got, more) = ring.read(usize::MAX);
        assert!(!more);
        assert_eq!(got, vec![b"three".to_vec()]);
        ring.produce(b"busy", BUSY);
        ring.produce(b"after", 0);
        let before = ring.consumer.load(Ordering::Relaxed);
        let (got, _) = ring.read(usize::MAX);
        assert!(got.is_empty(), "nothing past an uncommitted record");
        assert_eq!(ring.consumer.load(Ordering::Relaxed), before);
    }

    /// A real ring-buffer map maps, waits without data and reads nothing; a size that is not a
    /// power of two is refused.
    #[test]
    fn maps_a_real_ring_buffer() {
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let size = 64 * 1024;
        let map = match libbpf_rs::MapHandle::create(
            libbpf_rs::MapType::RingBuf,
            None::<&str>,
            0,
            0,
            size,
            &libbpf_rs::libbpf_sys::bpf_map_create_opts {
                sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
                ..Default::default()
            },
        ) {
            Ok(map) => map,
            Err(err) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: cannot create a ring buffer map: {err}");
                return;
            }
            Err(err) => panic!("creating a ring buffer map: {err}"),
        };
        let mut ring = RingBuffer::new(map.as_fd(), size).unwrap();
        assert!(!ring.wait(Duration::from_millis(10)).unwrap());
        assert!(!ring.consume(|_| true));
        // The data is mapped once: the producer page and `size` bytes, resident (the kernel
        // inserts the pages at mmap), not the double view libbpf maps.
        let start = format!("{:x}-", ring.view.producer_pos as usize);
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let block: Vec<&str> = smaps
            .lines()
            .skip_while(|l| !l.starts_with(&start))
            .take(8)
            .collect();
        let kib = |field: &str| {
            block
                .iter()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<usize>().ok())
                .unwrap_or_else(|| panic!("{field} of the ring's mapping: {block:?}"))
        };
        let once = (page_size() + size as usize) / 1024;
        assert_eq!(kib("Size:"), once, "{block:?}");
        assert_eq!(kib("Rss:"), once, "{block:?}");
        let fill = RingFill::new(&map).unwrap();
        assert_eq!((fill.size(), fill.used()), (u64::from(size), 0));
        assert!(RingBuffer::new(map.as_fd(), size - 4096).is_err());
    }
}
