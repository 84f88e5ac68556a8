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
//!
//! This file holds the plan's types and its assembly per rule and kind; `dims` has the
//! dimensions and value sets, `nnf` the rewritten condition, `atoms` one comparison as a
//! constraint, `conjunction` the necessary constraints and the residual, `interest` the
//! first-stage filter, and `reference` the semantics the BPF side is tested against.

mod atoms;
mod conjunction;
mod dims;
mod interest;
mod nnf;
mod reference;

pub use dims::{Dim, PathSet, ValueSet};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shrike_event::EventKind;

use self::conjunction::{conj_text, split, to_cond};
use self::interest::{interest, union_into};
use self::nnf::nnf;
use crate::cond::Cond;
use crate::kinds::KindSet;
use crate::meta::{Action, Mode};
use crate::policy::CompiledRule;
use crate::scope::WorkloadScope;

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
/// rule also refuses the action where it can), and the set-times calls, which no hook refuses
/// (the times are set, the process dies).
const KILL_KINDS: KindSet = DENY_KINDS.union(KindSet::of(&[EventKind::FileUtimes]));

fn enforcement(action: Action, mode: Mode, kind: EventKind, exact: bool) -> Enforcement {
    if action == Action::Alert {
        return Enforcement::None;
    }
    if !exact {
        return Enforcement::UserSpace {
            reason: "the condition needs fields only user space has, so the kernel cannot decide it before the action completes".into(),
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
            let kp = kind_plans.entry(kind.index()).or_insert_with(|| KindPlan {
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
                enforcement: enforcement(rule.info.action, rule.info.mode, kind, s.exact),
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
