//! The deny/kill rules of the family that the kernel decides alone ([`FileRule`]): what a rule
//! acts on ([`EnforceKind`]), where the kernel finds it ([`RuleSite`]) and the constraints it
//! tests besides its path ([`RuleValue`]), with the layout limits of `bpf/abi/file.h`.

use crate::abi::file::{
    shrike_enforce_kind, shrike_file_rule_flags, shrike_watch_kind, shrike_watch_value,
};
use crate::abi::shrike_enforce_limits;
use crate::enforce::RuleAction;

use super::{Access, Pattern, WatchKind};

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
            EnforceKind::File(WatchKind::Utimes) => shrike_enforce_kind::SHRIKE_ENF_UTIMES,
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
            EnforceKind::File(WatchKind::Utimes) => "file_utimes",
            EnforceKind::ModuleLoad => "module_load",
            EnforceKind::BpfLoad => "bpf_load",
            EnforceKind::Ptrace => "ptrace",
        })
    }
}

/// Where the kernel finds a file-family rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSite {
    /// By the operation's path, or its new path (renames, links) with `new_path`, except on
    /// the paths `excluded` names (exact paths and prefixes: each gets an entry of its own that
    /// leaves the rule out).
    Path {
        patterns: Vec<Pattern>,
        new_path: bool,
        excluded: Vec<Pattern>,
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
pub(super) const ENF_KINDS: usize = shrike_enforce_kind::SHRIKE_ENF_KINDS.0 as usize;
/// Kinds with paths (`SHRIKE_ENF_PATH_KINDS`): the length of a watch entry's rule array.
pub(super) const PATH_KINDS: usize = shrike_enforce_kind::SHRIKE_ENF_PATH_KINDS.0 as usize;
/// No rule in a watch entry's slot (`SHRIKE_NO_RULE`).
pub(super) const NO_RULE: u16 = shrike_enforce_limits::SHRIKE_NO_RULE.0 as u16;

// The kernel finds a path kind's rules in a watch entry's rule[k], k the kind's SHRIKE_WATCH_*
// bit number (bpf/lib/file_pathops.h enf_kind_of): every path kind has its slot, in that
// order, before the kinds without paths; the entry is the three u32 words then the slots.
const _: () = {
    use shrike_enforce_kind as E;
    use shrike_watch_kind as W;
    assert!(W::SHRIKE_WATCH_OPEN.0 == 1 << E::SHRIKE_ENF_OPEN.0);
    assert!(W::SHRIKE_WATCH_UNLINK.0 == 1 << E::SHRIKE_ENF_UNLINK.0);
    assert!(W::SHRIKE_WATCH_RENAME.0 == 1 << E::SHRIKE_ENF_RENAME.0);
    assert!(W::SHRIKE_WATCH_CHMOD.0 == 1 << E::SHRIKE_ENF_CHMOD.0);
    assert!(W::SHRIKE_WATCH_CHOWN.0 == 1 << E::SHRIKE_ENF_CHOWN.0);
    assert!(W::SHRIKE_WATCH_LINK.0 == 1 << E::SHRIKE_ENF_LINK.0);
    assert!(W::SHRIKE_WATCH_UTIMES.0 == 1 << E::SHRIKE_ENF_UTIMES.0);
    assert!(PATH_KINDS == WatchKind::ALL.len());
    assert!(E::SHRIKE_ENF_MODULE.0 as usize == PATH_KINDS);
    assert!(ENF_KINDS == PATH_KINDS + 3);
    assert!(std::mem::size_of::<shrike_watch_value>() == (12 + 2 * PATH_KINDS).next_multiple_of(4));
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_kind_has_the_rule_slot_of_its_watch_bit() {
        for k in WatchKind::ALL {
            assert_eq!(k.bit(), 1 << EnforceKind::File(k).index(), "{k:?}");
        }
        assert_eq!(
            EnforceKind::File(WatchKind::Utimes).to_string(),
            "file_utimes"
        );
    }
}
