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
    shrike_enforce_kind, shrike_file_access, shrike_file_rule, shrike_file_rule_flags,
    shrike_file_rule_key, shrike_file_rule_value_key, shrike_rule_list, shrike_sys,
    shrike_sys_entry, shrike_watch_flags, shrike_watch_key, shrike_watch_kind,
    shrike_watch_name_key, shrike_watch_state, shrike_watch_value, SYSCALL_TABLE, WATCH_PATH_MAX,
};
use crate::abi::{shrike_action, shrike_enforce_limits};
use crate::enforce::RuleAction;
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
    /// Deny/kill rules the kernel decides, loaded with the watch set (same generation).
    pub rules: Vec<FileRule>,
}

/// What a file-family rule acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EnforceKind {
    File(WatchKind),
    ModuleLoad,
    BpfLoad,
    Ptrace,
}

impl EnforceKind {
    /// `SHRIKE_ENF_*`.
    pub fn index(self) -> u8 {
        let k = match self {
            EnforceKind::File(WatchKind::Open) => shrike_enforce_kind::SHRIKE_ENF_OPEN,
            EnforceKind::File(WatchKind::Unlink) => shrike_enforce_kind::SHRIKE_ENF_UNLINK,
            EnforceKind::File(WatchKind::Rename) => shrike_enforce_kind::SHRIKE_ENF_RENAME,
            EnforceKind::File(WatchKind::Chmod) => shrike_enforce_kind::SHRIKE_ENF_CHMOD,
            EnforceKind::File(WatchKind::Chown) => shrike_enforce_kind::SHRIKE_ENF_CHOWN,
            EnforceKind::File(WatchKind::Link) => shrike_enforce_kind::SHRIKE_ENF_LINK,
            EnforceKind::ModuleLoad => shrike_enforce_kind::SHRIKE_ENF_MODULE,
            EnforceKind::BpfLoad => shrike_enforce_kind::SHRIKE_ENF_BPF,
            EnforceKind::Ptrace => shrike_enforce_kind::SHRIKE_ENF_PTRACE,
        };
        k.0 as u8
    }
}

impl std::fmt::Display for EnforceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnforceKind::File(WatchKind::Open) => "file_open",
            EnforceKind::File(WatchKind::Unlink) => "file_unlink",
            EnforceKind::File(WatchKind::Rename) => "file_rename",
            EnforceKind::File(WatchKind::Chmod) => "file_chmod",
            EnforceKind::File(WatchKind::Chown) => "file_chown",
            EnforceKind::File(WatchKind::Link) => "file_link",
            EnforceKind::ModuleLoad => "module_load",
            EnforceKind::BpfLoad => "bpf_load",
            EnforceKind::Ptrace => "ptrace",
        })
    }
}

/// Where the kernel finds a file-family rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSite {
    /// By the operation's path, or its new path (renames, links) with `new_path`.
    Path {
        patterns: Vec<Pattern>,
        new_path: bool,
    },
    /// Checked on every action of its kind (a rule without a path).
    Every,
}

/// A constraint a file-family rule tests besides its path, with one value per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleValue {
    /// The process's binary: FNV-1a 64 ([`fnv1a`]) of its path or of its base name.
    BinaryIn,
    BinaryNotIn,
    UidIn,
    UidNotIn,
    EuidIn,
    EuidNotIn,
    CgroupIn,
    CgroupNotIn,
    /// The parent image's binary (hashes as for the binary).
    ParentIn,
    ParentNotIn,
    /// Some ancestor's binary is one of the values / none is.
    AncestorIn,
    AncestorNotIn,
    /// ptrace: the target's binary.
    TargetIn,
    TargetNotIn,
}

impl RuleValue {
    /// The `SHRIKE_FRULE_*` bit.
    pub fn flag(self) -> u32 {
        use shrike_file_rule_flags as F;
        let f = match self {
            RuleValue::BinaryIn => F::SHRIKE_FRULE_BINARY_INCL,
            RuleValue::BinaryNotIn => F::SHRIKE_FRULE_BINARY_EXCL,
            RuleValue::UidIn => F::SHRIKE_FRULE_UID_INCL,
            RuleValue::UidNotIn => F::SHRIKE_FRULE_UID_EXCL,
            RuleValue::EuidIn => F::SHRIKE_FRULE_EUID_INCL,
            RuleValue::EuidNotIn => F::SHRIKE_FRULE_EUID_EXCL,
            RuleValue::CgroupIn => F::SHRIKE_FRULE_CGROUP_INCL,
            RuleValue::CgroupNotIn => F::SHRIKE_FRULE_CGROUP_EXCL,
            RuleValue::ParentIn => F::SHRIKE_FRULE_PARENT_INCL,
            RuleValue::ParentNotIn => F::SHRIKE_FRULE_PARENT_EXCL,
            RuleValue::AncestorIn => F::SHRIKE_FRULE_ANCESTOR_INCL,
            RuleValue::AncestorNotIn => F::SHRIKE_FRULE_ANCESTOR_EXCL,
            RuleValue::TargetIn => F::SHRIKE_FRULE_TARGET_INCL,
            RuleValue::TargetNotIn => F::SHRIKE_FRULE_TARGET_EXCL,
        };
        f.0
    }
}

/// One deny/kill rule of the family that the kernel decides alone (issue 6): with BPF LSM the
/// hook refuses the action with EPERM; with the syscall tracepoints the process gets SIGKILL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRule {
    /// The policy's rule index, carried in the records of the actions it stops.
    pub index: u16,
    pub kind: EnforceKind,
    pub action: RuleAction,
    pub site: RuleSite,
    /// file_open: the open has one of these accesses ([`Access::ANY`]: any open)...
    pub access: Access,
    /// ... and none of these.
    pub access_excluded: Access,
    /// The other constraints' values (a constraint with no value never holds).
    pub values: Vec<(RuleValue, u64)>,
}

/// Rules without a path, per kind, that the kernel checks (`SHRIKE_ENF_LIST_MAX`).
pub const RULES_PER_KIND: usize = shrike_enforce_kind::SHRIKE_ENF_LIST_MAX.0 as usize;
/// Kinds of rules (`SHRIKE_ENF_KINDS`).
const ENF_KINDS: usize = shrike_enforce_kind::SHRIKE_ENF_KINDS.0 as usize;
/// Kinds with paths (`SHRIKE_ENF_PATH_KINDS`): the length of a watch entry's rule array.
const PATH_KINDS: usize = shrike_enforce_kind::SHRIKE_ENF_PATH_KINDS.0 as usize;
/// No rule in a watch entry's slot (`SHRIKE_NO_RULE`).
const NO_RULE: u16 = shrike_enforce_limits::SHRIKE_NO_RULE.0 as u16;

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
            rules: Vec::new(),
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

    fn to_kernel(self, rule: [u16; PATH_KINDS]) -> shrike_watch_value {
        shrike_watch_value {
            kinds: self.kinds,
            access: self.access,
            flags: self.flags,
            rule,
        }
    }
}

/// A file-family rule as the kernel stores it (`struct shrike_file_rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRule {
    pub flags: u32,
    pub access: u32,
    pub access_excluded: u32,
    pub action: u8,
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
    /// The rule acting per kind (`SHRIKE_ENF_*` < 6) on a path entry, a covering prefix's
    /// folded in; every key is also in `paths`.
    pub path_rules: BTreeMap<Vec<u8>, [u16; PATH_KINDS]>,
    /// The same for base names (keys also in `names`).
    pub name_rules: BTreeMap<u64, [u16; PATH_KINDS]>,
    /// Rules by (kind, index).
    pub rules: BTreeMap<(u8, u16), KernelRule>,
    /// Constraint values: (kind, index, `SHRIKE_FRULE_*` bit, value).
    pub values: BTreeSet<(u8, u16, u32, u64)>,
    /// Rules without a path, per `SHRIKE_ENF_*` kind.
    pub lists: [Vec<u16>; ENF_KINDS],
    /// `1 << SHRIKE_ENF_*` of every kind with a rule.
    pub enforce: u32,
    /// Rules (or parts of rules) the kernel does not hold, and why: user space decides them.
    pub not_enforced: Vec<(u16, String)>,
}

/// Most path entries and base names one generation holds.
pub const WATCH_PATHS_MAX: usize = 4096;
pub const WATCH_NAMES_MAX: usize = 1024;

/// FNV-1a 64, the hash the kernel computes over a path's last component (one function for
/// every family: `bpf/lib/watch.h` and `exec_rules.h` compute the same).
pub use crate::enforce::fnv1a;

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
    let mut path_rules: BTreeMap<Vec<u8>, [u16; PATH_KINDS]> = BTreeMap::new();
    let mut name_rules: BTreeMap<u64, [u16; PATH_KINDS]> = BTreeMap::new();
    let mut rules = BTreeMap::new();
    let mut values = BTreeSet::new();
    let mut lists: [Vec<u16>; ENF_KINDS] = Default::default();
    let mut not_enforced = Vec::new();
    let mut sorted: Vec<&FileRule> = set.rules.iter().collect();
    sorted.sort_by_key(|r| (r.index, r.kind));
    for rule in sorted {
        let k = rule.kind.index();
        let mut flags = rule.values.iter().fold(0, |f, (v, _)| f | v.flag());
        match &rule.site {
            RuleSite::Every => {
                let list = &mut lists[usize::from(k)];
                if list.len() >= RULES_PER_KIND {
                    not_enforced.push((
                        rule.index,
                        format!("more than {RULES_PER_KIND} {} rules without a path: the kernel checks that many per kind", rule.kind),
                    ));
                    continue;
                }
                list.push(rule.index);
            }
            RuleSite::Path { patterns, new_path } => {
                let EnforceKind::File(wk) = rule.kind else {
                    not_enforced.push((rule.index, format!("{} actions have no path", rule.kind)));
                    continue;
                };
                if let Some(bad) = patterns.iter().find_map(unusable_rule_pattern) {
                    not_enforced.push((rule.index, bad));
                    continue;
                }
                if *new_path {
                    flags |= shrike_file_rule_flags::SHRIKE_FRULE_NEW_PATH.0;
                }
                let entry = EntryValue {
                    kinds: wk.bit(),
                    access: if wk == WatchKind::Open {
                        rule.access.0
                    } else {
                        0
                    },
                    flags: 0,
                };
                let mut place = |slots: &mut [u16; PATH_KINDS], what: &Pattern| {
                    let slot = &mut slots[usize::from(k)];
                    if *slot == NO_RULE || *slot == rule.index {
                        *slot = rule.index;
                    } else {
                        not_enforced.push((
                            rule.index,
                            format!("not on {what:?}: rule {} already acts on {} there (one rule per path and kind)", slot, rule.kind),
                        ));
                    }
                };
                for pattern in patterns {
                    match pattern {
                        Pattern::Name(name) => {
                            let hash = fnv1a(name.as_bytes());
                            names.entry(hash).or_default().merge(&entry);
                            place(
                                name_rules.entry(hash).or_insert([NO_RULE; PATH_KINDS]),
                                pattern,
                            );
                        }
                        Pattern::Exact(p) | Pattern::Prefix(p) => {
                            let exact = matches!(pattern, Pattern::Exact(_));
                            let mut key = p.as_bytes().to_vec();
                            let flag = if exact {
                                key.push(0);
                                shrike_watch_flags::SHRIKE_WATCH_EXACT.0
                            } else {
                                shrike_watch_flags::SHRIKE_WATCH_PREFIX.0
                            };
                            paths.entry(key.clone()).or_default().merge(&EntryValue {
                                flags: flag,
                                ..entry
                            });
                            place(
                                path_rules.entry(key).or_insert([NO_RULE; PATH_KINDS]),
                                pattern,
                            );
                        }
                    }
                }
            }
        }
        rules.insert(
            (k, rule.index),
            KernelRule {
                flags,
                access: rule.access.0,
                access_excluded: rule.access_excluded.0,
                action: match rule.action {
                    RuleAction::Deny => shrike_action::SHRIKE_ACTION_DENY.0 as u8,
                    RuleAction::Kill => shrike_action::SHRIKE_ACTION_KILL.0 as u8,
                },
            },
        );
        for (v, value) in &rule.values {
            values.insert((k, rule.index, v.flag(), *value));
        }
    }
    // The trie answers with the longest match only: an entry without a rule of its own for a
    // kind takes the rule of the longest covering prefix that has one.
    let prefix_flag = shrike_watch_flags::SHRIKE_WATCH_PREFIX.0;
    let ruled_prefixes: Vec<(Vec<u8>, [u16; PATH_KINDS])> = path_rules
        .iter()
        .filter(|(key, _)| paths.get(*key).is_some_and(|v| v.flags & prefix_flag != 0))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    if !ruled_prefixes.is_empty() {
        for key in paths.keys() {
            let mut covering: Vec<&(Vec<u8>, [u16; PATH_KINDS])> = ruled_prefixes
                .iter()
                .filter(|(p, _)| p.len() < key.len() && key.starts_with(p))
                .collect();
            covering.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
            for (prefix, prules) in covering {
                let slots = path_rules
                    .entry(key.clone())
                    .or_insert([NO_RULE; PATH_KINDS]);
                for kind in 0..PATH_KINDS {
                    if prules[kind] == NO_RULE || slots[kind] == prules[kind] {
                        continue;
                    }
                    if slots[kind] == NO_RULE {
                        slots[kind] = prules[kind];
                    } else if !covering_rule_shadowed_before(&not_enforced, prules[kind], key) {
                        not_enforced.push((
                            prules[kind],
                            format!(
                                "not on {:?} (under {:?}): rule {} acts there instead",
                                String::from_utf8_lossy(key.strip_suffix(&[0]).unwrap_or(key)),
                                String::from_utf8_lossy(prefix),
                                slots[kind]
                            ),
                        ));
                    }
                }
            }
        }
    }
    let enforce = rules
        .keys()
        .fold(0u32, |m, (k, _)| m | (1u32 << u32::from(*k)));
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
        path_rules,
        name_rules,
        rules,
        values,
        lists,
        enforce,
        not_enforced,
    })
}

/// Why a rule's path pattern cannot be a kernel key that decides exactly, if it cannot: a
/// relative path, or one longer than a key holds (the kernel would match it as a prefix and
/// refuse more than the rule says).
fn unusable_rule_pattern(p: &Pattern) -> Option<String> {
    match p {
        Pattern::Name(n) if n.is_empty() || n.contains('/') => {
            Some(format!("{n:?} is not a base name"))
        }
        Pattern::Name(_) => None,
        Pattern::Exact(p) | Pattern::Prefix(p) if !p.starts_with('/') => {
            Some(format!("{p:?} is not an absolute path"))
        }
        Pattern::Exact(p) if p.len() >= WATCH_PATH_MAX => Some(format!(
            "{p:?} is longer than the {} bytes a kernel key holds",
            WATCH_PATH_MAX - 1
        )),
        Pattern::Prefix(p) if p.len() > WATCH_PATH_MAX => Some(format!(
            "{p:?} is longer than the {WATCH_PATH_MAX} bytes a kernel key holds"
        )),
        _ => None,
    }
}

/// Whether a shadowing note for `rule` on `key` is already recorded (several covering prefixes).
fn covering_rule_shadowed_before(notes: &[(u16, String)], rule: u16, key: &[u8]) -> bool {
    let path = format!(
        "{:?}",
        String::from_utf8_lossy(key.strip_suffix(&[0]).unwrap_or(key))
    );
    notes
        .iter()
        .any(|(r, why)| *r == rule && why.starts_with(&format!("not on {path}")))
}

/// One syscall the family handles.
pub struct Syscall {
    pub id: shrike_sys,
    /// x86_64 number.
    pub nr: u32,
    /// The name in `__x64_sys_<name>` and in events (`cred.syscall`, `namespace.syscall`).
    pub name: &'static str,
    pub kind: FileEventKind,
    /// Tracepoint mode: sys_enter runs for it (path strings and old credentials are read
    /// there; module, BPF and ptrace rules kill there).
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
    sc(shrike_sys::SHRIKE_SYS_INIT_MODULE, 175, "init_module", K::ModuleLoad, true),
    sc(shrike_sys::SHRIKE_SYS_FINIT_MODULE, 313, "finit_module", K::ModuleLoad, true),
    sc(shrike_sys::SHRIKE_SYS_BPF, 321, "bpf", K::BpfLoad, true),
    sc(shrike_sys::SHRIKE_SYS_PTRACE, 101, "ptrace", K::Ptrace, true),
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
    ("lsm_file_open", K::File(W::Open)),
    ("lsm_path_mknod", K::File(W::Open)),
    ("lsm_kernel_read_file", K::ModuleLoad),
    ("lsm_kernel_load_data", K::ModuleLoad),
    ("lsm_bpf", K::BpfLoad),
    ("lsm_ptrace_access_check", K::Ptrace),
    ("lsm_ptrace_traceme", K::Ptrace),
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchStats {
    /// The generation now in force (0 or 1).
    pub generation: u32,
    pub paths: usize,
    pub names: usize,
    /// Deny/kill rules now in the kernel.
    pub rules: usize,
    /// Rules (or parts of rules) the kernel does not hold, and why.
    pub not_enforced: Vec<(u16, String)>,
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
    rules: MapHandle,
    rule_values: MapHandle,
    rule_lists: MapHandle,
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
            enforce: compiled.enforce,
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
            rules: compiled.rules.len(),
            not_enforced: compiled.not_enforced,
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
        // Rule and value keys start with gen.
        let stale: Vec<Vec<u8>> = m.rules.keys().filter(|k| k.first() == Some(&gen)).collect();
        for key in stale {
            m.rules.delete(&key).map_err(map_err("file_rules"))?;
        }
        let stale: Vec<Vec<u8>> = m
            .rule_values
            .keys()
            .filter(|k| k.first() == Some(&gen))
            .collect();
        for key in stale {
            m.rule_values
                .delete(&key)
                .map_err(map_err("file_rule_values"))?;
        }
        Ok(())
    }

    fn write_generation(&self, gen: u8, c: &Compiled) -> Result<(), LoadError> {
        let m = &self.inner;
        let none = [NO_RULE; PATH_KINDS];
        for (path, value) in &c.paths {
            let mut key = shrike_watch_key {
                prefixlen: 8 * (1 + path.len() as u32),
                gen,
                ..Default::default()
            };
            key.path[..path.len()].copy_from_slice(path);
            let rule = c.path_rules.get(path).copied().unwrap_or(none);
            m.paths
                .update(
                    bytes_of(&key),
                    bytes_of(&value.to_kernel(rule)),
                    MapFlags::ANY,
                )
                .map_err(map_err("watch_paths"))?;
        }
        for (hash, value) in &c.names {
            let key = shrike_watch_name_key {
                gen,
                name_hash: *hash,
                ..Default::default()
            };
            let rule = c.name_rules.get(hash).copied().unwrap_or(none);
            m.names
                .update(
                    bytes_of(&key),
                    bytes_of(&value.to_kernel(rule)),
                    MapFlags::ANY,
                )
                .map_err(map_err("watch_names"))?;
        }
        for ((kind, index), r) in &c.rules {
            let key = shrike_file_rule_key {
                gen,
                kind: *kind,
                rule: *index,
            };
            let value = shrike_file_rule {
                flags: r.flags,
                access: r.access,
                access_excl: r.access_excluded,
                action: r.action,
                ..Default::default()
            };
            m.rules
                .update(bytes_of(&key), bytes_of(&value), MapFlags::ANY)
                .map_err(map_err("file_rules"))?;
        }
        for (kind, index, vkind, value) in &c.values {
            let key = shrike_file_rule_value_key {
                gen,
                kind: *kind,
                rule: *index,
                vkind: *vkind,
                value: *value,
            };
            m.rule_values
                .update(bytes_of(&key), &[1u8], MapFlags::ANY)
                .map_err(map_err("file_rule_values"))?;
        }
        for (kind, list) in c.lists.iter().enumerate() {
            let mut value = shrike_rule_list {
                count: list.len() as u32,
                ..Default::default()
            };
            value.rule[..list.len()].copy_from_slice(list);
            let idx = u32::from(gen) * ENF_KINDS as u32 + kind as u32;
            m.rule_lists
                .update(&idx.to_ne_bytes(), bytes_of(&value), MapFlags::ANY)
                .map_err(map_err("file_rule_lists"))?;
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
            rules: MapHandle::try_from(&skel.maps.file_rules).map_err(map_err("file_rules"))?,
            rule_values: MapHandle::try_from(&skel.maps.file_rule_values)
                .map_err(map_err("file_rule_values"))?,
            rule_lists: MapHandle::try_from(&skel.maps.file_rule_lists)
                .map_err(map_err("file_rule_lists"))?,
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

    fn deny(index: u16, kind: EnforceKind, site: RuleSite) -> FileRule {
        FileRule {
            index,
            kind,
            action: RuleAction::Deny,
            site,
            access: Access::ANY,
            access_excluded: Access::ANY,
            values: Vec::new(),
        }
    }

    fn on(patterns: &[Pattern]) -> RuleSite {
        RuleSite::Path {
            patterns: patterns.to_vec(),
            new_path: false,
        }
    }

    #[test]
    fn rules_sit_on_their_paths_per_kind_and_prefix_rules_fold_into_longer_entries() {
        let open = EnforceKind::File(WatchKind::Open);
        let unlink = EnforceKind::File(WatchKind::Unlink);
        let set = WatchSet {
            watches: vec![w(
                Pattern::Exact("/srv/a/b".into()),
                &[WatchKind::Chmod],
                Access::ANY,
            )],
            rules: vec![
                deny(3, open, on(&[Pattern::Exact("/etc/shadow".into())])),
                deny(4, unlink, on(&[Pattern::Prefix("/srv/a/".into())])),
                deny(5, open, on(&[Pattern::Name("id_rsa".into())])),
                FileRule {
                    values: vec![(RuleValue::BinaryNotIn, fnv1a(b"sshd"))],
                    ..deny(6, EnforceKind::Ptrace, RuleSite::Every)
                },
            ],
            ..Default::default()
        };
        let c = compile(&set).unwrap();
        assert!(c.not_enforced.is_empty(), "{:?}", c.not_enforced);
        let shadow = c.path_rules[b"/etc/shadow\0".as_slice()];
        assert_eq!(shadow[usize::from(open.index())], 3);
        assert_eq!(shadow[usize::from(unlink.index())], NO_RULE);
        assert_eq!(
            c.paths[b"/etc/shadow\0".as_slice()].kinds,
            WatchKind::Open.bit(),
            "a rule's path is watched for its kind"
        );
        // The watched exact path under the ruled prefix takes the prefix's rule.
        assert_eq!(
            c.path_rules[b"/srv/a/b\0".as_slice()][usize::from(unlink.index())],
            4
        );
        assert_eq!(
            c.name_rules[&fnv1a(b"id_rsa")][usize::from(open.index())],
            5
        );
        assert_eq!(c.lists[usize::from(EnforceKind::Ptrace.index())], [6]);
        let ptrace = c.rules[&(EnforceKind::Ptrace.index(), 6)];
        assert_eq!(ptrace.flags, RuleValue::BinaryNotIn.flag());
        assert!(c.values.contains(&(
            EnforceKind::Ptrace.index(),
            6,
            RuleValue::BinaryNotIn.flag(),
            fnv1a(b"sshd")
        )));
        assert_eq!(
            c.enforce,
            (1 << open.index()) | (1 << unlink.index()) | (1 << EnforceKind::Ptrace.index())
        );
    }

    #[test]
    fn rules_the_layout_cannot_hold_are_named_not_loaded_half() {
        let open = EnforceKind::File(WatchKind::Open);
        let long = format!("/{}", "x".repeat(300));
        let mut rules = vec![
            deny(1, open, on(&[Pattern::Exact("/etc/shadow".into())])),
            deny(2, open, on(&[Pattern::Exact("/etc/shadow".into())])),
            deny(3, open, on(&[Pattern::Exact(long)])),
        ];
        for i in 0..=RULES_PER_KIND as u16 {
            rules.push(deny(10 + i, EnforceKind::BpfLoad, RuleSite::Every));
        }
        let c = compile(&WatchSet {
            rules,
            ..Default::default()
        })
        .unwrap();
        let why = |i: u16| {
            c.not_enforced
                .iter()
                .find(|(r, _)| *r == i)
                .map(|(_, w)| w.clone())
                .unwrap_or_default()
        };
        assert!(
            why(2).contains("rule 1 already acts on file_open"),
            "{}",
            why(2)
        );
        assert!(why(3).contains("longer than"), "{}", why(3));
        assert!(!c.rules.contains_key(&(open.index(), 3)));
        assert!(why(10 + RULES_PER_KIND as u16).contains("without a path"));
        assert_eq!(
            c.lists[usize::from(EnforceKind::BpfLoad.index())].len(),
            RULES_PER_KIND
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
