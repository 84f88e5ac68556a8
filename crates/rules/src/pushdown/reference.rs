//! Reference semantics (what the BPF side must do), used by tests and by offline tools: reading
//! a dimension from an event, testing it against a set, and [`KernelPlan::admits`] and
//! [`KernelPlan::enforced_by_kernel`] over the whole plan.

use std::net::IpAddr;

use shrike_event::{Event, EventKind};

use super::dims::{Dim, ValueSet};
use super::{Enforcement, KernelPlan, KindPlan, KindRule};

pub(super) enum DimValue<'e> {
    Unknown,
    One(&'e str),
    Many(Vec<&'e str>),
    Num(i64),
}

pub(super) fn read_dim(dim: Dim, e: &Event) -> DimValue<'_> {
    let net = e.network();
    match dim {
        Dim::Path => e
            .file()
            .as_ref()
            .map_or(DimValue::Unknown, |f| DimValue::One(&f.path)),
        Dim::NewPath => e
            .file()
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
        Dim::Access => e.file().map_or(DimValue::Unknown, |f| {
            DimValue::Many(f.access.iter().map(String::as_str).collect())
        }),
        Dim::Setid => e
            .file()
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
            .ptrace()
            .as_ref()
            .map_or(DimValue::Unknown, |p| DimValue::One(&p.target_binary)),
        Dim::Dport => net.map_or(DimValue::Unknown, |n| DimValue::Num(i64::from(n.dport))),
        Dim::Sport => net.map_or(DimValue::Unknown, |n| DimValue::Num(i64::from(n.sport))),
        Dim::Daddr => net.map_or(DimValue::Unknown, |n| DimValue::One(&n.daddr)),
        Dim::Saddr => net.map_or(DimValue::Unknown, |n| DimValue::One(&n.saddr)),
    }
}

pub(super) fn set_matches(set: &ValueSet, value: &str) -> Option<bool> {
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
pub(super) fn in_set(set: &ValueSet, value: &DimValue<'_>) -> Option<bool> {
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
