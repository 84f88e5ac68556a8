//! Workload identity: which container (and Kubernetes pod) an event's process runs in, as the
//! container runtime reports it.
//!
//! The pipeline knows a process's container id from its cgroup at exec ([`crate::cgroups`]).
//! [`Workloads::attach`] puts the identity on every event: from the [`cache`] when the runtime
//! has answered, else an identity with only the id and runtime, and a lookup request to the
//! [`resolver`] thread, which asks the runtimes ([`engine`] for Podman and Docker, [`cri`] for
//! containerd and CRI-O) and fills the cache. Events are never held back for an answer. The
//! cache is bounded and drops a container when its cgroup goes away. The [`watch`] thread asks
//! about a container as soon as its cgroup is made, and [`scope`] keeps the kernel's
//! workload-scoped exec rules current with the containers described.

pub mod cache;
pub mod cri;
pub mod engine;
mod grpc;
mod http;
pub mod pb;
pub mod resolver;
pub mod scope;
mod watch;

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};

use shrike_event::{Container, ContainerIdentity, Event, PodIdentity};

use cache::{Cache, Lookup};
use scope::ScopeKeeper;

/// What a runtime said about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub container: ContainerIdentity,
    pub k8s: Option<PodIdentity>,
}

/// Why a runtime could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("runtime socket {0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("runtime socket {0}: {1}")]
    Protocol(String, String),
}

/// Which API a runtime socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The Docker Engine API (Docker, and Podman's service).
    Engine,
    /// The Kubernetes CRI (containerd, CRI-O).
    Cri,
}

/// One runtime to ask: its name (`podman`, `docker`, `containerd`, `crio`) and socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSocket {
    pub runtime: String,
    pub socket: PathBuf,
}

impl RuntimeSocket {
    /// Which API the runtime speaks: containerd and CRI-O are asked over CRI.
    pub fn api(&self) -> Api {
        match self.runtime.as_str() {
            "containerd" | "crio" => Api::Cri,
            _ => Api::Engine,
        }
    }

    /// Parses `RUNTIME=SOCKET` (the `--container-runtime` option).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (runtime, socket) = text.split_once('=').ok_or_else(|| {
            format!("`{text}`: expected RUNTIME=SOCKET, e.g. podman=/run/podman/podman.sock")
        })?;
        if !["podman", "docker", "containerd", "crio"].contains(&runtime) {
            return Err(format!(
                "`{runtime}`: unknown runtime; one of podman, docker, containerd, crio"
            ));
        }
        Ok(RuntimeSocket {
            runtime: runtime.to_string(),
            socket: PathBuf::from(socket),
        })
    }

    /// The runtimes' usual sockets; a missing one is skipped when asked (it may appear later).
    pub fn defaults() -> Vec<RuntimeSocket> {
        [
            ("containerd", "/run/containerd/containerd.sock"),
            ("crio", "/run/crio/crio.sock"),
            ("podman", "/run/podman/podman.sock"),
            ("docker", "/var/run/docker.sock"),
        ]
        .into_iter()
        .map(|(runtime, socket)| RuntimeSocket {
            runtime: runtime.to_string(),
            socket: PathBuf::from(socket),
        })
        .collect()
    }
}

/// A request to the resolver: look up container `id` whose cgroup is `cgroup_dir`.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: String,
    pub runtime_hint: String,
    pub cgroup_dir: Option<PathBuf>,
}

/// The pipeline's side: attaches identities and asks for the missing ones.
pub struct Workloads {
    cache: Arc<Mutex<Cache>>,
    requests: Option<SyncSender<Request>>,
}

/// Lookups waiting for the resolver at most; beyond it a container is asked about again later.
const QUEUE: usize = 256;

impl Workloads {
    /// Identities from the cgroup path only (no runtime is asked).
    pub fn disabled() -> Self {
        Workloads {
            cache: Arc::new(Mutex::new(Cache::new(cache::CAPACITY))),
            requests: None,
        }
    }

    /// Starts the resolver thread asking `runtimes` (in order, the cgroup's runtime first),
    /// telling `scopes` of the containers it describes and drops; with `cgroup_root` (the
    /// cgroup2 mount), also the thread that notices containers as their cgroup is made.
    pub fn start(
        runtimes: Vec<RuntimeSocket>,
        scopes: Option<Arc<ScopeKeeper>>,
        cgroup_root: Option<PathBuf>,
    ) -> std::io::Result<Self> {
        let cache = Arc::new(Mutex::new(Cache::new(cache::CAPACITY)));
        let (tx, rx) = sync_channel(QUEUE);
        resolver::spawn(runtimes, cache.clone(), rx, scopes.clone())?;
        if let Some(root) = cgroup_root {
            watch::spawn(root, cache.clone(), tx.clone(), scopes.clone())?;
        }
        if let Some(keeper) = &scopes {
            keeper.start_placing();
        }
        Ok(Workloads {
            cache,
            requests: Some(tx),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        // A panicked resolver leaves the cache usable: entries are replaced whole.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets `container` and `k8s` on `event` from its process's container, asking the
    /// resolver about a container not seen before. `cgroup_dir` is the process's cgroup.
    pub fn attach(&self, event: &mut Event, cgroup_dir: impl FnOnce() -> Option<PathBuf>) {
        let Some(c) = &event.process.container else {
            return;
        };
        let mut cache = self.lock();
        match cache.lookup(&c.id) {
            Lookup::Known(container, k8s) => {
                event.container = Some(container);
                event.k8s = k8s;
                if let (Some(tx), Some(dir)) = (&self.requests, cache.due_for_retry(&c.id)) {
                    // Full or gone: the next due time asks again.
                    let _ = tx.try_send(Request {
                        id: c.id.clone(),
                        runtime_hint: c.runtime.clone(),
                        cgroup_dir: dir,
                    });
                }
            }
            Lookup::Unknown => {
                let minimal = Arc::new(ContainerIdentity {
                    id: c.id.clone(),
                    runtime: c.runtime.clone(),
                    ..ContainerIdentity::default()
                });
                event.container = Some(minimal.clone());
                let Some(tx) = &self.requests else {
                    cache.insert_pending(minimal, None);
                    return;
                };
                let dir = cgroup_dir();
                let request = Request {
                    id: c.id.clone(),
                    runtime_hint: c.runtime.clone(),
                    cgroup_dir: dir.clone(),
                };
                match tx.try_send(request) {
                    Ok(()) => cache.insert_pending(minimal, dir),
                    // Queue full: not cached, so a later event asks again.
                    Err(TrySendError::Full(_)) => {}
                    Err(TrySendError::Disconnected(_)) => cache.insert_pending(minimal, dir),
                }
            }
        }
    }

    /// The container whose cgroup is `cgroup`, when the cgroup watcher saw it made (for a
    /// process gone before its cgroup could be placed from `/proc`).
    pub fn container_of_cgroup(&self, cgroup: u64) -> Option<Arc<Container>> {
        let (id, runtime) = self.lock().container_of_cgroup(cgroup)?;
        Some(Arc::new(Container { id, runtime }))
    }

    /// (containers cached, lookups answered by a runtime) for the agent's log.
    pub fn stats(&self) -> (usize, u64) {
        let cache = self.lock();
        (cache.len(), cache.resolved_count())
    }
}
