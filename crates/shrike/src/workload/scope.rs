//! Workload-scoped kernel rules: keeps each scoped exec and file-family rule's cgroup set in the
//! kernel current as containers come and go.
//!
//! The compiler gives a deny/kill exec or file-family rule whose condition reads
//! `container.*`/`k8s.*` a [`WorkloadScope`] (`shrike_rules::scope`). [`ScopeKeeper`] holds the
//! containers the runtimes have described, by cgroup id. When a policy is loaded,
//! [`ScopeKeeper::load`] gives the enforcement loader (and the file sensor's watch set) each
//! scoped rule's set (the cgroup ids of the containers its scope covers); when the resolver
//! describes a new container the keeper adds its cgroup id in the kernel rules in place
//! ([`ExecScopeMaps::set_cgroup`], [`FileWatch::set_cgroup`]). One lock covers both, so a container
//! described while a policy is being loaded is in the new generation or added to it after the
//! flip, never lost. The keeper remembers each container's cgroup directory and
//! [`ScopeKeeper::sweep`] drops those whose directory is gone, by itself: the resolver's cache
//! forgets containers when it is full, and a keeper that waited for the cache to report them
//! gone would keep their ids (in memory and in the kernel sets) forever. It holds the live
//! containers the runtimes described, no more.
//!
//! The keeper also knows which cgroups are *placed*: a container's the runtime described (or
//! did not know), and every other cgroup, which holds no container of its own. While a policy
//! has scoped exec rules and the runtimes are asked, the kernel holds (stops) an exec such a
//! rule would apply to but for a cgroup not placed yet, so a container's first exec cannot slip
//! through before the runtime has described it; [`crate::agent`]'s holds then ask
//! [`ScopeKeeper::is_placed`] and [`ScopeKeeper::covers`] to kill or resume it. Holding is a
//! lease of [`HOLD_LEASE`] that the agent's loop renews ([`ScopeKeeper::renew_holding`]): an
//! agent that dies or hangs stops the kernel holding within the lease, so no new exec waits for
//! a decision nobody will make.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use shrike_bpf::enforce::ExecScopeMaps;
use shrike_bpf::file::FileWatch;
use shrike_bpf::net::{NetRuleSource, NetRules};
use shrike_event::EventKind;
use shrike_rules::{KernelPlan, WorkloadScope};
use tracing::{debug, warn};

use super::Identity;

/// The containers known by cgroup id, the other cgroups placed, and the scopes of the policy
/// in force.
#[derive(Default)]
struct State {
    containers: BTreeMap<u64, Known>,
    /// Cgroups placed that are no described container's, with their directory.
    placed: BTreeMap<u64, PathBuf>,
    scopes: Vec<WorkloadScope>,
    /// The policy's plan, when it has workload-scoped network rules: their kernel rules (one
    /// per covered container's cgroup) are rebuilt from it as containers come and go.
    net_plan: Option<KernelPlan>,
    /// The runtimes are asked, so containers get placed: holding can be on.
    placing: bool,
    /// When the holding lease was last written to the kernel (None: holding is off).
    leased: Option<Instant>,
}

/// How long the kernel holds execs after the agent last renewed holding.
pub const HOLD_LEASE: Duration = Duration::from_secs(3);

/// How often the agent renews the lease: well within it, so a busy second does not lapse it.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

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
    /// The file sensor's rules (scoped file, module, BPF and ptrace rules), when it is loaded.
    files: Option<FileWatch>,
    /// The network sensor's rules (scoped connect and bind rules), when it is loaded.
    nets: Option<NetRules>,
}

impl ScopeKeeper {
    /// A keeper that changes the kernel's exec rules through `kernel` (none: it only tracks).
    pub fn new(kernel: Option<ExecScopeMaps>) -> Arc<Self> {
        Arc::new(ScopeKeeper {
            state: Mutex::new(State::default()),
            kernel,
            files: None,
            nets: None,
        })
    }

    /// A keeper over the loaded sensors' exec and file-family rules (one that only tracks the
    /// exec rules, with a warning, if their maps cannot be opened).
    pub fn for_sensors(sensors: &shrike_bpf::Sensors) -> Arc<Self> {
        let kernel = match ExecScopeMaps::new(sensors) {
            Ok(maps) => Some(maps),
            Err(err) => {
                warn!(%err, "workload-scoped exec rules cannot be kept current in the kernel");
                None
            }
        };
        Arc::new(ScopeKeeper {
            state: Mutex::new(State::default()),
            kernel,
            files: sensors.file_watch(),
            nets: sensors.net_rules(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Entries are replaced whole: a panicked holder leaves the state usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads a policy's kernel rules with `load`, which receives each scoped rule's current
    /// cgroup set; the policy's scopes (`plan` is its kernel plan) are kept current from then
    /// on if it succeeds.
    pub fn load<T, E>(
        &self,
        scopes: &[WorkloadScope],
        plan: &KernelPlan,
        load: impl FnOnce(&dyn Fn(u16) -> BTreeSet<u64>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut state = self.lock();
        let held: Vec<WorkloadScope> = scopes
            .iter()
            .filter(|s| in_kernel(s.kind))
            .cloned()
            .collect();
        let cgroups = |rule: u16| covered(&state.containers, &held, rule);
        let loaded = load(&cgroups)?;
        state.net_plan = held
            .iter()
            .any(|s| is_network(s.kind))
            .then(|| plan.clone());
        state.scopes = held;
        self.set_holding(&mut state);
        Ok(loaded)
    }

    /// The runtimes are asked from now on (the resolver runs): containers will be placed, so
    /// a scoped rule may hold an exec until its container is.
    pub fn start_placing(&self) {
        let mut state = self.lock();
        state.placing = true;
        self.set_holding(&mut state);
    }

    /// No more holding (the agent stops: nobody would release a held exec).
    pub fn stop_placing(&self) {
        let mut state = self.lock();
        state.placing = false;
        self.set_holding(&mut state);
    }

    /// Renews the holding lease when it is on and [`RENEW_EVERY`] has passed since it was
    /// last written: called from the agent's loop, the one that decides held execs.
    pub fn renew_holding(&self, now: Instant) {
        let mut state = self.lock();
        if state
            .leased
            .is_some_and(|at| now.duration_since(at) >= RENEW_EVERY)
        {
            self.set_holding(&mut state);
        }
    }

    /// Holding is on while the policy has scoped exec rules and containers get placed.
    fn set_holding(&self, state: &mut State) {
        let on = state.placing
            && state
                .scopes
                .iter()
                .any(|s| s.kind == EventKind::ProcessExec);
        state.leased = on.then(Instant::now);
        let Some(kernel) = &self.kernel else { return };
        if let Err(err) = kernel.set_holding(on.then_some(HOLD_LEASE)) {
            warn!(%err, on, "workload scope: holding could not be switched; a container's first exec may run before its rule covers it");
        }
    }

    /// Cgroup `cgroup` (directory `dir`) holds no described container of its own: placed,
    /// never covered.
    pub fn place(&self, cgroup: u64, dir: PathBuf) {
        let mut state = self.lock();
        if state.containers.contains_key(&cgroup) || state.placed.contains_key(&cgroup) {
            return;
        }
        state.placed.insert(cgroup, dir);
        self.settle(cgroup, true);
    }

    /// Whether cgroup `cgroup` is placed (a described container's, or known to hold none).
    pub fn is_placed(&self, cgroup: u64) -> bool {
        let state = self.lock();
        state.containers.contains_key(&cgroup) || state.placed.contains_key(&cgroup)
    }

    /// Whether scoped rule `rule` covers the container in cgroup `cgroup`.
    pub fn covers(&self, rule: u16, cgroup: u64) -> bool {
        let state = self.lock();
        state
            .containers
            .get(&cgroup)
            .is_some_and(|known| rule_covers(&state.scopes, rule, known))
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
        let mut network = false;
        for scope in &state.scopes {
            if scope.covers(&identity.container, identity.k8s.as_ref()) {
                self.apply(scope.rule, cgroup, true);
                network |= is_network(scope.kind);
                debug!(rule = scope.rule, cgroup, container = %identity.container.id, "workload scope: container covered");
            }
        }
        state.placed.remove(&cgroup);
        state.containers.insert(cgroup, Known { dir, identity });
        if network {
            self.rebuild_network_rules(&state);
        }
        self.settle(cgroup, true);
    }

    /// Drops the containers whose cgroup directory is gone: their ids leave every rule's set;
    /// and the other placed cgroups that are gone. The directories are checked outside the
    /// lock. Returns how many containers went.
    pub fn sweep(&self) -> usize {
        let (dirs, placed) = {
            let state = self.lock();
            let dirs: Vec<(u64, PathBuf)> = state
                .containers
                .iter()
                .map(|(cgroup, known)| (*cgroup, known.dir.clone()))
                .collect();
            let placed: Vec<(u64, PathBuf)> =
                state.placed.iter().map(|(c, d)| (*c, d.clone())).collect();
            (dirs, placed)
        };
        let gone: Vec<(u64, PathBuf)> = dirs.into_iter().filter(|(_, d)| !d.exists()).collect();
        let placed_gone: Vec<(u64, PathBuf)> =
            placed.into_iter().filter(|(_, d)| !d.exists()).collect();
        let mut state = self.lock();
        for (cgroup, dir) in placed_gone {
            if state.placed.get(&cgroup) == Some(&dir) {
                state.placed.remove(&cgroup);
                self.settle(cgroup, false);
            }
        }
        let mut dropped = 0;
        let mut network = false;
        for (cgroup, dir) in gone {
            // Gone meanwhile, or described again (a new directory with the same id): keep it.
            let known = match state.containers.entry(cgroup) {
                Entry::Occupied(entry) if entry.get().dir == dir => entry.remove(),
                _ => continue,
            };
            dropped += 1;
            self.settle(cgroup, false);
            let identity = &known.identity;
            for scope in &state.scopes {
                if scope.covers(&identity.container, identity.k8s.as_ref()) {
                    self.apply(scope.rule, cgroup, false);
                    network |= is_network(scope.kind);
                }
            }
        }
        if network {
            self.rebuild_network_rules(&state);
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

    /// Marks `cgroup` placed (or not) in the kernel.
    fn settle(&self, cgroup: u64, placed: bool) {
        let Some(kernel) = &self.kernel else { return };
        if let Err(err) = kernel.settle(cgroup, placed) {
            warn!(%err, cgroup, placed, "workload scope: the kernel's placed cgroups could not be changed; execs there may be held until released by time");
        }
    }

    /// Writes the policy's network rules again with each scoped rule's covered cgroups (the
    /// network hooks hold one cgroup per kernel rule, so a container is a rule of its own).
    fn rebuild_network_rules(&self, state: &State) {
        let (Some(nets), Some(plan)) = (&self.nets, &state.net_plan) else {
            return;
        };
        let cgroups = |rule: u16| covered(&state.containers, &state.scopes, rule);
        let (rules, skipped) = crate::enforcement::net_rules(plan, &cgroups);
        for (rule, reason) in skipped {
            warn!(%rule, %reason, "workload scope: network rule not enforced in the kernel; it is reported as alerted");
        }
        if let Err(err) = nets.replace_source(NetRuleSource::Policy, &rules) {
            warn!(%err, "workload scope: the network rules could not be rewritten for the containers now covered; the rules in force stay");
        }
    }

    /// Adds `cgroup` to (or removes it from) rule `rule`'s cgroup sets in the kernel: its exec
    /// rule's or its file-family rules', whichever it has.
    fn apply(&self, rule: u16, cgroup: u64, present: bool) {
        if let Some(kernel) = &self.kernel {
            if let Err(err) = kernel.set_cgroup(rule, cgroup, present) {
                warn!(%err, rule, cgroup, "workload scope: the kernel's cgroup set could not be changed; the rule is reported, not enforced, there");
            }
        }
        if let Some(files) = &self.files {
            if let Err(err) = files.set_cgroup(rule, cgroup, present) {
                warn!(%err, rule, cgroup, "workload scope: the file rules' cgroup set could not be changed; the rule is reported, not enforced, there");
            }
        }
    }
}

fn is_network(kind: EventKind) -> bool {
    matches!(kind, EventKind::NetConnect | EventKind::NetBind)
}

/// Kinds whose scoped rules the kernel holds: exec and the file family's deny kinds as cgroup
/// sets, connect and bind as one kernel rule per covered container.
fn in_kernel(kind: EventKind) -> bool {
    kind == EventKind::ProcessExec
        || crate::enforcement::enforce_kind(kind).is_some()
        || is_network(kind)
}

fn covered(
    containers: &BTreeMap<u64, Known>,
    scopes: &[WorkloadScope],
    rule: u16,
) -> BTreeSet<u64> {
    containers
        .iter()
        .filter(|(_, known)| rule_covers(scopes, rule, known))
        .map(|(cgroup, _)| *cgroup)
        .collect()
}

/// Whether a scope of rule `rule` covers the container `known`.
fn rule_covers(scopes: &[WorkloadScope], rule: u16, known: &Known) -> bool {
    let identity = &known.identity;
    scopes
        .iter()
        .any(|s| s.rule == rule && s.covers(&identity.container, identity.k8s.as_ref()))
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
            .load(policy.workload_scopes(), policy.kernel_plan(), |cgroups| {
                Ok::<_, ()>(cgroups(0))
            })
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

    /// Placed cgroups: a described container's and any other placed one count; another does
    /// not; a placed cgroup whose directory is gone is dropped by the sweep.
    #[test]
    fn placed_cgroups_are_known_until_their_directory_goes() {
        let base = std::env::temp_dir().join(format!("shrike-placed-{}", std::process::id()));
        let dir = |name: &str| {
            let d = base.join(name);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        let keeper = ScopeKeeper::new(None);
        keeper.added(20, dir("ctr"), pod("ctr", "prod"));
        keeper.place(21, dir("system.slice"));
        assert!(keeper.is_placed(20) && keeper.is_placed(21));
        assert!(!keeper.is_placed(23));
        assert_eq!(keeper.sweep(), 0);
        assert!(keeper.is_placed(21));
        std::fs::remove_dir(base.join("system.slice")).unwrap();
        keeper.sweep();
        let _ = std::fs::remove_dir_all(&base);
        assert!(!keeper.is_placed(21));
        assert!(keeper.is_placed(20));
    }
}
