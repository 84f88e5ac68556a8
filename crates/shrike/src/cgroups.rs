//! cgroup ids to containers.
//!
//! Exec records carry the cgroup v2 id (the inode number of the cgroup's directory). To name the
//! container, the agent maps ids to paths by walking the cgroup2 file system — once at start,
//! and again (at most once a second) when an unknown id shows up — and parses the path with
//! [`shrike_proctree::container`]. An id a walk cannot place is "no container" (cached); an
//! id first seen too soon after a walk is "no container" until the next walk places it.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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
    known: HashMap<u64, Option<Container>>,
    walked: Option<Instant>,
}

impl CgroupResolver {
    /// A resolver over the cgroup2 mount at `root` (none: every id is "no container").
    pub fn new(root: Option<PathBuf>) -> Self {
        let mut r = CgroupResolver {
            root,
            known: HashMap::new(),
            walked: None,
        };
        r.walk();
        r
    }

    /// The container of cgroup `id`, if it is one.
    pub fn container(&mut self, id: u64) -> Option<Container> {
        if let Some(known) = self.known.get(&id) {
            return known.clone();
        }
        if self.walked.is_none_or(|t| t.elapsed() >= REWALK) {
            self.walk();
            return self.known.entry(id).or_insert(None).clone();
        }
        // Not placed yet and too soon to walk again: "no container" for now, not cached, so
        // the next walk places a cgroup created since the last one.
        None
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
            self.known.insert(meta.ino(), from_cgroup_path(&rel));
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
