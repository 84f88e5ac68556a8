//! Where the running policy comes from, and noticing when it changed.
//!
//! The policy is the embedded default pack (unless turned off) plus the files given with
//! `--policy`, compiled together. A reload — on SIGHUP or when one of the files changes — compiles
//! a whole new policy first; only a policy that compiled replaces the running one, so a bad edit
//! leaves the old policy in force and is reported with its `file:line:col` errors.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use shrike_rules::{Diagnostic, Policy};

/// The files of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// Load the embedded default pack first.
    pub default_pack: bool,
    /// Extra policy files, in load order.
    pub files: Vec<PathBuf>,
}

impl PolicySource {
    /// Compiles the policy: the default pack (if on) and the files.
    pub fn compile(&self) -> Result<Policy, Vec<Diagnostic>> {
        match (self.default_pack, self.files.is_empty()) {
            (true, true) => Policy::default_pack(),
            (true, false) => Policy::default_pack_with(&self.files),
            (false, _) => Policy::load(&self.files),
        }
    }

    /// A short description for logs: "default pack + 2 files".
    pub fn describe(&self) -> String {
        let files = self
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        match (self.default_pack, self.files.is_empty()) {
            (true, true) => "the default pack".to_string(),
            (true, false) => format!("the default pack + {files}"),
            (false, true) => "no rules".to_string(),
            (false, false) => files,
        }
    }
}

const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Says when the policy should be reloaded: on SIGHUP, or when a file's modification time
/// changed.
pub struct PolicyWatch {
    files: Vec<(PathBuf, Option<SystemTime>)>,
    next_check: Instant,
    sighup: Arc<AtomicBool>,
}

impl PolicyWatch {
    /// Watches `source`'s files, and SIGHUP.
    pub fn new(source: &PolicySource) -> std::io::Result<Self> {
        let sighup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, sighup.clone())?;
        Ok(PolicyWatch {
            files: source.files.iter().map(|f| (f.clone(), mtime(f))).collect(),
            next_check: Instant::now() + CHECK_EVERY,
            sighup,
        })
    }

    /// Whether a reload is due: SIGHUP arrived, or a file changed (or appeared, or vanished)
    /// since the last call that said so. Files are checked at most every two seconds.
    pub fn changed(&mut self) -> bool {
        if self.sighup.swap(false, Ordering::Relaxed) {
            for (path, seen) in &mut self.files {
                *seen = mtime(path);
            }
            return true;
        }
        if Instant::now() < self.next_check {
            return false;
        }
        self.next_check = Instant::now() + CHECK_EVERY;
        let mut changed = false;
        for (path, seen) in &mut self.files {
            let now = mtime(path);
            if now != *seen {
                *seen = now;
                changed = true;
            }
        }
        changed
    }
}

fn mtime(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pack_compiles_and_extra_files_are_added() {
        let dir = std::env::temp_dir().join(format!("shrike-policy-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let extra = dir.join("extra.yaml");
        std::fs::write(
            &extra,
            "- rule: Extra\n  id: T-EXTRA-1\n  severity: low\n  mitre: [T1059]\n  condition: kind = process_exec and process.binary = /usr/bin/xyz\n",
        )
        .unwrap();
        let base = PolicySource {
            default_pack: true,
            files: vec![],
        }
        .compile()
        .unwrap();
        let more = PolicySource {
            default_pack: true,
            files: vec![extra.clone()],
        }
        .compile()
        .unwrap();
        assert_eq!(more.rules().count(), base.rules().count() + 1);
        let only = PolicySource {
            default_pack: false,
            files: vec![extra.clone()],
        }
        .compile()
        .unwrap();
        assert_eq!(only.rules().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_file_is_refused_with_positions() {
        let dir = std::env::temp_dir().join(format!("shrike-policy-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "- rule: Bad\n  id: T-BAD-1\n  severity: low\n  mitre: [T1059]\n  condition: kind = process_exec and proc.nmae = x\n").unwrap();
        let diags = PolicySource {
            default_pack: false,
            files: vec![bad.clone()],
        }
        .compile()
        .unwrap_err();
        let text = diags[0].to_string();
        assert!(text.starts_with(&format!("{}:5:", bad.display())), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn watch_notices_a_changed_file() {
        let dir = std::env::temp_dir().join(format!("shrike-policy-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.yaml");
        std::fs::write(&f, "[]").unwrap();
        let mut watch = PolicyWatch::new(&PolicySource {
            default_pack: false,
            files: vec![f.clone()],
        })
        .unwrap();
        watch.next_check = Instant::now();
        assert!(!watch.changed());
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(later)
            .unwrap();
        watch.next_check = Instant::now();
        assert!(watch.changed());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
