//! The dimensions a BPF program can read for an event ([`Dim`]), which fields push down to
//! which dimension and in what role, and the value sets ([`PathSet`], [`ValueSet`]) a
//! constraint tests a dimension against.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::fields::basename;

/// A value the kernel can read for an event and test against a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    /// `file.path` (base-name constraints come from `file.name` and `endswith /name`).
    Path,
    /// `file.new_path` of renames and links.
    NewPath,
    /// `process.binary` (names from `process.name`).
    Binary,
    /// `process.script`: the `#!` script an interpreter runs (exec events).
    Script,
    /// `parent.binary` (names from `parent.name`).
    ParentBinary,
    /// The binaries of the ancestors (exec_id lineage map). `include`: some ancestor matches;
    /// `exclude`: no ancestor matches.
    Ancestors,
    /// `file.access` words (`read`, `write`, `create`, `truncate`) derived from the open flags,
    /// as `exact` entries of a path set. `include`: the access has one of them; `exclude`: none.
    Access,
    /// `file.mode.setuid` and `file.mode.setgid`: the set-id bits of a chmod's new mode, as the
    /// words `setuid` and `setgid` (the kernel's filter passes a chmod whose new mode has
    /// either). `include`: the mode has one of them; `exclude`: none.
    Setid,
    Uid,
    Euid,
    CgroupId,
    /// `ptrace.target_binary`: the traced process's binary (lineage map).
    TargetBinary,
    Dport,
    Sport,
    Daddr,
    Saddr,
}

/// How a pushable field maps onto its dimension.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The whole string: exact values and prefixes.
    Whole,
    /// The last path component.
    Name,
    Num,
    Addr,
    /// One of the fixed `file.access` words.
    Word,
    /// A boolean field that is one word of a list dimension when true.
    Bit(&'static str),
}

/// The words of `file.access`.
pub(super) const ACCESS_WORDS: &[&str] = &["read", "write", "create", "truncate"];

/// Dimensions whose field is a list: an include means "some element", so two includes cannot
/// be intersected.
pub(super) fn list_dim(dim: Dim) -> bool {
    matches!(dim, Dim::Ancestors | Dim::Access | Dim::Setid)
}

/// The fields a BPF program can test, as data: (field, dimension, role).
pub(super) const PUSHABLE: &[(&str, Dim, Role)] = &[
    ("file.path", Dim::Path, Role::Whole),
    ("file.name", Dim::Path, Role::Name),
    ("file.new_path", Dim::NewPath, Role::Whole),
    ("file.new_name", Dim::NewPath, Role::Name),
    ("process.binary", Dim::Binary, Role::Whole),
    ("process.name", Dim::Binary, Role::Name),
    ("process.script", Dim::Script, Role::Whole),
    ("parent.binary", Dim::ParentBinary, Role::Whole),
    ("parent.name", Dim::ParentBinary, Role::Name),
    ("ancestors.binary", Dim::Ancestors, Role::Whole),
    ("ancestors.name", Dim::Ancestors, Role::Name),
    ("file.access", Dim::Access, Role::Word),
    ("file.mode.setuid", Dim::Setid, Role::Bit("setuid")),
    ("file.mode.setgid", Dim::Setid, Role::Bit("setgid")),
    ("process.uid", Dim::Uid, Role::Num),
    ("process.euid", Dim::Euid, Role::Num),
    ("process.cgroup_id", Dim::CgroupId, Role::Num),
    ("ptrace.target_binary", Dim::TargetBinary, Role::Whole),
    ("network.dport", Dim::Dport, Role::Num),
    ("network.sport", Dim::Sport, Role::Num),
    ("network.daddr", Dim::Daddr, Role::Addr),
    ("network.saddr", Dim::Saddr, Role::Addr),
];

/// Order in which a rule's include-constraints are preferred for the per-kind first stage.
pub(super) const INTEREST_ORDER: &[Dim] = &[
    Dim::Path,
    Dim::NewPath,
    Dim::Setid,
    Dim::Binary,
    Dim::Script,
    Dim::Dport,
    Dim::Daddr,
    Dim::ParentBinary,
    Dim::CgroupId,
    Dim::Uid,
    Dim::Euid,
    Dim::TargetBinary,
    Dim::Sport,
    Dim::Saddr,
    Dim::Ancestors,
    Dim::Access,
];

/// Paths (or binaries): a value matches when it equals an `exact` entry, starts with a `prefix`,
/// or its last component equals a `name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathSet {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub exact: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub prefixes: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub names: BTreeSet<String>,
}

impl PathSet {
    pub fn matches(&self, value: &str) -> bool {
        self.exact.contains(value)
            || self.prefixes.iter().any(|p| value.starts_with(p.as_str()))
            || self.names.contains(basename(value))
    }

    fn only_exact(&self) -> bool {
        self.prefixes.is_empty() && self.names.is_empty()
    }

    pub(super) fn union(&mut self, other: &PathSet) {
        self.exact.extend(other.exact.iter().cloned());
        self.prefixes.extend(other.prefixes.iter().cloned());
        self.names.extend(other.names.iter().cloned());
    }

    /// Drops entries another entry already covers (an exact path under a prefix, a longer prefix
    /// under a shorter one), so the maps stay small.
    pub(super) fn normalize(&mut self) {
        let prefixes: Vec<String> = self.prefixes.iter().cloned().collect();
        self.prefixes.retain(|p| {
            !prefixes
                .iter()
                .any(|q| q.len() < p.len() && p.starts_with(q.as_str()))
        });
        let kept = self.prefixes.clone();
        let names = self.names.clone();
        self.exact.retain(|e| {
            !kept.iter().any(|p| e.starts_with(p.as_str())) && !names.contains(basename(e))
        });
    }
}

/// A set of values of one dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSet {
    Paths(PathSet),
    Numbers(BTreeSet<i64>),
    Networks(BTreeSet<Cidr>),
}

impl ValueSet {
    pub(super) fn union(&mut self, other: &ValueSet) -> bool {
        match (self, other) {
            (ValueSet::Paths(a), ValueSet::Paths(b)) => a.union(b),
            (ValueSet::Numbers(a), ValueSet::Numbers(b)) => a.extend(b.iter().copied()),
            (ValueSet::Networks(a), ValueSet::Networks(b)) => a.extend(b.iter().copied()),
            _ => return false,
        }
        true
    }

    /// The intersection, when it can be represented exactly.
    pub(super) fn intersect(&self, other: &ValueSet) -> Option<ValueSet> {
        match (self, other) {
            (ValueSet::Numbers(a), ValueSet::Numbers(b)) => {
                Some(ValueSet::Numbers(a.intersection(b).copied().collect()))
            }
            (ValueSet::Paths(a), ValueSet::Paths(b)) if a.only_exact() => {
                Some(ValueSet::Paths(PathSet {
                    exact: a.exact.iter().filter(|e| b.matches(e)).cloned().collect(),
                    ..PathSet::default()
                }))
            }
            (ValueSet::Paths(_), ValueSet::Paths(b)) if b.only_exact() => other.intersect(self),
            _ => None,
        }
    }

    pub(super) fn normalize(&mut self) {
        if let ValueSet::Paths(p) = self {
            p.normalize();
        }
    }
}
