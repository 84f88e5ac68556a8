//! cgroup ids to containers.
//!
//! Exec records carry the cgroup v2 id (the inode number of the cgroup's directory). To name the
//! container, the agent maps ids to paths by walking the cgroup2 file system — once at start,
//! and again (at most once a second) when an unknown id shows up — and parses the path with
//! [`shrike_proctree::container`]. An id not placed yet is first looked for where the exec'ing
//! process's `/proc/<pid>/cgroup` says it is (a container's first exec comes right after its
//! cgroup is made, often too soon for a walk); an id neither finds is "no container" (cached);
//! an id first seen too soon after a walk is "no container" until the next walk places it.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shrike_event::Container;
use shrike_proctree::container::from_cgroup_path;

/// Least time between two walks: a cgroup created since the last one is placed by the first lookup
/// at least this long after it (its events until then say "no container").
const REWALK: Duration = Duration::from_secs(1);
const MAX_DEPTH: usize = 16;
const MAX_DIRS: usize = 200_000;

pub struct CgroupResolver {
    root: Option<PathBuf>,
    /// Shared with every process of the container (one allocation per container).
    known: HashMap<u64, Option<Arc<Container>>>,
    /// The directories of container cgroups (for the workload cache to notice them go).
    dirs: HashMap<u64, PathBuf>,
    walked: Option<Instant>,
}

impl CgroupResolver {
    /// A resolver over the cgroup2 mount at `root` (none: every id is "no container").
    pub fn new(root: Option<PathBuf>) -> Self {
        let mut r = CgroupResolver {
            root,
            known: HashMap::new(),
            dirs: HashMap::new(),
            walked: None,
        };
        r.walk();
        r
    }

    /// The container of cgroup `id`, if it is one; `pid` is a process in it (0: none known).
    pub fn container(&mut self, id: u64, pid: u32) -> Option<Arc<Container>> {
        if let Some(known) = self.known.get(&id) {
            return known.clone();
        }
        if let Some(found) = self.place_by_pid(id, pid) {
            return found;
        }
        if self.walked.is_none_or(|t| t.elapsed() >= REWALK) {
            self.walk();
            return self.known.entry(id).or_insert(None).clone();
        }
        // Not placed yet and too soon to walk again: "no container" for now, not cached, so
        // the next walk places a cgroup created since the last one.
        None
    }

    /// The cgroup directory of a container cgroup placed so far.
    pub fn dir(&self, id: u64) -> Option<PathBuf> {
        self.dirs.get(&id).cloned()
    }

    /// Places `id` from `pid`'s own cgroup v2 path, when that directory is cgroup `id`.
    fn place_by_pid(&mut self, id: u64, pid: u32) -> Option<Option<Arc<Container>>> {
        let root = self.root.clone()?;
        if pid == 0 {
            return None;
        }
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
        let dir = root.join(rel.trim_start_matches('/'));
        if std::fs::metadata(&dir).ok()?.ino() != id {
            return None;
        }
        Some(self.record(id, rel, &dir))
    }

    fn record(&mut self, id: u64, rel: &str, dir: &Path) -> Option<Arc<Container>> {
        let container = from_cgroup_path(rel).map(Arc::new);
        if container.is_some() {
            self.dirs.insert(id, dir.to_path_buf());
        }
        self.known.insert(id, container.clone());
        container
    }

    fn walk(&mut self) {
        self.walked = Some(Instant::now());
        let Some(root) = self.root.clone() else {
            return;
        };
        let mut stack = vec![(root.clone(), 0usize)];
        let mut seen = 0;
        while let Some((dir, depth)) = stack.pop() {
            seen += 1;
            if seen > MAX_DIRS {
                break;
            }
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            let rel = relative(&root, &dir);
            self.record(meta.ino(), &rel, &dir);
            if depth >= MAX_DEPTH {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push((entry.path(), depth + 1));
                    }
                }
            }
        }
    }
}

fn relative(root: &Path, dir: &Path) -> String {
    format!(
        "/{}",
        dir.strip_prefix(root).unwrap_or(dir).to_string_lossy()
    )
}
