//! The kernel↔user contract in Rust: the types and constants of `bpf/abi/shrike_abi.h`, taken
//! from the libbpf-cargo skeleton (generated from the object's BTF), never hand-copied.
//!
//! Every BPF object embeds a `struct shrike_abi_anchor`, which makes the skeleton generate all
//! contract types; they are re-exported here with `Plain` so the decoder can copy them out of
//! ring-buffer bytes with a length check.

pub use crate::skel::process::types::{
    shrike_action, shrike_bpf_object, shrike_counter, shrike_enforce_limits, shrike_enforce_state,
    shrike_exec, shrike_exec_denied, shrike_exec_denied_flags, shrike_exec_flags, shrike_exec_rule,
    shrike_exit, shrike_fork, shrike_header, shrike_limits, shrike_name_key, shrike_path_key,
    shrike_proc, shrike_proc_flags, shrike_record_kind, shrike_rule_flags, shrike_rule_refs,
    shrike_rule_value_key, shrike_rule_value_kind, shrike_stdio_sock, shrike_tamper,
    shrike_tamper_kind,
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
// SAFETY: as above.
unsafe impl plain::Plain for shrike_exec_denied {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_path_key {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_name_key {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_rule_refs {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_exec_rule {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_enforce_state {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_rule_value_key {}
// SAFETY: as above.
unsafe impl plain::Plain for shrike_tamper {}

/// Every object's skeleton generates its own copy of `struct shrike_header`; the decoder knows
/// only [`shrike_header`] (the process object's). The others must have its layout, field by
/// field, or the build fails here.
macro_rules! same_header {
    ($copy:ty) => {
        const _: () = {
            use std::mem::{offset_of, size_of};
            assert!(size_of::<$copy>() == size_of::<shrike_header>());
            assert!(offset_of!($copy, kind) == offset_of!(shrike_header, kind));
            assert!(offset_of!($copy, size) == offset_of!(shrike_header, size));
            assert!(offset_of!($copy, ktime_ns) == offset_of!(shrike_header, ktime_ns));
            assert!(offset_of!($copy, pid) == offset_of!(shrike_header, pid));
            assert!(offset_of!($copy, tid) == offset_of!(shrike_header, tid));
            assert!(offset_of!($copy, exec_id) == offset_of!(shrike_header, exec_id));
        };
        // SAFETY: a #[repr(C)] struct of plain integers generated from the BPF object's BTF
        // (the layout of shrike_header, asserted above); it contains no pointers.
        unsafe impl plain::Plain for $copy {}
    };
}
same_header!(crate::skel::net::types::shrike_header);
same_header!(crate::skel::file::types::shrike_header);

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

/// The network family's contract types (`bpf/abi/net.h`), from the net object's skeleton.
pub mod net {
    pub use crate::skel::net::types::{
        shrike_net, shrike_net_cfg, shrike_net_direction, shrike_net_dns, shrike_net_dns_flags,
        shrike_net_fault, shrike_net_flags, shrike_net_limits, shrike_net_lpm_key,
        shrike_net_match, shrike_net_rule, shrike_net_rule_flags, shrike_net_scope,
    };

    // SAFETY: #[repr(C)] structs of plain integers and integer arrays generated from the BPF
    // object's BTF; every bit pattern is a valid value and they contain no pointers.
    unsafe impl plain::Plain for shrike_net {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_net_dns {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_net_lpm_key {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_net_match {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_net_rule {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_net_cfg {}

    /// Deny rules one generation holds.
    pub const RULES_MAX: usize = shrike_net_limits::SHRIKE_NET_RULES_MAX.0 as usize;
    /// DNS message bytes one record carries.
    pub const DNS_MAX: usize = shrike_net_limits::SHRIKE_NET_DNS_MAX.0 as usize;
}

/// The file, privilege and kernel-integrity family's contract types (`bpf/abi/file.h`), from
/// the file object's skeleton.
pub mod file {
    pub use crate::skel::file::types::{
        shrike_bpf_event, shrike_cred_event, shrike_creds, shrike_file_access, shrike_file_event,
        shrike_file_info, shrike_file_limits, shrike_file_times, shrike_memfd_event,
        shrike_module_event, shrike_mount_event, shrike_ns_event, shrike_ptrace_event,
        shrike_signal_event, shrike_socket_event, shrike_sys, shrike_sys_entry, shrike_watch_flags,
        shrike_watch_key, shrike_watch_kind, shrike_watch_name_key, shrike_watch_state,
        shrike_watch_value,
    };
    pub use crate::skel::file::types::{
        shrike_enforce_kind, shrike_file_rule, shrike_file_rule_flags, shrike_file_rule_key,
        shrike_file_rule_value_key, shrike_ns_index, shrike_rule_list,
    };

    // SAFETY: #[repr(C)] structs of plain integers and integer arrays generated from the BPF
    // object's BTF; every bit pattern is a valid value and they contain no pointers.
    unsafe impl plain::Plain for shrike_file_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_module_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_bpf_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_ptrace_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_cred_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_mount_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_ns_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_memfd_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_socket_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_signal_event {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_watch_key {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_watch_name_key {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_watch_value {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_watch_state {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_file_rule_key {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_file_rule {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_file_rule_value_key {}
    // SAFETY: as above.
    unsafe impl plain::Plain for shrike_rule_list {}

    /// Path bytes of a watch-set key (`SHRIKE_WATCH_PATH_MAX`).
    pub const WATCH_PATH_MAX: usize = shrike_file_limits::SHRIKE_WATCH_PATH_MAX.0 as usize;
    /// Entries of the syscall dispatch table (`SHRIKE_SYSCALL_TABLE`).
    pub const SYSCALL_TABLE: usize = shrike_file_limits::SHRIKE_SYSCALL_TABLE.0 as usize;
}
