//! The file, privilege and kernel-integrity family: loading `bpf/file.bpf.c` with the hook set
//! the kernel offers, its syscall dispatch table, and the watch set that decides in the kernel
//! which file events leave it.
//!
//! Hooks are chosen at load ([`FileHooks`]): where BPF LSM programs are called, LSM hooks see
//! the operations with the kernel's own dentries (canonical paths) and fexit on each watched
//! syscall adds the result, so only those syscalls pay; elsewhere `sys_enter`/`sys_exit` raw
//! tracepoints (every syscall pays the tracepoint tax while they are armed). Which syscalls the
//! programs handle is a table ([`SYSCALLS`]) written into the `syscall_handlers` map: an event
//! kind that is not armed has no entry, and its syscalls return at the first lookup.
//!
//! The watch set ([`WatchSet`]: exact paths, prefixes and base names, per kind) is compiled
//! ([`compile`], pure, unit-tested) into an LPM trie and a hash of name hashes, two generations
//! of each. [`FileWatch::replace`] fills the inactive generation completely, then flips one
//! 32-bit word: the kernel filters with the old set or the new one, never half of one, and
//! never with nothing.
//!
//! One job per file: `watch.rs` (what is watched), `rules.rs` (the rules the kernel decides),
//! `compile.rs` (both into kernel entries), `syscalls.rs` (the syscall and LSM hook tables),
//! `maps.rs` (writing a generation and flipping to it) and `load.rs` (the hook set and the
//! programs). The BPF side is `bpf/file.bpf.c` and its `bpf/lib/file_*.h` headers.

mod compile;
mod load;
mod maps;
mod rules;
mod syscalls;
mod watch;

pub use compile::{compile, Compiled, EntryValue, KernelRule, WATCH_NAMES_MAX, WATCH_PATHS_MAX};
pub use load::{load, FileHooks, FileOptions, FileSensor, HookSet};
pub use maps::{FileWatch, WatchStats};
pub use rules::{EnforceKind, FileRule, RuleSite, RuleValue, RULES_PER_KIND};
pub use syscalls::{prog_type_name, syscall_name, Syscall, SYSCALLS};
pub use watch::{Access, FileEventKind, Pattern, Watch, WatchKind, WatchSet};

/// FNV-1a 64, the hash the kernel computes over a path's last component (one function for
/// every family: `bpf/lib/watch.h` and `exec_rules.h` compute the same).
pub use crate::enforce::fnv1a;
