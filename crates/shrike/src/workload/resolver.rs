//! The resolver thread: answers lookup requests by asking the runtimes, and drops cached
//! containers whose cgroup is gone.
//!
//! It runs beside the pipeline so a slow or absent runtime never delays an event; the cache is
//! the only thing the two share. A container no runtime knows is cached with only its id (not
//! asked about again until its cgroup goes).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::debug;

use super::cache::Cache;
use super::scope::ScopeKeeper;
use super::{cri, engine, Api, Identity, Request, RuntimeError, RuntimeSocket};

/// How long one runtime gets to answer.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How often cached containers are checked for a cgroup that went away.
const SWEEP: Duration = Duration::from_secs(2);

pub fn spawn(
    runtimes: Vec<RuntimeSocket>,
    cache: Arc<Mutex<Cache>>,
    requests: Receiver<Request>,
    scopes: Option<Arc<ScopeKeeper>>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("shrike-workload".into())
        .spawn(move || run(&runtimes, &cache, &requests, scopes.as_deref()))
        .map(|_| ())
}

fn run(
    runtimes: &[RuntimeSocket],
    cache: &Mutex<Cache>,
    requests: &Receiver<Request>,
    scopes: Option<&ScopeKeeper>,
) {
    let lock = || cache.lock().unwrap_or_else(|p| p.into_inner());
    let mut next_sweep = Instant::now() + SWEEP;
    loop {
        match requests.recv_timeout(SWEEP) {
            Ok(request) => {
                let found = ask(runtimes, &request);
                // The cgroup id is its directory's inode number (what the kernel reads).
                let cgroup = request
                    .cgroup_dir
                    .as_ref()
                    .and_then(|d| std::fs::metadata(d).ok().map(|m| (m.ino(), d.clone())));
                // Placed either way: described, or known to no runtime (never covered).
                if let (Some(keeper), Some((cgroup, dir))) = (scopes, cgroup) {
                    match &found {
                        Some(found) => keeper.added(cgroup, dir, found.clone()),
                        None => keeper.place(cgroup, dir),
                    }
                }
                if let Some(found) = found {
                    lock().resolve(found.container, found.k8s);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if Instant::now() >= next_sweep {
            next_sweep = Instant::now() + SWEEP;
            let dirs = lock().cgroup_dirs();
            let gone: Vec<String> = dirs
                .into_iter()
                .filter(|(_, dir)| !dir.exists())
                .map(|(id, _)| id)
                .collect();
            if !gone.is_empty() {
                debug!(
                    containers = gone.len(),
                    "workload: cgroups gone, identities dropped"
                );
                lock().evict(&gone);
            }
            // The keeper checks its own containers: the cache may have forgotten some while
            // they ran (it is bounded), and their ids must still leave the kernel sets.
            if let Some(dropped) = scopes.map(ScopeKeeper::sweep).filter(|n| *n > 0) {
                debug!(
                    containers = dropped,
                    "workload: cgroups gone, scoped rules updated"
                );
            }
        }
    }
}

/// Asks each runtime in turn (the one the cgroup path names first) until one knows `id`.
pub fn ask(runtimes: &[RuntimeSocket], request: &Request) -> Option<Identity> {
    let hinted = runtimes
        .iter()
        .filter(|r| r.runtime == request.runtime_hint);
    let others = runtimes
        .iter()
        .filter(|r| r.runtime != request.runtime_hint);
    for runtime in hinted.chain(others) {
        if !runtime.socket.exists() {
            continue;
        }
        match ask_one(runtime, &request.id) {
            Ok(Some(found)) => return Some(found),
            Ok(None) => {}
            Err(err) => debug!(%err, id = %request.id, "workload: runtime lookup failed"),
        }
    }
    None
}

fn ask_one(runtime: &RuntimeSocket, id: &str) -> Result<Option<Identity>, RuntimeError> {
    let socket: &Path = &runtime.socket;
    match runtime.api() {
        Api::Engine => engine::inspect(socket, &runtime.runtime, id, TIMEOUT),
        Api::Cri => cri::inspect(socket, &runtime.runtime, id, TIMEOUT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_event::ContainerIdentity;
    use std::sync::mpsc::sync_channel;

    /// A container whose cgroup directory is removed is dropped by the resolver's sweep, and one
    /// whose cgroup stays is kept; the scope keeper drops its copy too, even of a container the
    /// cache had already forgotten.
    #[test]
    fn containers_are_dropped_when_their_cgroup_goes() {
        let base = std::env::temp_dir().join(format!("shrike-evict-{}", std::process::id()));
        let (gone, kept) = (base.join("gone"), base.join("kept"));
        std::fs::create_dir_all(&gone).unwrap();
        std::fs::create_dir_all(&kept).unwrap();
        let cache = Arc::new(Mutex::new(Cache::new(16)));
        for (id, dir) in [("a", &gone), ("b", &kept)] {
            let c = Arc::new(ContainerIdentity {
                id: id.into(),
                ..ContainerIdentity::default()
            });
            cache.lock().unwrap().insert_pending(c, Some(dir.clone()));
        }
        let forgotten = base.join("forgotten");
        std::fs::create_dir_all(&forgotten).unwrap();
        let keeper = ScopeKeeper::new(None);
        let identity = |id: &str| Identity {
            container: ContainerIdentity {
                id: id.into(),
                ..ContainerIdentity::default()
            },
            k8s: None,
        };
        keeper.added(1, kept.clone(), identity("b"));
        keeper.added(2, forgotten.clone(), identity("f"));
        let (_tx, rx) = sync_channel(1);
        spawn(Vec::new(), cache.clone(), rx, Some(keeper.clone())).unwrap();
        std::fs::remove_dir(&gone).unwrap();
        std::fs::remove_dir(&forgotten).unwrap();
        let deadline = Instant::now() + SWEEP * 4;
        while (cache.lock().unwrap().len() > 1 || keeper.len() > 1) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let dirs = cache.lock().unwrap().cgroup_dirs();
        let _ = std::fs::remove_dir_all(&base);
        assert_eq!(dirs, vec![("b".to_string(), kept)]);
        assert_eq!(
            keeper.len(),
            1,
            "the keeper kept a container whose cgroup went"
        );
    }
}
