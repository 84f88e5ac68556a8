//! Kernel push-down: what each rule lets the kernel decide, as a [`KernelPlan`] the sensors load
//! into BPF maps.
//!
//! For every enabled rule and every event kind it can match, the compiler rewrites the condition
//! (with exceptions folded in as `and not …`) into negation normal form, substitutes the kind,
//! and extracts a **necessary** conjunction of constraints on the dimensions a BPF program can
//! read ([`Dim`]: the file path, the binary, uids, ports, addresses, cgroup, lineage). Necessary
//! means: whenever the rule matches an event, the event satisfies the constraints. So a filter
//! built from them never drops an event some rule could match. When the constraints say
//! *everything* the condition says, the entry is `exact` and the kernel can decide (and enforce)
//! the rule alone; otherwise the user-space `residual` is shown and the whole rule is checked
//! again in user space.
//!
//! ## How a sensor uses the plan
//!
//! 1. **Arm** a sensor only for the kinds in [`KernelPlan::kinds`] (no file rules: no file
//!    sensor).
//! 2. **First-stage filter** per kind ([`KindPlan`]): if `pass_all`, send every event. Otherwise
//!    send an event only when it matches at least one entry of `interest` (each dimension's set is
//!    the union, over the kind's rules, of one necessary include-constraint per rule). For paths:
//!    an exact-path hash map, an LPM trie (or sorted list) of prefixes, and a hash map of base
//!    names.
//! 3. **Per-rule entries** ([`RulePlan`]): for rules with `enforcement` = `kernel` or
//!    `kernel_audit`, evaluate the entry's constraints (all must hold; see [`DimConstraint`]) and,
//!    on a hit, deny/kill (or only report, for audit) and put the rule's `index` in the record so
//!    the alert can say which rule acted. Rule indexes are < 65536; a per-kind bitmask over
//!    the kind's rules fits the Tetragon-style "selector" layout.
//! 4. **Unknown values.** If the kernel cannot read a dimension (no lineage entry for the parent,
//!    a path it could not resolve), the event must be sent and the rule must not be enforced in
//!    the kernel: user space then decides, and reports `alerted`.
//!
//! [`KernelPlan::admits`] and [`KernelPlan::enforced_by_kernel`] implement exactly these semantics
//! in Rust: they are the reference the BPF side is tested against.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use shrike_event::{Event, EventKind};

use crate::cidr::{canonical, Cidr};
use crate::cond::{CmpOp, Cond, FieldRef, Pred, Test};
use crate::fields::{basename, FIELDS};
use crate::kinds::{self, KindSet};
use crate::meta::{Action, Mode};
use crate::policy::CompiledRule;
use crate::scope::WorkloadScope;

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
enum Role {
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
const ACCESS_WORDS: &[&str] = &["read", "write", "create", "truncate"];

/// Dimensions whose field is a list: an include means "some element", so two includes cannot
/// be intersected.
fn list_dim(dim: Dim) -> bool {
    matches!(dim, Dim::Ancestors | Dim::Access | Dim::Setid)
}

/// The fields a BPF program can test, as data: (field, dimension, role).
const PUSHABLE: &[(&str, Dim, Role)] = &[
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
const INTEREST_ORDER: &[Dim] = &[
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

    fn union(&mut self, other: &PathSet) {
        self.exact.extend(other.exact.iter().cloned());
        self.prefixes.extend(other.prefixes.iter().cloned());
        self.names.extend(other.names.iter().cloned());
    }

    /// Drops entries another entry already covers (an exact path under a prefix, a longer prefix
    /// under a shorter one), so the maps stay small.
    fn normalize(&mut self) {
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
    fn union(&mut self, other: &ValueSet) -> bool {
        match (self, other) {
            (ValueSet::Paths(a), ValueSet::Paths(b)) => a.union(b),
            (ValueSet::Numbers(a), ValueSet::Numbers(b)) => a.extend(b.iter().copied()),
            (ValueSet::Networks(a), ValueSet::Networks(b)) => a.extend(b.iter().copied()),
            _ => return false,
        }
        true
    }

    /// The intersection, when it can be represented exactly.
    fn intersect(&self, other: &ValueSet) -> Option<ValueSet> {
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

    fn normalize(&mut self) {
        if let ValueSet::Paths(p) = self {
            p.normalize();
        }
    }
}

/// What one rule requires of one dimension. Both parts must hold when present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimConstraint {
    /// The value must be in this set (for [`Dim::Ancestors`]: some ancestor's binary must be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<ValueSet>,
    /// The value must not be in this set (for [`Dim::Ancestors`]: no ancestor's binary may be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ValueSet>,
}

/// Who carries out a deny/kill rule on one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// An `alert` rule: nothing to enforce.
    None,
    /// The kernel decides the whole rule and denies/kills.
    Kernel,
    /// The kernel decides the whole rule and reports `would_deny` without acting (audit mode).
    KernelAudit,
    /// The kernel cannot act on this rule; user space reports it as `alerted`.
    UserSpace { reason: String },
}

/// One rule on one event kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindRule {
    pub kind: EventKind,
    /// Necessary constraints (all must hold for the rule to match).
    pub constraints: BTreeMap<Dim, DimConstraint>,
    /// True when the constraints are the whole condition: no user-space residual.
    pub exact: bool,
    pub enforcement: Enforcement,
    /// What user space still has to check, as a condition; `None` when `exact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual: Option<String>,
    /// A condition on the container identity alone (`container.*`, `k8s.*`): the entry applies
    /// only to processes in the cgroups of the containers it covers. The constraints say
    /// nothing of it; the agent adds the cgroup set it keeps current ([`crate::WorkloadScope`]),
    /// and without that set the entry matches nothing in the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}

/// One enabled rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulePlan {
    /// The number kernel records carry to name the rule.
    pub index: u16,
    pub id: String,
    pub action: Action,
    pub mode: Mode,
    pub entries: Vec<KindRule>,
}

/// The first-stage filter for one event kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindPlan {
    pub kind: EventKind,
    /// Indexes of the rules that can match this kind.
    pub rules: Vec<u16>,
    /// Every event of this kind must reach user space (some rule's constraint is not pushable,
    /// e.g. `file.path endswith .so` alone).
    pub pass_all: bool,
    /// When not `pass_all`: an event is needed iff it matches at least one of these sets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interest: BTreeMap<Dim, ValueSet>,
}

/// Everything the kernel side loads for a policy. Serializable (JSON) for `explain --json`,
/// for tests, and for a loader that lives in another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelPlan {
    /// Layout version of this structure.
    pub format: u32,
    /// Kinds some enabled rule needs, in kind order; a kind not listed needs no sensor.
    pub kinds: Vec<KindPlan>,
    /// Enabled rules in index order.
    pub rules: Vec<RulePlan>,
}

/// Kinds where the kernel can make the action fail (LSM hook, or cgroup sock_addr hook; without
/// BPF LSM the file, module, BPF and ptrace kinds fall back to SIGKILL and say `killed`).
const DENY_KINDS: KindSet = KindSet::of(&[
    EventKind::ProcessExec,
    EventKind::FileOpen,
    EventKind::FileUnlink,
    EventKind::FileRename,
    EventKind::FileChmod,
    EventKind::FileChown,
    EventKind::FileLink,
    EventKind::ModuleLoad,
    EventKind::BpfLoad,
    EventKind::Ptrace,
    EventKind::NetConnect,
    EventKind::NetBind,
]);

/// Kinds where the kernel can SIGKILL the acting process at the hook: the deny kinds (a kill
/// rule also refuses the action where it can).
const KILL_KINDS: KindSet = DENY_KINDS;

// ---------------------------------------------------------------------------------------------
// Negation normal form, specialised to one kind.

#[derive(Debug, Clone)]
enum Nnf<'c> {
    Const(bool),
    Atom(&'c Pred, bool),
    And(Vec<Nnf<'c>>),
    Or(Vec<Nnf<'c>>),
}

fn nnf(c: &Cond, neg: bool, kind: EventKind) -> Nnf<'_> {
    match c {
        Cond::Kind(set) => Nnf::Const(set.contains(kind) != neg),
        Cond::Pred(p) => {
            if p.field.kinds().contains(kind) {
                Nnf::Atom(p, neg)
            } else {
                // The field never exists on this kind: the comparison is false.
                Nnf::Const(neg)
            }
        }
        Cond::Not(x) => nnf(x, !neg, kind),
        Cond::And(cs) | Cond::Or(cs) => {
            let and = matches!(c, Cond::And(_)) != neg;
            let parts = cs.iter().map(|x| nnf(x, neg, kind));
            junction(and, parts)
        }
    }
}

fn junction<'c>(and: bool, parts: impl Iterator<Item = Nnf<'c>>) -> Nnf<'c> {
    let mut out = Vec::new();
    for p in parts {
        match p {
            Nnf::Const(b) if b == and => {}
            Nnf::Const(b) => return Nnf::Const(b),
            Nnf::And(inner) if and => out.extend(inner),
            Nnf::Or(inner) if !and => out.extend(inner),
            other => out.push(other),
        }
    }
    match out.len() {
        0 => Nnf::Const(and),
        1 => out.remove(0),
        _ if and => Nnf::And(out),
        _ => Nnf::Or(out),
    }
}

impl fmt::Display for Nnf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Nnf::Const(b) => write!(f, "{b}"),
            Nnf::Atom(p, false) => write!(f, "{p}"),
            Nnf::Atom(p, true) => write!(f, "not {p}"),
            Nnf::And(parts) | Nnf::Or(parts) => {
                let sep = if matches!(self, Nnf::And(_)) {
                    " and "
                } else {
                    " or "
                };
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    match p {
                        Nnf::And(_) | Nnf::Or(_) => write!(f, "({p})")?,
                        _ => write!(f, "{p}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Atoms to constraints.

fn pushable(field: &FieldRef) -> Option<(Dim, Role)> {
    let FieldRef::Table(i) = field else {
        return None;
    };
    let name = FIELDS.get(*i)?.name;
    PUSHABLE
        .iter()
        .find(|(f, _, _)| *f == name)
        .map(|(_, d, r)| (*d, *r))
}

fn paths(
    exact: impl IntoIterator<Item = String>,
    prefixes: impl IntoIterator<Item = String>,
) -> ValueSet {
    ValueSet::Paths(PathSet {
        exact: exact.into_iter().collect(),
        prefixes: prefixes.into_iter().collect(),
        names: BTreeSet::new(),
    })
}

fn names(items: impl IntoIterator<Item = String>) -> ValueSet {
    ValueSet::Paths(PathSet {
        names: items.into_iter().collect(),
        ..PathSet::default()
    })
}

/// `(set, positive, exact)`: the constraint an atom puts on its dimension.
fn atom_set(test: &Test, role: Role, list: bool) -> Option<(ValueSet, bool, bool)> {
    let strs = |xs: &[Box<str>]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Some(match (role, test) {
        (Role::Whole, Test::StrEq(x)) => (paths([x.to_string()], []), true, true),
        (Role::Whole, Test::StrIn(s)) => (paths(s.iter().map(|x| x.to_string()), []), true, true),
        (Role::Whole, Test::StrNe(x)) if !list => (paths([x.to_string()], []), false, true),
        (Role::Whole, Test::StartsWith(xs)) => {
            if xs.iter().any(|x| x.is_empty()) {
                return None;
            }
            (paths([], strs(xs)), true, true)
        }
        (Role::Whole, Test::EndsWith(xs)) => {
            // `endswith /name` is exactly "the last component is name".
            let mut out = Vec::new();
            for x in xs.iter() {
                let name = x.strip_prefix('/')?;
                if name.is_empty() || name.contains('/') {
                    return None;
                }
                out.push(name.to_string());
            }
            (names(out), true, true)
        }
        (Role::Whole, Test::Glob(gs)) => {
            let mut exact = Vec::new();
            let mut prefixes = Vec::new();
            let mut precise = true;
            for g in gs.iter() {
                if g.is_literal() {
                    exact.push(g.literal_prefix());
                } else {
                    let p = g.literal_prefix();
                    if p.is_empty() {
                        return None;
                    }
                    precise &= g.is_prefix_pattern();
                    prefixes.push(p);
                }
            }
            (paths(exact, prefixes), true, precise)
        }
        (Role::Word, Test::StrEq(x)) => (paths([x.to_string()], []), true, true),
        (Role::Word, Test::StrIn(s)) => (paths(s.iter().map(|x| x.to_string()), []), true, true),
        (Role::Word, Test::Contains(xs)) => {
            // Each access word contains no other, so `contains read` is `= read`.
            if !xs.iter().all(|x| ACCESS_WORDS.contains(&&**x)) {
                return None;
            }
            (paths(strs(xs), []), true, true)
        }
        (Role::Bit(word), Test::Bool(set)) => (paths([word.to_string()], []), *set, true),
        (Role::Name, Test::StrEq(x)) => (names([x.to_string()]), true, true),
        (Role::Name, Test::StrIn(s)) => (names(s.iter().map(|x| x.to_string())), true, true),
        (Role::Name, Test::StrNe(x)) if !list => (names([x.to_string()]), false, true),
        (Role::Num, Test::Num(CmpOp::Eq, x)) => (ValueSet::Numbers([*x].into()), true, true),
        (Role::Num, Test::Num(CmpOp::Ne, x)) if !list => {
            (ValueSet::Numbers([*x].into()), false, true)
        }
        (Role::Num, Test::NumIn(s)) => (ValueSet::Numbers(s.iter().copied().collect()), true, true),
        (Role::Addr, Test::AddrEq(a)) => (host(*a), true, true),
        (Role::Addr, Test::AddrNe(a)) if !list => (host(*a), false, true),
        (Role::Addr, Test::AddrIn(s)) => {
            let mut set = BTreeSet::new();
            for a in s {
                if let ValueSet::Networks(n) = host(*a) {
                    set.extend(n);
                }
            }
            (ValueSet::Networks(set), true, true)
        }
        (Role::Addr, Test::Cidr(nets)) => (
            ValueSet::Networks(nets.iter().copied().collect()),
            true,
            true,
        ),
        _ => return None,
    })
}

fn host(a: IpAddr) -> ValueSet {
    let a = canonical(a);
    let prefix = if a.is_ipv4() { 32 } else { 128 };
    ValueSet::Networks([Cidr { addr: a, prefix }].into())
}

/// The constraint an atom (possibly negated) puts on its dimension, and whether it is exact.
fn atom(p: &Pred, negated: bool) -> Option<(Dim, DimConstraint, bool)> {
    let (dim, role) = pushable(&p.field)?;
    let list = p.field.is_list();
    let (set, positive, exact) = atom_set(&p.test, role, list)?;
    // `not (x != v)` is `x = v` only for single-valued fields; a negated inexact set says nothing.
    if negated && (!exact || (!positive && list)) {
        return None;
    }
    let include = positive != negated;
    let c = if include {
        DimConstraint {
            include: Some(set),
            exclude: None,
        }
    } else {
        DimConstraint {
            include: None,
            exclude: Some(set),
        }
    };
    Some((dim, c, exact))
}

// ---------------------------------------------------------------------------------------------
// Necessary conjunctions.

type Conj = BTreeMap<Dim, DimConstraint>;

/// Adds `c` to `into` (both must hold). Returns false when information was dropped.
fn and_into(into: &mut Conj, dim: Dim, c: DimConstraint) -> bool {
    let slot = into.entry(dim).or_default();
    let mut lossless = true;
    slot.include = match (slot.include.take(), c.include) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => match (!list_dim(dim)).then(|| a.intersect(&b)).flatten() {
            Some(r) => Some(r),
            None => {
                lossless = false;
                Some(a)
            }
        },
    };
    slot.exclude = match (slot.exclude.take(), c.exclude) {
        (None, x) | (x, None) => x,
        (Some(mut a), Some(b)) => {
            lossless &= a.union(&b);
            Some(a)
        }
    };
    lossless
}

/// One of `a` or `b` holds: keeps what both branches require.
fn or_merge(a: &Conj, b: &Conj) -> Conj {
    let mut out = Conj::new();
    for (dim, ca) in a {
        let Some(cb) = b.get(dim) else { continue };
        let include = match (&ca.include, &cb.include) {
            (Some(x), Some(y)) => {
                let mut u = x.clone();
                u.union(y).then_some(u)
            }
            _ => None,
        };
        let exclude = match (&ca.exclude, &cb.exclude) {
            (Some(x), Some(y)) if x == y => Some(x.clone()),
            _ => None,
        };
        if include.is_some() || exclude.is_some() {
            out.insert(*dim, DimConstraint { include, exclude });
        }
    }
    out
}

/// What the kernel can check of a specialised condition.
struct Split<'n, 'c> {
    conj: Conj,
    exact: bool,
    residual: Vec<&'n Nnf<'c>>,
    /// Parts that read only the container identity (see [`crate::scope`]).
    workload: Vec<&'n Nnf<'c>>,
}

/// `None` when the condition can never be true on this kind.
fn split<'n, 'c>(n: &'n Nnf<'c>) -> Option<Split<'n, 'c>> {
    let mut s = Split {
        conj: Conj::new(),
        exact: true,
        residual: Vec::new(),
        workload: Vec::new(),
    };
    match n {
        Nnf::Const(false) => return None,
        Nnf::Const(true) => {}
        Nnf::And(parts) => {
            for p in parts {
                s.add(p)?;
            }
        }
        other => s.add(other)?,
    }
    Some(s)
}

impl<'n, 'c> Split<'n, 'c> {
    fn add(&mut self, n: &'n Nnf<'c>) -> Option<()> {
        if workload_only(n) {
            self.workload.push(n);
            return Some(());
        }
        match n {
            Nnf::Const(false) => return None,
            Nnf::Const(true) => {}
            Nnf::Atom(p, neg) => match atom(p, *neg) {
                Some((dim, c, exact)) => {
                    let lossless = and_into(&mut self.conj, dim, c);
                    if !(exact && lossless) {
                        self.exact = false;
                        self.residual.push(n);
                    }
                }
                None => {
                    self.exact = false;
                    self.residual.push(n);
                }
            },
            Nnf::Or(branches) => {
                let mut merged: Option<Conj> = None;
                for b in branches {
                    let Some(bs) = split(b) else { continue };
                    merged = Some(match merged {
                        None => bs.conj,
                        Some(m) => or_merge(&m, &bs.conj),
                    });
                }
                let merged = merged?;
                for (dim, c) in merged {
                    and_into(&mut self.conj, dim, c);
                }
                self.exact = false;
                self.residual.push(n);
            }
            Nnf::And(parts) => {
                for p in parts {
                    self.add(p)?;
                }
            }
        }
        Some(())
    }
}

/// Whether every comparison in `n` reads only the container identity.
fn workload_only(n: &Nnf<'_>) -> bool {
    match n {
        Nnf::Const(_) => false,
        Nnf::Atom(p, _) => crate::scope::is_workload_field(&p.field),
        Nnf::And(parts) | Nnf::Or(parts) => parts.iter().all(workload_only),
    }
}

/// `n` as a condition again (for evaluating a workload part on its own).
fn to_cond(n: &Nnf<'_>) -> Cond {
    match n {
        Nnf::Const(true) => Cond::And(Vec::new()),
        Nnf::Const(false) => Cond::Or(Vec::new()),
        Nnf::Atom(p, neg) => {
            let c = Cond::Pred(Box::new((*p).clone()));
            if *neg {
                Cond::Not(Box::new(c))
            } else {
                c
            }
        }
        Nnf::And(parts) => Cond::And(parts.iter().map(to_cond).collect()),
        Nnf::Or(parts) => Cond::Or(parts.iter().map(to_cond).collect()),
    }
}

fn conj_text(parts: &[&Nnf<'_>]) -> String {
    parts
        .iter()
        .map(|r| match r {
            Nnf::Or(_) => format!("({r})"),
            _ => r.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

// ---------------------------------------------------------------------------------------------
// First-stage interest: alternatives, any of which an event must match.

type Alternatives = BTreeMap<Dim, ValueSet>;

/// Adds `b`'s alternatives to `a`. False when two sets of one dimension cannot be merged.
fn union_into(a: &mut Alternatives, b: &Alternatives) -> bool {
    for (dim, set) in b {
        match a.get_mut(dim) {
            Some(existing) => {
                if !existing.union(set) {
                    return false;
                }
            }
            None => {
                a.insert(*dim, set.clone());
            }
        }
    }
    true
}

/// How good a set of alternatives is as a first-stage filter (lower is better): the worst
/// dimension it uses, then how many it uses.
fn score(alts: &Alternatives) -> (usize, usize) {
    let worst = alts
        .keys()
        .map(|d| {
            INTEREST_ORDER
                .iter()
                .position(|x| x == d)
                .unwrap_or(usize::MAX)
        })
        .max()
        .unwrap_or(0);
    (worst, alts.len())
}

/// Alternatives such that every event the condition can be true for matches one of them;
/// `None` when no such set exists (every event of the kind is needed). An empty map means the
/// condition is never true.
fn interest(n: &Nnf<'_>) -> Option<Alternatives> {
    match n {
        Nnf::Const(false) => Some(Alternatives::new()),
        Nnf::Const(true) => None,
        Nnf::Atom(p, neg) => {
            let (dim, c, _) = atom(p, *neg)?;
            Some([(dim, c.include?)].into())
        }
        Nnf::And(parts) => parts.iter().filter_map(interest).min_by_key(score),
        Nnf::Or(parts) => {
            let mut out = Alternatives::new();
            for p in parts {
                if !union_into(&mut out, &interest(p)?) {
                    return None;
                }
            }
            Some(out)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The plan.

fn enforcement(
    action: Action,
    mode: Mode,
    kind: EventKind,
    exact: bool,
    scoped: bool,
) -> Enforcement {
    if action == Action::Alert {
        return Enforcement::None;
    }
    if !exact {
        return Enforcement::UserSpace {
            reason: "the condition needs fields only user space has, so the kernel cannot decide it before the action completes".into(),
        };
    }
    if scoped && kind != EventKind::ProcessExec {
        return Enforcement::UserSpace {
            reason: format!("the kernel holds a workload scope (container.*, k8s.*) as a cgroup set for process_exec rules only, not for {kind}"),
        };
    }
    let capable = match action {
        Action::Deny => DENY_KINDS.contains(kind),
        _ => KILL_KINDS.contains(kind),
    };
    if !capable {
        let fix = if action == Action::Deny && KILL_KINDS.contains(kind) {
            "; use action: kill"
        } else {
            ""
        };
        return Enforcement::UserSpace {
            reason: format!("the kernel cannot {} {kind} events{fix}", action.as_str()),
        };
    }
    match mode {
        Mode::Enforce => Enforcement::Kernel,
        Mode::Audit => Enforcement::KernelAudit,
    }
}

/// Builds the plan for the enabled rules, and the workload scopes of its entries.
pub(crate) fn plan(rules: &[CompiledRule]) -> (KernelPlan, Vec<WorkloadScope>) {
    let mut kind_plans: BTreeMap<usize, KindPlan> = BTreeMap::new();
    let mut rule_plans = Vec::new();
    let mut scopes = Vec::new();
    for rule in rules.iter().filter(|r| r.info.enabled) {
        let effective = rule.effective();
        let mut entries = Vec::new();
        for kind in rule.kinds.iter() {
            let n = nnf(&effective, false, kind);
            let Some(mut s) = split(&n) else { continue };
            let mut workload = None;
            if !s.workload.is_empty() {
                let cond = Cond::And(s.workload.iter().map(|w| to_cond(w)).collect());
                // A set of containers' cgroups: only when the part is false for a process in
                // no container, and the rule has no cgroup constraint of its own to meet.
                let scopable = s.exact
                    && !crate::scope::eval_on(&cond, kind, None, None)
                    && !s.conj.contains_key(&Dim::CgroupId);
                if scopable {
                    let text = conj_text(&s.workload);
                    scopes.push(WorkloadScope::new(
                        rule.info.index,
                        kind,
                        text.clone(),
                        cond,
                    ));
                    workload = Some(text);
                } else {
                    s.exact = false;
                    let parts = std::mem::take(&mut s.workload);
                    s.residual.extend(parts);
                }
            }
            let residual = (!s.exact).then(|| conj_text(&s.residual));
            let kp = kind_plans
                .entry(kinds::kind_index(kind))
                .or_insert_with(|| KindPlan {
                    kind,
                    rules: Vec::new(),
                    pass_all: false,
                    interest: BTreeMap::new(),
                });
            kp.rules.push(rule.info.index);
            match interest(&n) {
                Some(alternatives) if !kp.pass_all => {
                    if !union_into(&mut kp.interest, &alternatives) {
                        kp.pass_all = true;
                        kp.interest.clear();
                    }
                }
                Some(_) => {}
                None => {
                    kp.pass_all = true;
                    kp.interest.clear();
                }
            }
            entries.push(KindRule {
                kind,
                enforcement: enforcement(
                    rule.info.action,
                    rule.info.mode,
                    kind,
                    s.exact,
                    workload.is_some(),
                ),
                constraints: s.conj,
                exact: s.exact,
                residual,
                workload,
            });
        }
        rule_plans.push(RulePlan {
            index: rule.info.index,
            id: rule.info.id.clone(),
            action: rule.info.action,
            mode: rule.info.mode,
            entries,
        });
    }
    let mut kinds: Vec<KindPlan> = kind_plans.into_values().collect();
    for kp in &mut kinds {
        for set in kp.interest.values_mut() {
            set.normalize();
        }
    }
    let plan = KernelPlan {
        format: 1,
        kinds,
        rules: rule_plans,
    };
    (plan, scopes)
}

// ---------------------------------------------------------------------------------------------
// Reference semantics (what the BPF side must do), used by tests and by offline tools.

enum DimValue<'e> {
    Unknown,
    One(&'e str),
    Many(Vec<&'e str>),
    Num(i64),
}

fn read_dim(dim: Dim, e: &Event) -> DimValue<'_> {
    let net = e.network.as_ref();
    match dim {
        Dim::Path => e
            .file
            .as_ref()
            .map_or(DimValue::Unknown, |f| DimValue::One(&f.path)),
        Dim::NewPath => e
            .file
            .as_ref()
            .and_then(|f| f.new_path.as_deref())
            .map_or(DimValue::Unknown, DimValue::One),
        Dim::Binary => DimValue::One(&e.process.binary),
        Dim::Script => e
            .process
            .script
            .as_deref()
            .map_or(DimValue::Unknown, DimValue::One),
        Dim::ParentBinary => e
            .parent
            .as_ref()
            .map_or(DimValue::Unknown, |p| DimValue::One(&p.binary)),
        Dim::Ancestors => DimValue::Many(e.ancestors.iter().map(|a| &*a.binary).collect()),
        Dim::Access => e.file.as_ref().map_or(DimValue::Unknown, |f| {
            DimValue::Many(f.access.iter().map(String::as_str).collect())
        }),
        Dim::Setid => e
            .file
            .as_ref()
            .and_then(|f| f.mode)
            .map_or(DimValue::Unknown, |m| {
                DimValue::Many(
                    [(0o4000, "setuid"), (0o2000, "setgid")]
                        .into_iter()
                        .filter(|(bit, _)| m & bit != 0)
                        .map(|(_, word)| word)
                        .collect(),
                )
            }),
        Dim::Uid => DimValue::Num(i64::from(e.process.uid)),
        Dim::Euid => DimValue::Num(i64::from(e.process.euid)),
        Dim::CgroupId => DimValue::Num(e.process.cgroup_id as i64),
        Dim::TargetBinary => e
            .ptrace
            .as_ref()
            .map_or(DimValue::Unknown, |p| DimValue::One(&p.target_binary)),
        Dim::Dport => net.map_or(DimValue::Unknown, |n| DimValue::Num(i64::from(n.dport))),
        Dim::Sport => net.map_or(DimValue::Unknown, |n| DimValue::Num(i64::from(n.sport))),
        Dim::Daddr => net.map_or(DimValue::Unknown, |n| DimValue::One(&n.daddr)),
        Dim::Saddr => net.map_or(DimValue::Unknown, |n| DimValue::One(&n.saddr)),
    }
}

fn set_matches(set: &ValueSet, value: &str) -> Option<bool> {
    match set {
        ValueSet::Paths(p) => Some(p.matches(value)),
        ValueSet::Networks(nets) => {
            let addr = value.parse::<IpAddr>().ok()?;
            Some(nets.iter().any(|n| n.contains(addr)))
        }
        ValueSet::Numbers(_) => None,
    }
}

/// Whether `value` is in `set`; `None` when unknown.
fn in_set(set: &ValueSet, value: &DimValue<'_>) -> Option<bool> {
    match (value, set) {
        (DimValue::Unknown, _) => None,
        (DimValue::Num(n), ValueSet::Numbers(s)) => Some(s.contains(n)),
        (DimValue::One(v), _) => set_matches(set, v),
        (DimValue::Many(vs), _) => {
            let mut any = false;
            for v in vs {
                any |= set_matches(set, v)?;
            }
            Some(any)
        }
        _ => None,
    }
}

impl KindRule {
    /// Whether the kernel would find all constraints satisfied; `None` when it cannot read a
    /// value it needs (then it must deliver the event and must not enforce).
    pub fn kernel_match(&self, e: &Event) -> Option<bool> {
        // A workload-scoped entry matches only in the cgroup set the agent adds.
        if e.kind != self.kind || self.workload.is_some() {
            return Some(false);
        }
        let mut unknown = false;
        for (dim, c) in &self.constraints {
            let v = read_dim(*dim, e);
            if let Some(inc) = &c.include {
                match in_set(inc, &v) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            if let Some(exc) = &c.exclude {
                match in_set(exc, &v) {
                    Some(true) => return Some(false),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
        }
        if unknown {
            None
        } else {
            Some(true)
        }
    }
}

impl KernelPlan {
    /// The first-stage filter for `kind`, if any rule needs it.
    pub fn kind(&self, kind: EventKind) -> Option<&KindPlan> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    /// Whether the first-stage filter sends `e` to user space.
    pub fn admits(&self, e: &Event) -> bool {
        let Some(kp) = self.kind(e.kind) else {
            return false;
        };
        kp.pass_all
            || kp
                .interest
                .iter()
                .any(|(dim, set)| in_set(set, &read_dim(*dim, e)) != Some(false))
    }

    /// The indexes of rules the kernel itself decides and acts on (or audits) for `e`.
    pub fn enforced_by_kernel(&self, e: &Event) -> Vec<u16> {
        self.rules
            .iter()
            .filter(|r| {
                r.entries.iter().any(|k| {
                    matches!(
                        k.enforcement,
                        Enforcement::Kernel | Enforcement::KernelAudit
                    ) && k.exact
                        && k.kernel_match(e) == Some(true)
                })
            })
            .map(|r| r.index)
            .collect()
    }

    /// The plan as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
