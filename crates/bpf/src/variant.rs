//! Which build of the BPF objects this kernel loads. build.rs compiles every `bpf/*.bpf.c` twice
//! from the same source: the main build, for kernels with `bpf_loop()` (5.17 and later), and the
//! legacy build (`-DSHRIKE_LEGACY`, `bpf/lib/build.h`) for 5.8–5.16, whose loops are bounded
//! loops of global-function steps, whose current task comes from `bpf_get_current_task()` and
//! whose programs use no helper newer than 5.10. Each skeleton embeds both, gzip-compressed, as
//! an [`Object`]; a skeleton is opened under a [`Lease`] on it, which inflates the chosen
//! build's bytes (or shares the ones another lease holds), and the bytes are freed when the last
//! lease goes: the file object alone is ~3 MB inflated, and libbpf copies what it keeps
//! at open, so a family that drops its skeleton once attached gives that memory back. The choice
//! is made once per process, by asking the kernel whether it has `bpf_loop` (every other helper
//! the main build needs is older), or forced with `SHRIKE_BPF_BUILD=main|legacy` (the tests load
//! the legacy build on a new kernel that way).

use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use flate2::read::GzDecoder;

/// One of the two builds of the BPF objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// Kernels with `bpf_loop` (5.17+).
    Main,
    /// Kernels with the ring buffer but without `bpf_loop` (5.8–5.16).
    Legacy,
}

impl Build {
    /// The build's name, as `SHRIKE_BPF_BUILD` and `doctor` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Build::Main => "main",
            Build::Legacy => "legacy",
        }
    }

    /// What the build means for the user, for `doctor`.
    pub fn describe(self) -> &'static str {
        match self {
            Build::Main => "main build (bpf_loop, kernel 5.17 or later)",
            Build::Legacy => {
                "legacy build (no bpf_loop on this kernel: loops of global-function steps, see \
                 the README's Kernels section)"
            }
        }
    }
}

static CHOSEN: OnceLock<Build> = OnceLock::new();

/// The build this process loads: `SHRIKE_BPF_BUILD` if set, else the kernel's answer.
pub fn current() -> Build {
    *CHOSEN.get_or_init(|| match std::env::var("SHRIKE_BPF_BUILD").as_deref() {
        Ok("legacy") => Build::Legacy,
        Ok("main") => Build::Main,
        _ if kernel_has_bpf_loop() => Build::Main,
        _ => Build::Legacy,
    })
}

/// A skeleton's embedded objects, both builds gzip-compressed, and the inflated bytes of the
/// build this process loads while any [`Lease`] on them is out.
pub struct Object {
    main: &'static [u8],
    legacy: &'static [u8],
    inflated: Mutex<Option<Weak<[u8]>>>,
}

/// A hold on an [`Object`]'s inflated bytes: they live until the last lease on them is dropped.
/// A skeleton opened from them must be dropped before the lease it was opened under
/// ([`crate::capability::Leased`] keeps the two together in that order).
pub struct Lease {
    bytes: Arc<[u8]>,
    object: &'static Object,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut slot = self
            .object
            .inflated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // The last lease clears the slot: a `Weak` left there would keep the allocation.
        if Arc::strong_count(&self.bytes) == 1 {
            *slot = None;
        }
    }
}

impl Object {
    /// The object of a skeleton whose builds are `main` and `legacy` (gzip, as build.rs embeds
    /// them).
    pub const fn new(main: &'static [u8], legacy: &'static [u8]) -> Object {
        Object {
            main,
            legacy,
            inflated: Mutex::new(None),
        }
    }

    /// A lease on the inflated bytes of the build [`current`] names: the bytes another lease
    /// holds now, else freshly inflated ones.
    pub fn lease(&'static self) -> Lease {
        let mut slot = self.inflated.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = match slot.as_ref().and_then(Weak::upgrade) {
            Some(bytes) => bytes,
            None => {
                let bytes: Arc<[u8]> = Arc::from(self.inflate());
                *slot = Some(Arc::downgrade(&bytes));
                bytes
            }
        };
        Lease {
            bytes,
            object: self,
        }
    }

    /// The inflated bytes of the lease out now, for the skeleton's open; panics when no lease is
    /// out (a skeleton opened without one).
    ///
    /// # Safety
    /// The caller holds a [`Lease`] on this object and drops everything that borrows the
    /// returned bytes (the skeleton opened from them) before that lease: the `'static` is only
    /// as long as the leases last.
    pub unsafe fn leased_bytes(&self) -> &'static [u8] {
        let slot = self.inflated.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = slot
            .as_ref()
            .and_then(Weak::upgrade)
            .expect("a BPF skeleton opened without a lease on its object (variant::Object::lease)");
        // SAFETY: the caller's lease keeps the allocation alive for as long as the returned
        // slice is used (this function's contract); `bytes` is only this call's extra count.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) }
    }

    /// The chosen build's bytes, inflated.
    fn inflate(&self) -> Vec<u8> {
        let packed = match current() {
            Build::Main => self.main,
            Build::Legacy => self.legacy,
        };
        let mut bytes = Vec::with_capacity(packed.len() * 8);
        GzDecoder::new(packed)
            .read_to_end(&mut bytes)
            // build.rs wrote these bytes with flate2 and the gzip trailer's CRC checks them: a
            // failure here is a corrupt binary, which no caller could recover from.
            .expect("an embedded BPF object is not valid gzip: the shrike binary is corrupt");
        bytes
    }
}

/// Whether the kernel's verifier knows `bpf_loop`: libbpf loads a socket filter that calls it
/// (the helper is in the base set every program type has).
fn kernel_has_bpf_loop() -> bool {
    // SAFETY: a NULL opts pointer is documented as allowed; the call loads a trivial program and
    // closes it.
    let rc = unsafe {
        libbpf_sys::libbpf_probe_bpf_helper(
            libbpf_sys::BPF_PROG_TYPE_SOCKET_FILTER,
            libbpf_sys::BPF_FUNC_loop,
            std::ptr::null(),
        )
    };
    // An error (no privilege, no bpf()) is not a kernel without bpf_loop: the main build's load
    // then reports the real failure.
    rc != 0
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    /// What build.rs embeds comes back byte for byte; leases out at the same time share one
    /// buffer, and once the last is dropped the bytes are freed and the next lease inflates
    /// them again.
    #[test]
    fn leases_share_the_inflated_bytes_and_the_last_one_frees_them() {
        let original: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&original).unwrap();
        let packed: &'static [u8] = Box::leak(encoder.finish().unwrap().into_boxed_slice());
        assert!(packed.len() < original.len() / 10);
        // The same bytes for both builds, so the answer does not depend on this kernel.
        let object: &'static Object = Box::leak(Box::new(Object::new(packed, packed)));
        let first = object.lease();
        let second = object.lease();
        assert!(Arc::ptr_eq(&first.bytes, &second.bytes));
        assert_eq!(&first.bytes[..], &original[..]);
        // SAFETY: the slice is compared while `first` and `second` are held.
        assert_eq!(unsafe { object.leased_bytes() }, &original[..]);
        drop(first);
        assert!(
            object.inflated.lock().unwrap().is_some(),
            "one lease is still out"
        );
        drop(second);
        // No `Weak` is left either: it would keep the allocation.
        assert!(
            object.inflated.lock().unwrap().is_none(),
            "the last lease frees the bytes"
        );
        let again = object.lease();
        assert_eq!(&again.bytes[..], &original[..]);
    }

    #[test]
    #[should_panic(expected = "without a lease")]
    fn opening_without_a_lease_is_refused() {
        static OBJECT: Object = Object::new(&[], &[]);
        // SAFETY: it panics before returning anything.
        let _ = unsafe { OBJECT.leased_bytes() };
    }
}
