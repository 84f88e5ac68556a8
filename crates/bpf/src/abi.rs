//! The kernel↔user contract in Rust: the types and constants of `bpf/abi/shrike_abi.h`, taken
//! from the libbpf-cargo skeleton (generated from the object's BTF), never hand-copied.
//!
//! Every BPF object embeds a `struct shrike_abi_anchor`, which makes the skeleton generate all
//! contract types; they are re-exported here with `Plain` so the decoder can copy them out of
//! ring-buffer bytes with a length check.

pub use crate::skel::process::types::{
    shrike_counter, shrike_exec, shrike_exec_flags, shrike_exit, shrike_fork, shrike_header,
    shrike_limits, shrike_proc, shrike_proc_flags, shrike_record_kind,
};

// SAFETY: these are #[repr(C)] structs of plain integers and integer arrays generated from the
// BPF object's BTF; every bit pattern is a valid value and they contain no pointers.
unsafe impl plain::Plain for shrike_header {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_exec {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_fork {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_exit {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_proc {}

/// A limit from the contract, as a `usize`.
pub const fn limit(l: shrike_limits) -> usize {
    l.0 as usize
}

/// Bytes of argv one exec record can carry.
pub const ARGS_MAX: usize = limit(shrike_limits::SHRIKE_ARGS_MAX);
/// Bytes of environment one exec record can carry.
pub const ENV_MAX: usize = limit(shrike_limits::SHRIKE_ENV_MAX);
/// Longest path a record carries.
pub const PATH_MAX: usize = limit(shrike_limits::SHRIKE_PATH_MAX);
