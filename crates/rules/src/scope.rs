//! Workload scopes: the part of a rule's condition that only reads `container.*` and `k8s.*`
//! fields, which the kernel holds as the set of cgroup ids of the containers it covers.
//!
//! A container's identity is fixed for its life, and every process of the container runs in
//! its cgroup: so a condition on the identity alone is, for the kernel, "the process's cgroup
//! is one of these". The compiler ([`crate::pushdown`]) takes such a part out of a rule's
//! condition, keeps the rest as the kernel entry, and records the part as a [`WorkloadScope`].
//! The agent evaluates each scope against the containers the runtimes report
//! ([`WorkloadScope::covers`]) and keeps each rule's cgroup set in the kernel current as
//! containers come and go. A scope that holds for a process in no container (`not k8s.namespace
//! = x`) is not a set of containers and stays a user-space residual.

use std::sync::Arc;

use shrike_event::{ContainerIdentity, Event, EventKind, PodIdentity, Process, Timestamp};

use crate::cond::{Cond, FieldRef};
use crate::fields::FIELDS;

/// A rule's condition on the container identity, for one event kind.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadScope {
    /// The rule's index (as in [`crate::KernelPlan`]).
    pub rule: u16,
    pub kind: EventKind,
    /// The condition as written in `policy explain` (and [`crate::KindRule::workload`]).
    pub text: String,
    cond: Cond,
}

impl WorkloadScope {
    pub(crate) fn new(rule: u16, kind: EventKind, text: String, cond: Cond) -> Self {
        WorkloadScope {
            rule,
            kind,
            text,
            cond,
        }
    }

    /// Whether a process of this container (in this pod, if any) satisfies the scope.
    pub fn covers(&self, container: &ContainerIdentity, k8s: Option<&PodIdentity>) -> bool {
        eval_on(&self.cond, self.kind, Some(container), k8s)
    }
}

/// Evaluates a workload condition for a process of `kind` in `container` (none: a host process).
pub(crate) fn eval_on(
    cond: &Cond,
    kind: EventKind,
    container: Option<&ContainerIdentity>,
    k8s: Option<&PodIdentity>,
) -> bool {
    let mut e = Event::new(
        Timestamp::default(),
        kind,
        Arc::from(""),
        Arc::new(Process::default()),
    );
    e.container = container.map(|c| Arc::new(c.clone()));
    e.k8s = k8s.map(|p| Arc::new(p.clone()));
    cond.eval(&e)
}

/// Whether a field is part of the container identity the runtime reports. `container.resolved`
/// is not: it changes when the runtime answers, not with the container.
pub(crate) fn is_workload_field(field: &FieldRef) -> bool {
    match field {
        FieldRef::Label(..) => true,
        FieldRef::Env(_) => false,
        FieldRef::Table(i) => FIELDS.get(*i).is_some_and(|f| {
            (f.name.starts_with("container.") || f.name.starts_with("k8s."))
                && f.name != "container.resolved"
        }),
    }
}
