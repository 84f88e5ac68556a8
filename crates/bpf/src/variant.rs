//! Which build of the BPF objects this kernel loads. build.rs compiles every `bpf/*.bpf.c` twice
//! from the same source: the main build, for kernels with `bpf_loop()` (5.17 and later), and the
//! legacy build (`-DSHRIKE_LEGACY`, `bpf/lib/build.h`) for 5.8–5.16, whose loops are bounded
//! loops of global-function steps, whose current task comes from `bpf_get_current_task()` and
//! whose programs use no helper newer than 5.10. Each skeleton embeds both, gzip-compressed, and
//! asks [`object`] for the bytes to open, inflated at its first open. The choice is made once
//! per process, by asking the kernel whether it has `bpf_loop` (every other helper the main
//! build needs is older), or forced with `SHRIKE_BPF_BUILD=main|legacy` (the tests load the
//! legacy build on a new kernel that way).

use std::io::Read;
use std::sync::OnceLock;

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

/// The object bytes a skeleton opens: `main` or `legacy` (gzip, as build.rs embeds them), as
/// [`current`] says, inflated into the skeleton's `cache` at its first open.
pub fn object(
    cache: &'static OnceLock<Vec<u8>>,
    main: &'static [u8],
    legacy: &'static [u8],
) -> &'static [u8] {
    cache.get_or_init(|| {
        let packed = match current() {
            Build::Main => main,
            Build::Legacy => legacy,
        };
        let mut bytes = Vec::with_capacity(packed.len() * 8);
        GzDecoder::new(packed)
            .read_to_end(&mut bytes)
            // build.rs wrote these bytes with flate2 and the gzip trailer's CRC checks them: a
            // failure here is a corrupt binary, which no caller could recover from.
            .expect("an embedded BPF object is not valid gzip: the shrike binary is corrupt");
        bytes
    })
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

    /// What build.rs embeds comes back byte for byte, once: a second open gets the same buffer.
    #[test]
    fn an_embedded_object_is_inflated_once_to_its_original_bytes() {
        static CACHE: OnceLock<Vec<u8>> = OnceLock::new();
        let original: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&original).unwrap();
        let packed: &'static [u8] = Box::leak(encoder.finish().unwrap().into_boxed_slice());
        assert!(packed.len() < original.len() / 10);
        // The same bytes for both builds, so the answer does not depend on this kernel.
        let first = object(&CACHE, packed, packed);
        assert_eq!(first, &original[..]);
        let second = object(&CACHE, packed, packed);
        assert!(std::ptr::eq(first, second));
    }
}
