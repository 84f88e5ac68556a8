//! Workload-scoped kernel rules: keeps each scoped exec rule's cgroup set in the kernel current
//! as containers come and go.
//!
//! The compiler gives a deny/kill exec rule whose condition reads `container.*`/`k8s.*` a
//! [`WorkloadScope`] (`shrike_rules::scope`). [`ScopeKeeper`] holds the containers the runtimes
//! have described, by cgroup id. When a policy is loaded, [`ScopeKeeper::load`] gives the
//! enforcement loader each scoped rule's set (the cgroup ids of the containers its scope
//! covers); when the resolver describes a new container the keeper adds its cgroup id in the
//! kernel rules in place ([`ExecScopeMaps::set_cgroup`]). One lock covers both, so a container
//! described while a policy is being loaded is in the new generation or added to it after the
//! flip, never lost. The keeper remembers each container's cgroup directory and
//! [`ScopeKeeper::sweep`] drops those whose directory is gone, by itself: the resolver's cache
//! forgets containers when it is full, and a keeper that waited for the cache to report them
//! gone would keep their ids (in memory and in the kernel sets) forever. It holds the live
//! containers the runtimes described, no more.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use shrike_bpf::enforce::ExecScopeMaps;
use shrike_event::EventKind;
use shrike_rules::WorkloadScope;
use tracing::{debug, warn};

use super::Identity;

/// The containers known by cgroup id, and the scopes of the policy in force.
#[derive(Default)]
struct State {
    containers: BTreeMap<u64, Known>,
    scopes: Vec<WorkloadScope>,
}

/// A container the runtimes described.
struct Known {
    /// Its cgroup directory: when it is gone, so is the container.
    dir: PathBuf,
    identity: Arc<Identity>,
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

    /// A keeper over the loaded sensors' exec rules (one that only tracks, with a warning, if
    /// their maps cannot be opened).
    pub fn for_sensors(sensors: &shrike_bpf::Sensors) -> Arc<Self> {
        Self::new(match ExecScopeMaps::new(sensors) {
            Ok(maps) => Some(maps),
            Err(err) => {
                warn!(%err, "workload-scoped exec rules cannot be kept current in the kernel");
                None
            }
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

    /// A container the runtime described, in cgroup `cgroup` (directory `dir`): added to the
    /// kernel set of each scoped rule that covers it.
    pub fn added(&self, cgroup: u64, dir: PathBuf, identity: Identity) {
        let mut state = self.lock();
        let identity = Arc::new(identity);
        for scope in &state.scopes {
            if scope.covers(&identity.container, identity.k8s.as_ref()) {
                self.apply(scope.rule, cgroup, true);
                debug!(rule = scope.rule, cgroup, container = %identity.container.id, "workload scope: container covered");
            }
        }
        state.containers.insert(cgroup, Known { dir, identity });
    }

    /// Drops the containers whose cgroup directory is gone: their ids leave every rule's set.
    /// The directories are checked outside the lock. Returns how many went.
    pub fn sweep(&self) -> usize {
        let dirs: Vec<(u64, PathBuf)> = self
            .lock()
            .containers
            .iter()
            .map(|(cgroup, known)| (*cgroup, known.dir.clone()))
            .collect();
        let gone: Vec<(u64, PathBuf)> = dirs.into_iter().filter(|(_, d)| !d.exists()).collect();
        let mut state = self.lock();
        let mut dropped = 0;
        for (cgroup, dir) in gone {
            // Gone meanwhile, or described again (a new directory with the same id): keep it.
            let known = match state.containers.entry(cgroup) {
                Entry::Occupied(entry) if entry.get().dir == dir => entry.remove(),
                _ => continue,
            };
            dropped += 1;
            let identity = &known.identity;
            for scope in &state.scopes {
                if scope.covers(&identity.container, identity.k8s.as_ref()) {
                    self.apply(scope.rule, cgroup, false);
                }
            }
        }
        dropped
    }

    /// Containers known now (live ones the runtimes described).
    pub fn len(&self) -> usize {
        self.lock().containers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn apply(&self, rule: u16, cgroup: u64, present: bool) {
        let Some(kernel) = &self.kernel else { return };
        if let Err(err) = kernel.set_cgroup(rule, cgroup, present) {
            warn!(%err, rule, cgroup, "workload scope: the kernel's cgroup set could not be changed; the rule is reported, not enforced, there");
        }
    }
}

fn covered(
    containers: &BTreeMap<u64, Known>,
    scopes: &[WorkloadScope],
    rule: u16,
) -> BTreeSet<u64> {
    containers
        .iter()
        .filter(|(_, known)| {
            let identity = &known.identity;
            scopes
                .iter()
                .any(|s| s.rule == rule && s.covers(&identity.container, identity.k8s.as_ref()))
        })
        .map(|(cgroup, _)| *cgroup)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_event::{ContainerIdentity, PodIdentity};
    use shrike_rules::Policy;

    fn pod(id: &str, namespace: &str) -> Identity {
        Identity {
            container: ContainerIdentity {
                id: id.into(),
                resolved: true,
                ..ContainerIdentity::default()
            },
            k8s: Some(PodIdentity {
                namespace: namespace.into(),
                ..PodIdentity::default()
            }),
        }
    }

    /// A loaded policy's scoped rule gets the cgroups of the covered containers already known;
    /// a container described later joins the set, one whose cgroup directory goes leaves it at
    /// the next sweep (with no word from the resolver's cache), and a container of another
    /// namespace never joins.
    #[test]
    fn scoped_rules_follow_the_containers_that_come_and_go() {
        let policy = Policy::compile([(
            "p.yaml",
            "- rule: r\n  id: T\n  severity: high\n  condition: kind = process_exec and process.name = nc and k8s.namespace = prod\n  action: deny\n",
        )])
        .unwrap_or_else(|d| panic!("{}", shrike_rules::text::render_diagnostics(&d)));
        let base = std::env::temp_dir().join(format!("shrike-scope-{}", std::process::id()));
        let dir = |name: &str| {
            let d = base.join(name);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        let keeper = ScopeKeeper::new(None);
        keeper.added(10, dir("a"), pod("a", "prod"));
        let at_load = keeper
            .load(policy.workload_scopes(), |cgroups| Ok::<_, ()>(cgroups(0)))
            .unwrap();
        assert_eq!(at_load, BTreeSet::from([10]));
        keeper.added(11, dir("b"), pod("b", "prod"));
        keeper.added(12, dir("c"), pod("c", "dev"));
        assert_eq!(keeper.cgroups(0), BTreeSet::from([10, 11]));
        assert_eq!(keeper.sweep(), 0);
        std::fs::remove_dir(base.join("a")).unwrap();
        std::fs::remove_dir(base.join("c")).unwrap();
        assert_eq!(keeper.sweep(), 2);
        let _ = std::fs::remove_dir_all(&base);
        assert_eq!(keeper.cgroups(0), BTreeSet::from([11]));
        assert_eq!(keeper.len(), 1);
    }
}
