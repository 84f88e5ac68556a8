//! The bounded cache of container identities, shared by the pipeline and the resolver.
//!
//! One entry per container id: pending (only the id is known, a lookup is under way) or
//! resolved. A pending entry is asked about again (10 s after, then doubling up to 5 min: a
//! runtime that was down, a container registered late) until a runtime answers. Entries whose
//! cgroup directory is gone are dropped by [`Cache::evict`]; when full, the least recently used
//! entry makes room.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shrike_event::{ContainerIdentity, PodIdentity};

/// Containers remembered at most (a node runs a few hundred; this leaves room for churn).
pub const CAPACITY: usize = 4096;
/// First wait before a container no runtime described is asked about again, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(300);

struct Entry {
    container: Arc<ContainerIdentity>,
    k8s: Option<Arc<PodIdentity>>,
    cgroup_dir: Option<PathBuf>,
    used: u64,
    /// Pending entries: when to ask again, and the wait after that.
    retry: Option<(Instant, Duration)>,
}

/// What the cache knows of a container.
pub enum Lookup {
    Known(Arc<ContainerIdentity>, Option<Arc<PodIdentity>>),
    Unknown,
}

pub struct Cache {
    entries: HashMap<String, Entry>,
    /// Container cgroups the cgroup watcher saw made: cgroup id → (container id, runtime), for
    /// events whose process is gone before its cgroup could be placed from `/proc`.
    by_cgroup: HashMap<u64, (String, String)>,
    capacity: usize,
    tick: u64,
    resolved: u64,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            entries: HashMap::new(),
            by_cgroup: HashMap::new(),
            capacity: capacity.max(1),
            tick: 0,
            resolved: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn resolved_count(&self) -> u64 {
        self.resolved
    }

    pub fn lookup(&mut self, id: &str) -> Lookup {
        self.tick += 1;
        match self.entries.get_mut(id) {
            Some(e) => {
                e.used = self.tick;
                Lookup::Known(e.container.clone(), e.k8s.clone())
            }
            None => Lookup::Unknown,
        }
    }

    /// Remembers a container whose lookup is under way.
    pub fn insert_pending(
        &mut self,
        container: Arc<ContainerIdentity>,
        cgroup_dir: Option<PathBuf>,
    ) {
        let id = container.id.clone();
        self.insert(id.clone(), container, None, cgroup_dir);
        if let Some(e) = self.entries.get_mut(&id) {
            e.retry = Some((Instant::now() + RETRY_FIRST, RETRY_FIRST));
        }
    }

    /// For a pending container whose time to ask again has come: its cgroup (and the next
    /// wait is doubled). `None` when resolved, unknown, or not due.
    pub fn due_for_retry(&mut self, id: &str) -> Option<Option<PathBuf>> {
        let e = self.entries.get_mut(id)?;
        let (when, wait) = e.retry?;
        if Instant::now() < when {
            return None;
        }
        let next = (wait * 2).min(RETRY_MAX);
        e.retry = Some((Instant::now() + next, next));
        Some(e.cgroup_dir.clone())
    }

    /// Stores what the runtime said (keeping the cgroup the pending entry had).
    pub fn resolve(&mut self, container: ContainerIdentity, k8s: Option<PodIdentity>) {
        self.resolved += 1;
        let dir = self
            .entries
            .get(&container.id)
            .and_then(|e| e.cgroup_dir.clone());
        let id = container.id.clone();
        self.insert(id, Arc::new(container), k8s.map(Arc::new), dir);
    }

    fn insert(
        &mut self,
        id: String,
        container: Arc<ContainerIdentity>,
        k8s: Option<Arc<PodIdentity>>,
        cgroup_dir: Option<PathBuf>,
    ) {
        self.tick += 1;
        if !self.entries.contains_key(&id) && self.entries.len() >= self.capacity {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(
            id,
            Entry {
                container,
                k8s,
                cgroup_dir,
                used: self.tick,
                retry: None,
            },
        );
    }

    /// The cgroup directories of the cached containers, to check from outside the lock.
    pub fn cgroup_dirs(&self) -> Vec<(String, PathBuf)> {
        self.entries
            .iter()
            .filter_map(|(id, e)| Some((id.clone(), e.cgroup_dir.clone()?)))
            .collect()
    }

    /// Drops the containers `gone` names (their cgroup directory no longer exists).
    pub fn evict(&mut self, gone: &[String]) {
        for id in gone {
            self.entries.remove(id);
        }
        self.by_cgroup.retain(|_, (id, _)| !gone.contains(id));
    }

    /// Records that cgroup `cgroup` is container `id`'s (of `runtime`).
    pub fn note_cgroup(&mut self, cgroup: u64, id: &str, runtime: &str) {
        if self.by_cgroup.len() < self.capacity {
            self.by_cgroup
                .insert(cgroup, (id.to_string(), runtime.to_string()));
        }
    }

    /// The container (id, runtime) whose cgroup is `cgroup`, if the watcher saw it made.
    pub fn container_of_cgroup(&self, cgroup: u64) -> Option<(String, String)> {
        self.by_cgroup.get(&cgroup).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(id: &str) -> Arc<ContainerIdentity> {
        Arc::new(ContainerIdentity {
            id: id.into(),
            ..ContainerIdentity::default()
        })
    }

    /// A full cache makes room by dropping the container looked up least recently.
    #[test]
    fn a_full_cache_drops_the_least_recently_used() {
        let mut cache = Cache::new(2);
        cache.insert_pending(ident("a"), None);
        cache.insert_pending(ident("b"), None);
        assert!(matches!(cache.lookup("a"), Lookup::Known(..)));
        cache.insert_pending(ident("c"), None);
        assert_eq!(cache.len(), 2);
        assert!(matches!(cache.lookup("b"), Lookup::Unknown));
        assert!(matches!(cache.lookup("a"), Lookup::Known(..)));
    }

    /// A pending container is asked about again only once its wait is over; a resolved one
    /// never.
    #[test]
    fn pending_containers_are_retried_when_due_and_resolved_ones_never() {
        let mut cache = Cache::new(8);
        cache.insert_pending(ident("a"), None);
        assert_eq!(cache.due_for_retry("a"), None, "not due yet");
        if let Some(e) = cache.entries.get_mut("a") {
            e.retry = Some((Instant::now(), RETRY_FIRST));
        }
        assert_eq!(cache.due_for_retry("a"), Some(None));
        assert_eq!(cache.due_for_retry("a"), None, "the next wait is ahead");
        cache.resolve(
            ContainerIdentity {
                id: "a".into(),
                resolved: true,
                ..ContainerIdentity::default()
            },
            None,
        );
        if let Some(e) = cache.entries.get_mut("a") {
            assert!(e.retry.is_none());
        }
        assert_eq!(cache.due_for_retry("b"), None);
    }

    /// A resolved answer replaces the pending entry and keeps its cgroup for eviction.
    #[test]
    fn resolving_keeps_the_cgroup_and_evict_drops_it() {
        let mut cache = Cache::new(8);
        cache.insert_pending(ident("a"), Some(PathBuf::from("/sys/fs/cgroup/x")));
        cache.resolve(
            ContainerIdentity {
                id: "a".into(),
                name: "web".into(),
                resolved: true,
                ..ContainerIdentity::default()
            },
            None,
        );
        match cache.lookup("a") {
            Lookup::Known(c, _) => assert_eq!(c.name, "web"),
            Lookup::Unknown => panic!("resolved entry lost"),
        }
        assert_eq!(cache.cgroup_dirs().len(), 1);
        cache.evict(&["a".to_string()]);
        assert!(matches!(cache.lookup("a"), Lookup::Unknown));
    }
}
