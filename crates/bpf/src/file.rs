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
//! The watch set ([`WatchSet`]: exact paths, prefixes and base names, per kind) is compiled here
//! ([`compile`], pure, unit-tested) into an LPM trie and a hash of name hashes, two generations
//! of each. [`FileWatch::replace`] fills the inactive generation completely, then flips one
//! 32-bit word: the kernel filters with the old set or the new one, never half of one, and
//! never with nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject};

use crate::abi::file::{
    shrike_file_access, shrike_sys, shrike_sys_entry, shrike_watch_flags, shrike_watch_key,
    shrike_watch_kind, shrike_watch_name_key, shrike_watch_state, shrike_watch_value,
    SYSCALL_TABLE, WATCH_PATH_MAX,
};
use crate::loader::{Family, LoadError, SharedMaps};
use crate::skel::file::{FileSkel, FileSkelBuilder};

/// Which hooks observe the family's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileHooks {
    /// LSM hooks + fexit where BPF LSM programs are called, else syscall tracepoints.
    #[default]
    Auto,
    /// LSM hooks + fexit; loading fails where BPF LSM is not active.
    Lsm,
    /// `sys_enter`/`sys_exit` raw tracepoints (with BTF), on any kernel.
    Tracepoint,
}

/// The file kinds the watch set filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    Open,
    Unlink,
    Rename,
    Chmod,
    Chown,
    Link,
}

impl WatchKind {
    pub const ALL: [WatchKind; 6] = [
        WatchKind::Open,
        WatchKind::Unlink,
        WatchKind::Rename,
        WatchKind::Chmod,
        WatchKind::Chown,
        WatchKind::Link,
    ];

    /// The kind's bit in the kernel's masks (`SHRIKE_WATCH_*`).
    pub fn bit(self) -> u32 {
        match self {
            WatchKind::Open => shrike_watch_kind::SHRIKE_WATCH_OPEN.0,
            WatchKind::Unlink => shrike_watch_kind::SHRIKE_WATCH_UNLINK.0,
            WatchKind::Rename => shrike_watch_kind::SHRIKE_WATCH_RENAME.0,
            WatchKind::Chmod => shrike_watch_kind::SHRIKE_WATCH_CHMOD.0,
            WatchKind::Chown => shrike_watch_kind::SHRIKE_WATCH_CHOWN.0,
            WatchKind::Link => shrike_watch_kind::SHRIKE_WATCH_LINK.0,
        }
    }

    fn mask(kinds: &BTreeSet<WatchKind>) -> u32 {
        kinds.iter().fold(0, |m, k| m | k.bit())
    }
}

/// Every kind of event the family can produce; arming one attaches its syscalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileEventKind {
    File(WatchKind),
    ModuleLoad,
    BpfLoad,
    Ptrace,
    CredChange,
    /// mount and umount.
    Mount,
    Namespace,
    Memfd,
    Signal,
}

impl FileEventKind {
    /// Every kind.
    pub fn all() -> BTreeSet<FileEventKind> {
        let mut all: BTreeSet<_> = WatchKind::ALL
            .into_iter()
            .map(FileEventKind::File)
            .collect();
        all.extend([
            FileEventKind::ModuleLoad,
            FileEventKind::BpfLoad,
            FileEventKind::Ptrace,
            FileEventKind::CredChange,
            FileEventKind::Mount,
            FileEventKind::Namespace,
            FileEventKind::Memfd,
            FileEventKind::Signal,
        ]);
        all
    }
}

/// `file.access` bits of an open; a watch with no bits watches every open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Access(pub u32);

impl Access {
    pub const ANY: Access = Access(0);
    pub const READ: Access = Access(shrike_file_access::SHRIKE_ACCESS_READ.0);
    pub const WRITE: Access = Access(shrike_file_access::SHRIKE_ACCESS_WRITE.0);
    pub const CREATE: Access = Access(shrike_file_access::SHRIKE_ACCESS_CREATE.0);
    pub const TRUNCATE: Access = Access(shrike_file_access::SHRIKE_ACCESS_TRUNCATE.0);
    /// Any change to the file: write, create or truncate.
    pub const MODIFY: Access = Access(Self::WRITE.0 | Self::CREATE.0 | Self::TRUNCATE.0);

    /// The contract's words (`read`, `write`, `create`, `truncate`), in that order.
    pub fn words(self) -> Vec<&'static str> {
        [
            (Self::READ, "read"),
            (Self::WRITE, "write"),
            (Self::CREATE, "create"),
            (Self::TRUNCATE, "truncate"),
        ]
        .into_iter()
        .filter(|(a, _)| self.0 & a.0 != 0)
        .map(|(_, w)| w)
        .collect()
    }
}

/// What a watch matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// This path exactly.
    Exact(String),
    /// Every path that starts with this string (`/etc/cron` matches `/etc/crontab`).
    Prefix(String),
    /// Every path whose last component is this name.
    Name(String),
}

/// One watched pattern, for some kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub pattern: Pattern,
    pub kinds: BTreeSet<WatchKind>,
    /// For [`WatchKind::Open`]: the accesses that make an open interesting ([`Access::ANY`]:
    /// every open).
    pub open_access: Access,
}

impl Watch {
    /// A watch for every kind and every open.
    pub fn all_kinds(pattern: Pattern) -> Watch {
        Watch {
            pattern,
            kinds: WatchKind::ALL.into_iter().collect(),
            open_access: Access::ANY,
        }
    }
}

/// The set of paths whose events leave the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchSet {
    pub watches: Vec<Watch>,
    /// Kinds whose every event is sent, unfiltered (a policy rule the path filter cannot
    /// express).
    pub pass_all: BTreeSet<WatchKind>,
    /// Send every chmod that sets setuid or setgid, wherever the file is.
    pub setid_chmod_anywhere: bool,
}

impl WatchSet {
    /// The built-in watch list, used until a policy supplies its own: credentials, privilege
    /// configuration, persistence locations, logs, and setuid/setgid chmods anywhere.
    pub fn builtin() -> WatchSet {
        use Pattern::{Exact, Name, Prefix};
        let all_but_open: BTreeSet<WatchKind> = WatchKind::ALL
            .into_iter()
            .filter(|k| *k != WatchKind::Open)
            .collect();
        let any = |p: Pattern| Watch::all_kinds(p);
        // Written, replaced, removed, re-owned: reads are routine (sudo reads sudoers).
        let changed = |p: Pattern| Watch {
            pattern: p,
            kinds: WatchKind::ALL.into_iter().collect(),
            open_access: Access::MODIFY,
        };
        let mut watches = vec![
            any(Exact("/etc/shadow".into())),
            any(Exact("/etc/gshadow".into())),
            any(Exact("/etc/shadow-".into())),
            any(Exact("/etc/gshadow-".into())),
            any(Prefix("/root/.ssh/".into())),
            any(Exact("/etc/ld.so.preload".into())),
            changed(Exact("/etc/passwd".into())),
            changed(Exact("/etc/group".into())),
            changed(Exact("/etc/sudoers".into())),
            changed(Prefix("/etc/sudoers.d/".into())),
            changed(Prefix("/etc/cron".into())),
            changed(Prefix("/var/spool/cron/".into())),
            changed(Prefix("/etc/systemd/".into())),
            changed(Prefix("/etc/pam.d/".into())),
            changed(Exact("/etc/profile".into())),
            changed(Prefix("/etc/profile.d/".into())),
            changed(Exact("/etc/bash.bashrc".into())),
            changed(Exact("/etc/environment".into())),
            changed(Exact("/etc/ld.so.conf".into())),
            changed(Prefix("/etc/ld.so.conf.d/".into())),
            changed(Exact("/etc/rc.local".into())),
            changed(Prefix("/etc/init.d/".into())),
            changed(Prefix("/etc/ssh/".into())),
            changed(Prefix("/etc/modules-load.d/".into())),
            changed(Name("authorized_keys".into())),
            changed(Name("authorized_keys2".into())),
            changed(Name(".bashrc".into())),
            changed(Name(".bash_profile".into())),
            changed(Name(".profile".into())),
            changed(Name(".zshrc".into())),
            changed(Name(".bash_history".into())),
            // Logs: written all the time, so only truncation, removal, renames and links.
            Watch {
                pattern: Prefix("/var/log/".into()),
                kinds: WatchKind::ALL.into_iter().collect(),
                open_access: Access::TRUNCATE,
            },
            // Home directories: ownership, mode and link changes (reads and writes there are
            // the users' own business; the names above cover the persistence files).
            Watch {
                pattern: Prefix("/home/".into()),
                kinds: all_but_open.clone(),
                open_access: Access::ANY,
            },
        ];
        watches.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        WatchSet {
            watches,
            pass_all: BTreeSet::new(),
            setid_chmod_anywhere: true,
        }
    }
}

/// One watch-set entry as the kernel stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryValue {
    pub kinds: u32,
    pub access: u32,
    pub flags: u32,
}

impl EntryValue {
    fn of(w: &Watch, flags: u32) -> EntryValue {
        EntryValue {
            kinds: WatchKind::mask(&w.kinds),
            access: if w.kinds.contains(&WatchKind::Open) {
                w.open_access.0
            } else {
                0
            },
            flags,
        }
    }

    /// Both entries' kinds; for opens, the wider access (no bits = every access).
    fn merge(&mut self, other: &EntryValue) {
        let open = WatchKind::Open.bit();
        self.access = match (self.kinds & open != 0, other.kinds & open != 0) {
            (true, true) if self.access == 0 || other.access == 0 => 0,
            (true, true) => self.access | other.access,
            (false, true) => other.access,
            (_, false) => self.access,
        };
        self.kinds |= other.kinds;
        self.flags |= other.flags;
    }

    fn to_kernel(self) -> shrike_watch_value {
        shrike_watch_value {
            kinds: self.kinds,
            access: self.access,
            flags: self.flags,
            rule: u16::MAX,
            action: 0,
            ..Default::default()
        }
    }
}

/// A watch set compiled into the kernel's entries (without generation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Compiled {
    /// LPM entries: the key's bytes (an exact path ends with its NUL) and what they watch.
    pub paths: BTreeMap<Vec<u8>, EntryValue>,
    /// FNV-1a 64 of base names and what they watch.
    pub names: BTreeMap<u64, EntryValue>,
    pub pass_all: u32,
    pub setid_chmod: bool,
}

/// Most path entries and base names one generation holds.
pub const WATCH_PATHS_MAX: usize = 4096;
pub const WATCH_NAMES_MAX: usize = 1024;

/// FNV-1a 64, the hash the kernel computes over a path's last component.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Compiles a watch set: exact paths get their NUL, long ones become prefixes of their first
/// [`WATCH_PATH_MAX`] bytes, and every entry carries the kinds of the prefixes covering it (the
/// kernel's longest match must decide alone).
pub fn compile(set: &WatchSet) -> Result<Compiled, String> {
    let mut paths: BTreeMap<Vec<u8>, EntryValue> = BTreeMap::new();
    let mut names: BTreeMap<u64, EntryValue> = BTreeMap::new();
    let exact = shrike_watch_flags::SHRIKE_WATCH_EXACT.0;
    let prefix = shrike_watch_flags::SHRIKE_WATCH_PREFIX.0;
    for w in &set.watches {
        if w.kinds.is_empty() {
            continue;
        }
        let (key, flags) = match &w.pattern {
            Pattern::Name(name) => {
                if name.is_empty() || name.contains('/') {
                    return Err(format!(
                        "watch name {name:?}: a base name has no '/' and is not empty"
                    ));
                }
                names
                    .entry(fnv1a(name.as_bytes()))
                    .or_default()
                    .merge(&EntryValue::of(w, 0));
                continue;
            }
            Pattern::Exact(p) | Pattern::Prefix(p) if !p.starts_with('/') => {
                return Err(format!("watch path {p:?}: paths are absolute"));
            }
            Pattern::Exact(p) if p.len() < WATCH_PATH_MAX => {
                let mut key = p.as_bytes().to_vec();
                key.push(0);
                (key, exact)
            }
            Pattern::Exact(p) | Pattern::Prefix(p) => {
                let key = p.as_bytes()[..p.len().min(WATCH_PATH_MAX)].to_vec();
                (key, prefix)
            }
        };
        paths
            .entry(key)
            .or_default()
            .merge(&EntryValue::of(w, flags));
    }
    // Fold covering prefixes into longer entries.
    let prefixes: Vec<(Vec<u8>, EntryValue)> = paths
        .iter()
        .filter(|(_, v)| v.flags & prefix != 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    for (key, value) in paths.iter_mut() {
        for (p, pv) in &prefixes {
            if p.len() < key.len() && key.starts_with(p) {
                value.merge(&EntryValue { flags: 0, ..*pv });
            }
        }
    }
    if paths.len() > WATCH_PATHS_MAX {
        return Err(format!(
            "{} watched paths: at most {WATCH_PATHS_MAX}",
            paths.len()
        ));
    }
    if names.len() > WATCH_NAMES_MAX {
        return Err(format!(
            "{} watched names: at most {WATCH_NAMES_MAX}",
            names.len()
        ));
    }
    Ok(Compiled {
        paths,
        names,
        pass_all: WatchKind::mask(&set.pass_all),
        setid_chmod: set.setid_chmod_anywhere,
    })
}

/// One syscall the family handles.
pub struct Syscall {
    pub id: shrike_sys,
    /// x86_64 number.
    pub nr: u32,
    /// The name in `__x64_sys_<name>` and in events (`cred.syscall`, `namespace.syscall`).
    pub name: &'static str,
    pub kind: FileEventKind,
    /// Tracepoint mode: the record is built at sys_enter (path strings, old credentials).
    pub at_enter: bool,
}

const fn sc(
    id: shrike_sys,
    nr: u32,
    name: &'static str,
    kind: FileEventKind,
    at_enter: bool,
) -> Syscall {
    Syscall {
        id,
        nr,
        name,
        kind,
        at_enter,
    }
}

use FileEventKind as K;
use WatchKind as W;

/// Every syscall the family handles, with its x86_64 number.
#[rustfmt::skip]
pub const SYSCALLS: &[Syscall] = &[
    sc(shrike_sys::SHRIKE_SYS_OPEN, 2, "open", K::File(W::Open), false),
    sc(shrike_sys::SHRIKE_SYS_OPENAT, 257, "openat", K::File(W::Open), false),
    sc(shrike_sys::SHRIKE_SYS_OPENAT2, 437, "openat2", K::File(W::Open), false),
    sc(shrike_sys::SHRIKE_SYS_CREAT, 85, "creat", K::File(W::Open), false),
    sc(shrike_sys::SHRIKE_SYS_UNLINK, 87, "unlink", K::File(W::Unlink), true),
    sc(shrike_sys::SHRIKE_SYS_UNLINKAT, 263, "unlinkat", K::File(W::Unlink), true),
    sc(shrike_sys::SHRIKE_SYS_RMDIR, 84, "rmdir", K::File(W::Unlink), true),
    sc(shrike_sys::SHRIKE_SYS_RENAME, 82, "rename", K::File(W::Rename), true),
    sc(shrike_sys::SHRIKE_SYS_RENAMEAT, 264, "renameat", K::File(W::Rename), true),
    sc(shrike_sys::SHRIKE_SYS_RENAMEAT2, 316, "renameat2", K::File(W::Rename), true),
    sc(shrike_sys::SHRIKE_SYS_CHMOD, 90, "chmod", K::File(W::Chmod), true),
    sc(shrike_sys::SHRIKE_SYS_FCHMOD, 91, "fchmod", K::File(W::Chmod), false),
    sc(shrike_sys::SHRIKE_SYS_FCHMODAT, 268, "fchmodat", K::File(W::Chmod), true),
    sc(shrike_sys::SHRIKE_SYS_FCHMODAT2, 452, "fchmodat2", K::File(W::Chmod), true),
    sc(shrike_sys::SHRIKE_SYS_CHOWN, 92, "chown", K::File(W::Chown), true),
    sc(shrike_sys::SHRIKE_SYS_FCHOWN, 93, "fchown", K::File(W::Chown), false),
    sc(shrike_sys::SHRIKE_SYS_LCHOWN, 94, "lchown", K::File(W::Chown), true),
    sc(shrike_sys::SHRIKE_SYS_FCHOWNAT, 260, "fchownat", K::File(W::Chown), true),
    sc(shrike_sys::SHRIKE_SYS_LINK, 86, "link", K::File(W::Link), true),
    sc(shrike_sys::SHRIKE_SYS_LINKAT, 265, "linkat", K::File(W::Link), true),
    sc(shrike_sys::SHRIKE_SYS_SYMLINK, 88, "symlink", K::File(W::Link), true),
    sc(shrike_sys::SHRIKE_SYS_SYMLINKAT, 266, "symlinkat", K::File(W::Link), true),
    sc(shrike_sys::SHRIKE_SYS_INIT_MODULE, 175, "init_module", K::ModuleLoad, false),
    sc(shrike_sys::SHRIKE_SYS_FINIT_MODULE, 313, "finit_module", K::ModuleLoad, false),
    sc(shrike_sys::SHRIKE_SYS_BPF, 321, "bpf", K::BpfLoad, false),
    sc(shrike_sys::SHRIKE_SYS_PTRACE, 101, "ptrace", K::Ptrace, false),
    sc(shrike_sys::SHRIKE_SYS_SETUID, 105, "setuid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETREUID, 113, "setreuid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETRESUID, 117, "setresuid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETGID, 106, "setgid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETREGID, 114, "setregid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETRESGID, 119, "setresgid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETFSUID, 122, "setfsuid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETFSGID, 123, "setfsgid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_CAPSET, 126, "capset", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_MOUNT, 165, "mount", K::Mount, false),
    sc(shrike_sys::SHRIKE_SYS_UMOUNT2, 166, "umount2", K::Mount, false),
    sc(shrike_sys::SHRIKE_SYS_SETNS, 308, "setns", K::Namespace, false),
    sc(shrike_sys::SHRIKE_SYS_UNSHARE, 272, "unshare", K::Namespace, false),
    sc(shrike_sys::SHRIKE_SYS_CLONE, 56, "clone", K::Namespace, false),
    sc(shrike_sys::SHRIKE_SYS_CLONE3, 435, "clone3", K::Namespace, false),
    sc(shrike_sys::SHRIKE_SYS_MEMFD_CREATE, 319, "memfd_create", K::Memfd, false),
];

/// The name of a handler id as records carry it (`SHRIKE_SYS_*`).
pub fn syscall_name(id: u16) -> Option<&'static str> {
    SYSCALLS
        .iter()
        .find(|s| s.id.0 == u32::from(id))
        .map(|s| s.name)
}

/// A BPF program type's name as libbpf and bpftool spell it (`socket_filter`, `kprobe`, ...),
/// or its number when this build does not know it.
pub fn prog_type_name(prog_type: u32) -> String {
    // SAFETY: libbpf_bpf_prog_type_str takes any value and returns NULL or a pointer to a
    // static NUL-terminated string.
    let name = unsafe { libbpf_rs::libbpf_sys::libbpf_bpf_prog_type_str(prog_type) };
    if name.is_null() {
        return prog_type.to_string();
    }
    // SAFETY: non-NULL, static and NUL-terminated (above).
    unsafe { std::ffi::CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}

/// The kernel function an fexit program of this syscall attaches to (`umount2` is `umount`).
fn entry_point(name: &str) -> String {
    let name = if name == "umount2" { "umount" } else { name };
    format!("__x64_sys_{name}")
}

/// LSM hooks and the kinds they serve.
const LSM_HOOKS: &[(&str, FileEventKind)] = &[
    ("lsm_path_unlink", K::File(W::Unlink)),
    ("lsm_path_rmdir", K::File(W::Unlink)),
    ("lsm_path_rename", K::File(W::Rename)),
    ("lsm_path_chmod", K::File(W::Chmod)),
    ("lsm_path_chown", K::File(W::Chown)),
    ("lsm_path_link", K::File(W::Link)),
    ("lsm_path_symlink", K::File(W::Link)),
    ("lsm_sb_mount", K::Mount),
    ("lsm_sb_umount", K::Mount),
    ("lsm_task_fix_setuid", K::CredChange),
    ("lsm_task_fix_setgid", K::CredChange),
    ("lsm_capset", K::CredChange),
];

/// How the family is configured at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    pub hooks: FileHooks,
    /// The kinds to arm; the others' syscalls are not handled (and, with LSM, not hooked).
    pub kinds: BTreeSet<FileEventKind>,
    /// The watch set in force from the start.
    pub watch: WatchSet,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            hooks: FileHooks::Auto,
            kinds: FileEventKind::all(),
            watch: WatchSet::builtin(),
        }
    }
}

/// The hook set a loaded family uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookSet {
    Lsm,
    Tracepoint,
}

/// What a replace wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchStats {
    /// The generation now in force (0 or 1).
    pub generation: u32,
    pub paths: usize,
    pub names: usize,
}

/// The watch-set maps: a cheap, cloneable handle the agent (and the policy engine) keeps to
/// replace the watch set while the sensor runs.
#[derive(Clone)]
pub struct FileWatch {
    inner: Arc<WatchMaps>,
}

struct WatchMaps {
    paths: MapHandle,
    names: MapHandle,
    state: MapHandle,
    active: MapHandle,
    /// Serialises replaces: one writer at a time.
    lock: Mutex<()>,
}

fn map_err(map: &'static str) -> impl Fn(libbpf_rs::Error) -> LoadError {
    move |source| LoadError::Map { map, source }
}

fn bytes_of<T: plain::Plain>(v: &T) -> &[u8] {
    // SAFETY: T is Plain (repr(C), integers only); the byte view lives no longer than `v`.
    unsafe { plain::as_bytes(v) }
}

impl FileWatch {
    /// Replaces the watch set atomically: the new generation is written completely (its stale
    /// entries from two replaces ago removed first), then one word switches the kernel to it.
    /// On an error the old set stays in force.
    pub fn replace(&self, set: &WatchSet) -> Result<WatchStats, LoadError> {
        let compiled = compile(set).map_err(LoadError::Option)?;
        let m = &self.inner;
        let _one_writer = m.lock.lock().unwrap_or_else(|e| e.into_inner());
        let zero = 0u32.to_ne_bytes();
        let active = m
            .active
            .lookup(&zero, MapFlags::ANY)
            .map_err(map_err("watch_active"))?
            .and_then(|v| {
                v.get(..4)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            })
            .unwrap_or(0)
            & 1;
        let next = active ^ 1;
        self.clear_generation(next as u8)?;
        if let Err(err) = self.write_generation(next as u8, &compiled) {
            let _ = self.clear_generation(next as u8);
            return Err(err);
        }
        let state = shrike_watch_state {
            pass_all: compiled.pass_all,
            setid_chmod: u32::from(compiled.setid_chmod),
            names: compiled.names.len() as u32,
            entries: compiled.paths.len() as u32,
        };
        m.state
            .update(&next.to_ne_bytes(), bytes_of(&state), MapFlags::ANY)
            .map_err(map_err("watch_state"))?;
        // The switch: one aligned 32-bit store the kernel reads once per event.
        m.active
            .update(&zero, &next.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("watch_active"))?;
        Ok(WatchStats {
            generation: next,
            paths: compiled.paths.len(),
            names: compiled.names.len(),
        })
    }

    fn clear_generation(&self, gen: u8) -> Result<(), LoadError> {
        let m = &self.inner;
        // Keys start with prefixlen (u32) then gen for paths, with gen for names.
        let stale: Vec<Vec<u8>> = m.paths.keys().filter(|k| k.get(4) == Some(&gen)).collect();
        for key in stale {
            m.paths.delete(&key).map_err(map_err("watch_paths"))?;
        }
        let stale: Vec<Vec<u8>> = m.names.keys().filter(|k| k.first() == Some(&gen)).collect();
        for key in stale {
            m.names.delete(&key).map_err(map_err("watch_names"))?;
        }
        Ok(())
    }

    fn write_generation(&self, gen: u8, c: &Compiled) -> Result<(), LoadError> {
        let m = &self.inner;
        for (path, value) in &c.paths {
            let mut key = shrike_watch_key {
                prefixlen: 8 * (1 + path.len() as u32),
                gen,
                ..Default::default()
            };
            key.path[..path.len()].copy_from_slice(path);
            m.paths
                .update(bytes_of(&key), bytes_of(&value.to_kernel()), MapFlags::ANY)
                .map_err(map_err("watch_paths"))?;
        }
        for (hash, value) in &c.names {
            let key = shrike_watch_name_key {
                gen,
                name_hash: *hash,
                ..Default::default()
            };
            m.names
                .update(bytes_of(&key), bytes_of(&value.to_kernel()), MapFlags::ANY)
                .map_err(map_err("watch_names"))?;
        }
        Ok(())
    }
}

/// The loaded family; dropping it detaches its programs.
pub struct FileSensor {
    _skel: FileSkel<'static>,
    _links: Vec<Link>,
    hooks: Vec<String>,
    pub hook_set: HookSet,
}

impl Family for FileSensor {
    fn hooks(&self) -> Vec<String> {
        self.hooks.clone()
    }
}

/// Functions of the running kernel's BTF, to skip fexit programs whose syscall it lacks
/// (`fchmodat2` before 6.6).
fn kernel_has_function(btf: &libbpf_rs::btf::Btf<'_>, name: &str) -> bool {
    btf.type_by_name::<libbpf_rs::btf::types::Func<'_>>(name)
        .is_some()
}

/// Opens, configures, loads and attaches the family, sharing the process object's maps.
pub fn load(
    shared: &SharedMaps<'_>,
    wakeup_bytes: u64,
    opts: &FileOptions,
) -> Result<(FileSensor, FileWatch), LoadError> {
    let hook_set = match opts.hooks {
        FileHooks::Tracepoint => HookSet::Tracepoint,
        FileHooks::Lsm => HookSet::Lsm,
        FileHooks::Auto if crate::probe::bpf_lsm_active() => HookSet::Lsm,
        FileHooks::Auto => HookSet::Tracepoint,
    };
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let mut open = FileSkelBuilder::default()
        .open(storage)
        .map_err(|source| LoadError::Open {
            object: "file",
            source,
        })?;
    shared.reuse(
        &mut open.maps.events,
        &mut open.maps.counters,
        &mut open.maps.procs,
    )?;
    if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
        rodata.cfg_wakeup_bytes = wakeup_bytes;
        rodata.cfg_self_tgid = std::process::id();
    }

    let armed = |k: &FileEventKind| opts.kinds.contains(k);
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    match hook_set {
        HookSet::Tracepoint => {
            if SYSCALLS.iter().any(|s| armed(&s.kind)) {
                wanted.insert("sys_enter".into());
                wanted.insert("sys_exit".into());
            }
        }
        HookSet::Lsm => {
            let btf = libbpf_rs::btf::Btf::from_vmlinux().map_err(|source| LoadError::Open {
                object: "vmlinux BTF",
                source,
            })?;
            for s in SYSCALLS.iter().filter(|s| armed(&s.kind)) {
                if kernel_has_function(&btf, &entry_point(s.name)) {
                    wanted.insert(format!("fx_{}", s.name.replace("umount2", "umount")));
                } else {
                    tracing::debug!(
                        syscall = s.name,
                        "the kernel has no such syscall: not hooked"
                    );
                }
            }
            for (name, kind) in LSM_HOOKS {
                if armed(kind) {
                    wanted.insert((*name).to_string());
                }
            }
        }
    }
    if armed(&FileEventKind::Signal) {
        wanted.insert("on_signal".into());
    }
    for mut prog in open.open_object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        prog.set_autoload(wanted.contains(&name));
    }
    let mut skel = open.load().map_err(|source| LoadError::Load {
        object: "file",
        source,
    })?;

    // The dispatch table, before anything is attached.
    for s in SYSCALLS {
        let mut value = 0u32;
        if armed(&s.kind) {
            value = s.id.0;
            if s.at_enter {
                value |= shrike_sys_entry::SHRIKE_SYS_AT_ENTER.0;
            }
        }
        debug_assert!((s.nr as usize) < SYSCALL_TABLE);
        skel.maps
            .syscall_handlers
            .update(&s.nr.to_ne_bytes(), &value.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("syscall_handlers"))?;
    }
    let watch = FileWatch {
        inner: Arc::new(WatchMaps {
            paths: MapHandle::try_from(&skel.maps.watch_paths).map_err(map_err("watch_paths"))?,
            names: MapHandle::try_from(&skel.maps.watch_names).map_err(map_err("watch_names"))?,
            state: MapHandle::try_from(&skel.maps.watch_state).map_err(map_err("watch_state"))?,
            active: MapHandle::try_from(&skel.maps.watch_active)
                .map_err(map_err("watch_active"))?,
            lock: Mutex::new(()),
        }),
    };
    watch.replace(&opts.watch)?;

    let mut links = Vec::new();
    let mut hooks = Vec::new();
    for prog in skel.object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        if !wanted.contains(&name) {
            continue;
        }
        let section = prog.section().to_string_lossy().into_owned();
        let link = prog.attach().map_err(|source| LoadError::Attach {
            program: leak_name(&name),
            source,
        })?;
        links.push(link);
        hooks.push(section);
    }
    Ok((
        FileSensor {
            _skel: skel,
            _links: links,
            hooks,
            hook_set,
        },
        watch,
    ))
}

/// Program names for errors, which want `&'static str`; only on the failure path.
fn leak_name(name: &str) -> &'static str {
    Box::leak(name.to_string().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(pattern: Pattern, kinds: &[WatchKind], access: Access) -> Watch {
        Watch {
            pattern,
            kinds: kinds.iter().copied().collect(),
            open_access: access,
        }
    }

    #[test]
    fn exact_paths_end_with_nul_and_prefixes_do_not() {
        let set = WatchSet {
            watches: vec![
                w(
                    Pattern::Exact("/etc/shadow".into()),
                    &[WatchKind::Open],
                    Access::READ,
                ),
                w(
                    Pattern::Prefix("/etc/cron.d/".into()),
                    &[WatchKind::Unlink],
                    Access::ANY,
                ),
            ],
            ..Default::default()
        };
        let c = compile(&set).unwrap();
        assert!(c.paths.contains_key(b"/etc/shadow\0".as_slice()));
        assert!(c.paths.contains_key(b"/etc/cron.d/".as_slice()));
        assert_eq!(c.paths[b"/etc/shadow\0".as_slice()].access, Access::READ.0);
    }

    #[test]
    fn covering_prefixes_are_folded_into_longer_entries() {
        let set = WatchSet {
            watches: vec![
                w(
                    Pattern::Prefix("/etc/".into()),
                    &[WatchKind::Open],
                    Access::WRITE,
                ),
                w(
                    Pattern::Exact("/etc/shadow".into()),
                    &[WatchKind::Open],
                    Access::READ,
                ),
                w(
                    Pattern::Prefix("/etc/ssh/".into()),
                    &[WatchKind::Chmod],
                    Access::ANY,
                ),
            ],
            ..Default::default()
        };
        let c = compile(&set).unwrap();
        let shadow = c.paths[b"/etc/shadow\0".as_slice()];
        assert_eq!(shadow.kinds, WatchKind::Open.bit());
        assert_eq!(shadow.access, Access::READ.0 | Access::WRITE.0);
        let ssh = c.paths[b"/etc/ssh/".as_slice()];
        assert_eq!(ssh.kinds, WatchKind::Open.bit() | WatchKind::Chmod.bit());
        assert_eq!(
            ssh.access,
            Access::WRITE.0,
            "open access comes from /etc/ only"
        );
    }

    #[test]
    fn any_access_wins_over_specific_access() {
        let mut a = EntryValue {
            kinds: WatchKind::Open.bit(),
            access: Access::READ.0,
            flags: 0,
        };
        a.merge(&EntryValue {
            kinds: WatchKind::Open.bit(),
            access: 0,
            flags: 0,
        });
        assert_eq!(a.access, 0);
    }

    #[test]
    fn long_exact_paths_become_prefixes_of_the_key_size() {
        let long = format!("/{}", "a".repeat(400));
        let set = WatchSet {
            watches: vec![Watch::all_kinds(Pattern::Exact(long.clone()))],
            ..Default::default()
        };
        let c = compile(&set).unwrap();
        let (key, v) = c.paths.iter().next().unwrap();
        assert_eq!(key.len(), WATCH_PATH_MAX);
        assert_eq!(v.flags, shrike_watch_flags::SHRIKE_WATCH_PREFIX.0);
    }

    #[test]
    fn names_are_hashed_like_the_kernel_and_relative_paths_refused() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let set = WatchSet {
            watches: vec![Watch::all_kinds(Pattern::Name("authorized_keys".into()))],
            ..Default::default()
        };
        assert!(compile(&set)
            .unwrap()
            .names
            .contains_key(&fnv1a(b"authorized_keys")));
        let bad = WatchSet {
            watches: vec![Watch::all_kinds(Pattern::Prefix("etc/".into()))],
            ..Default::default()
        };
        assert!(compile(&bad).unwrap_err().contains("absolute"));
    }

    #[test]
    fn builtin_set_compiles_and_watches_the_issue_paths() {
        let c = compile(&WatchSet::builtin()).unwrap();
        assert!(c.paths.contains_key(b"/etc/shadow\0".as_slice()));
        assert!(c.paths.contains_key(b"/etc/cron".as_slice()));
        assert!(c.setid_chmod);
    }

    #[test]
    fn syscall_table_ids_are_unique_and_numbers_fit_the_table() {
        let ids: BTreeSet<u32> = SYSCALLS.iter().map(|s| s.id.0).collect();
        let nrs: BTreeSet<u32> = SYSCALLS.iter().map(|s| s.nr).collect();
        assert_eq!(ids.len(), SYSCALLS.len());
        assert_eq!(nrs.len(), SYSCALLS.len());
        assert!(SYSCALLS.iter().all(|s| (s.nr as usize) < SYSCALL_TABLE));
        assert_eq!(
            ids.len(),
            shrike_sys::SHRIKE_SYS_MAX.0 as usize - 1,
            "every handler has a syscall"
        );
    }

    #[test]
    fn access_words_follow_the_contract_order() {
        assert_eq!(
            Access(Access::TRUNCATE.0 | Access::READ.0).words(),
            ["read", "truncate"]
        );
    }
}
