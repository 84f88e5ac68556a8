//! Enforcement that outlives the agent: pins under bpffs.
//!
//! With `--keep-enforcing` the agent pins its links and its lineage and rule maps under
//! `/sys/fs/bpf/shrike`, so the kernel keeps enforcing while the agent is stopped, restarting or
//! crashed (a pinned link stays attached with no process holding it). The next start *adopts*
//! what it finds: it loads its programs on the pinned maps (same lineage, same rules), attaches
//! its own links, and only then removes the old link pins — both sets run for a moment, so
//! there is no gap. Without the flag, a start that finds pins adopts them the same way and then
//! removes them all, and a stop detaches everything.

use std::io;
use std::path::{Path, PathBuf};

use crate::mounts::{self, SpecialFs};

/// Where the pins live, under the bpffs mount.
pub const PIN_DIR: &str = "shrike";

/// Maps whose contents carry over from one agent to the next: lineage, counters and the
/// enforcement rules (the ring buffer and scratch maps are the new agent's own).
pub const ADOPTED_MAPS: &[&str] = &[
    "procs",
    "counters",
    "enforce_state",
    "exec_rule_paths",
    "exec_rule_names",
    "exec_rule_slots",
    "exec_rule_values",
];

/// A pin directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    dir: PathBuf,
}

impl Pins {
    /// The pins a previous run left in /sys/fs/bpf/shrike, if that is a bpffs and they exist
    /// (without a bpffs mounted there, no pins can have survived).
    pub fn existing() -> Option<Pins> {
        let dir = SpecialFs::Bpffs.default_path().join(PIN_DIR);
        let mounted = std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.split_whitespace().nth(1) == Some("/sys/fs/bpf")
                    && l.split_whitespace().nth(2) == Some("bpf")
            });
        (mounted && dir.is_dir()).then_some(Pins { dir })
    }

    /// The pin directory /sys/fs/bpf/shrike, mounting bpffs at /sys/fs/bpf and creating the
    /// directory when needed. Always there, so the next agent finds it.
    pub fn create() -> io::Result<Pins> {
        let root = mounts::ensure_at_default(SpecialFs::Bpffs)?.path;
        let dir = root.join(PIN_DIR);
        std::fs::create_dir_all(dir.join("maps"))?;
        std::fs::create_dir_all(dir.join("links"))?;
        Ok(Pins { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.dir.join("maps").join(name)
    }

    pub fn link(&self, name: &str) -> PathBuf {
        self.dir.join("links").join(name)
    }

    /// The link pins present now.
    pub fn links(&self) -> Vec<PathBuf> {
        list(&self.dir.join("links"))
    }

    /// Removes the link pins in `links`: each link detaches unless something else holds it.
    pub fn remove(links: &[PathBuf]) {
        for link in links {
            let _ = std::fs::remove_file(link);
        }
    }

    /// Removes every pin and the directory. Maps live on while programs or fds still use them.
    pub fn remove_all(&self) {
        Pins::remove(&self.links());
        for map in list(&self.dir.join("maps")) {
            let _ = std::fs::remove_file(map);
        }
        let _ = std::fs::remove_dir(self.dir.join("maps"));
        let _ = std::fs::remove_dir(self.dir.join("links"));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}
