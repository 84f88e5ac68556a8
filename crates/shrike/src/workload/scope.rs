//! Workload-scoped kernel rules: keeps each scoped exec rule's cgroup set in the kernel current
//! as containers come and go.
//!
//! The compiler gives a deny/kill exec rule whose condition reads `container.*`/`k8s.*` a
//! [`WorkloadScope`] (`shrike_rules::scope`). [`ScopeKeeper`] holds the containers the runtimes
//! have described, by cgroup id. When a policy is loaded, [`ScopeKeeper::load`] gives the
//! enforcement loader each scoped rule's set (the cgroup ids of the containers its scope
//! covers); when the resolver describes a new container or drops one that went, the keeper adds
//! or removes its cgroup id in the kernel rules in place ([`ExecScopeMaps::set_cgroup`]). One
//! lock covers both, so a container described while a policy is being loaded is in the new
//! generation or added to it after the flip, never lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use shrike_bpf::enforce::ExecScopeMaps;
use shrike_event::EventKind;
use shrike_rules::WorkloadScope;
use tracing::{debug, warn};

use super::Identity;

/// The containers known by cgroup id, and the scopes of the policy in force.
#[derive(Default)]
struct State {
    /// cgroup id → (container id, identity).
    containers: BTreeMap<u64, (String, Arc<Identity>)>,
    scopes: Vec<WorkloadScope>,
}

/// See the module documentation.
pub struct ScopeKeeper {
    state: Mutex<State>,
    kernel: Option<ExecScopeMaps>,
}

impl ScopeKeeper {
    /// A keeper that changes the kernel's exec rules through `kernel` (none: it only tracks).
    pub fn new(kernel: Option<ExecScopeMaps>) -> Arc<Self> {
        Arc::new(ScopeKeeper {
            state: Mutex::new(State::default()),
            kernel,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Entries are replaced whole: a panicked holder leaves the state usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads a policy's kernel rules with `load`, which receives each scoped rule's current
    /// cgroup set; the policy's scopes are kept current from then on if it succeeds.
    pub fn load<T, E>(
        &self,
        scopes: &[WorkloadScope],
        load: impl FnOnce(&dyn Fn(u16) -> BTreeSet<u64>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut state = self.lock();
        let exec: Vec<WorkloadScope> = scopes
            .iter()
            .filter(|s| s.kind == EventKind::ProcessExec)
            .cloned()
            .collect();
        let cgroups = |rule: u16| covered(&state.containers, &exec, rule);
        let loaded = load(&cgroups)?;
        state.scopes = exec;
        Ok(loaded)
    }

    /// The cgroup set of rule `rule` now (for tests and the log).
    pub fn cgroups(&self, rule: u16) -> BTreeSet<u64> {
        let state = self.lock();
        covered(&state.containers, &state.scopes, rule)
    }

    /// A container the runtime described, in cgroup `cgroup`: added to the kernel set of each
    /// scoped rule that covers it.
    pub fn added(&self, cgroup: u64, identity: Identity) {
        let mut state = self.lock();
        let identity = Arc::new(identity);
        for scope in &state.scopes {
            if scope.covers(&identity.container, identity.k8s.as_ref()) {
                self.apply(scope.rule, cgroup, true);
                debug!(rule = scope.rule, cgroup, container = %identity.container.id, "workload scope: container covered");
            }
        }
        state
            .containers
            .insert(cgroup, (identity.container.id.clone(), identity));
    }

    /// Containers that went: their cgroup ids leave every rule's set.
    pub fn removed(&self, container_ids: &[String]) {
        let mut state = self.lock();
        let gone: Vec<u64> = state
            .containers
            .iter()
            .filter(|(_, (id, _))| container_ids.contains(id))
            .map(|(cgroup, _)| *cgroup)
            .collect();
        for cgroup in gone {
            if let Some((_, identity)) = state.containers.remove(&cgroup) {
                for scope in &state.scopes {
                    if scope.covers(&identity.container, identity.k8s.as_ref()) {
                        self.apply(scope.rule, cgroup, false);
                    }
                }
            }
        }
    }

    fn apply(&self, rule: u16, cgroup: u64, present: bool) {
        let Some(kernel) = &self.kernel else { return };
        if let Err(err) = kernel.set_cgroup(rule, cgroup, present) {
            warn!(%err, rule, cgroup, "workload scope: the kernel's cgroup set could not be changed; the rule is reported, not enforced, there");
        }
    }
}

fn covered(
    containers: &BTreeMap<u64, (String, Arc<Identity>)>,
    scopes: &[WorkloadScope],
    rule: u16,
) -> BTreeSet<u64> {
    containers
        .iter()
        .filter(|(_, (_, identity))| {
            scopes
                .iter()
                .any(|s| s.rule == rule && s.covers(&identity.container, identity.k8s.as_ref()))
        })
        .map(|(cgroup, _)| *cgroup)
        .collect()
}
