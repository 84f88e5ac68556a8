//! The bounded cache of container identities, shared by the pipeline and the resolver.
//!
//! One entry per container id: pending (only the id is known, a lookup is under way) or
//! resolved. Entries whose cgroup directory is gone are dropped by [`Cache::evict_gone`]; when
//! full, the least recently used entry makes room.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use shrike_event::{ContainerIdentity, PodIdentity};

/// Containers remembered at most (a node runs a few hundred; this leaves room for churn).
pub const CAPACITY: usize = 4096;

struct Entry {
    container: Arc<ContainerIdentity>,
    k8s: Option<Arc<PodIdentity>>,
    cgroup_dir: Option<PathBuf>,
    used: u64,
}

/// What the cache knows of a container.
pub enum Lookup {
    Known(Arc<ContainerIdentity>, Option<Arc<PodIdentity>>),
    Unknown,
}

pub struct Cache {
    entries: HashMap<String, Entry>,
    capacity: usize,
    tick: u64,
    resolved: u64,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            entries: HashMap::new(),
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
        self.insert(container.id.clone(), container, None, cgroup_dir);
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
