//! Where the running policy comes from, and noticing when it changed.
//!
//! The policy is the embedded default pack (unless turned off) plus the files given with
//! `--policy`, compiled together. A reload — on SIGHUP or when one of the files changes — compiles
//! a whole new policy first; only a policy that compiled replaces the running one, so a bad edit
//! leaves the old policy in force and is reported with its `file:line:col` errors.
//!
//! **A file caught mid-write is never applied.** An editor or a deployment tool that rewrites a
//! file in place leaves it empty or cut for a moment, and a cut file can still parse (a deny rule
//! without its `action: deny` line is an alert rule). So a change is only read once every file
//! has kept its size, modification time and inode for [`SETTLE`], and it is applied only if the
//! files are still the same after compiling. A reload that removes, weakens (to `alert`, `audit`
//! or disabled) or changes an enforcing rule is held until the files have not changed for
//! [`HOLD`]: a truncated or empty file that stays so that long is taken as meant. SIGHUP is the
//! operator's explicit word and skips the hold (not the settling). Every outcome — applied, held,
//! refused — is a `policy_change` event naming the enforcing rules it touches.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shrike_event::EnforcedRuleChange;
use shrike_rules::{Action, Diagnostic, Mode, Policy};
/// The files of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// Load the embedded default pack first.
    pub default_pack: bool,
    /// Extra policy files, in load order.
    pub files: Vec<PathBuf>,
}

impl PolicySource {
    /// Compiles the policy: the default pack (if on) and the files. A file that is a copy of one
    /// of the embedded pack's files (`shrike policy validate policies/default/*.yaml`) is the
    /// pack itself: it is compiled once, not once more against itself.
    pub fn compile(&self) -> Result<Policy, Vec<Diagnostic>> {
        let files: Vec<&PathBuf> = self
            .files
            .iter()
            .filter(|f| !(self.default_pack && is_pack_copy(f)))
            .collect();
        match (self.default_pack, files.is_empty()) {
            (true, true) => Policy::default_pack(),
            (true, false) => Policy::default_pack_with(&files),
            (false, _) => Policy::load(&files),
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

/// Whether `path` holds exactly the text of one of the embedded default pack's files.
fn is_pack_copy(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| {
        shrike_rules::pack::DEFAULT_PACK
            .iter()
            .any(|(_, text)| text.as_bytes() == bytes.as_slice())
    })
}

/// How often unchanged files are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long every file must keep its size, modification time and inode before it is read.
pub const SETTLE: Duration = Duration::from_secs(1);

/// How long the files must stay unchanged before a reload that weakens enforcement is applied
/// (without SIGHUP).
pub const HOLD: Duration = Duration::from_secs(10);

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Sighup,
    FileChanged,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Sighup => "sighup",
            Trigger::FileChanged => "file_changed",
        }
    }
}

/// A reload to attempt now: the files have settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub trigger: Trigger,
    /// How long the files have been unchanged.
    pub stable_for: Duration,
}

/// What identifies one state of a file: a rewrite in place changes the size or the modification
/// time, an atomic rename the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime_ns: i128,
    dev: u64,
    ino: u64,
}

struct Pending {
    trigger: Trigger,
    stamps: Vec<Option<Stamp>>,
    /// When the files last changed (or the request came).
    since: Instant,
    attempt_at: Instant,
}

/// Says when the policy should be reloaded: on SIGHUP, or when a file changed, once the files
/// have settled ([`SETTLE`]).
pub struct PolicyWatch {
    files: Vec<PathBuf>,
    /// The files as of the last reload attempt that ended (or start-up).
    baseline: Vec<Option<Stamp>>,
    pending: Option<Pending>,
    next_check: Instant,
    sighup: Arc<AtomicBool>,
}

impl PolicyWatch {
    /// Watches `source`'s files, and SIGHUP.
    pub fn new(source: &PolicySource) -> std::io::Result<Self> {
        let sighup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, sighup.clone())?;
        let files = source.files.clone();
        Ok(PolicyWatch {
            baseline: stamps(&files),
            files,
            pending: None,
            next_check: Instant::now() + CHECK_EVERY,
            sighup,
        })
    }

    /// A reload to attempt now, if one is due: SIGHUP arrived or a file changed (appeared,
    /// vanished), and every file has stayed the same since for [`SETTLE`] (or the hold asked
    /// for). Call [`PolicyWatch::finish`] or [`PolicyWatch::hold`] after the attempt.
    pub fn due(&mut self) -> Option<Due> {
        let now = Instant::now();
        if self.sighup.swap(false, Ordering::Relaxed) {
            match &mut self.pending {
                Some(p) => {
                    p.trigger = Trigger::Sighup;
                    p.attempt_at = p.since + SETTLE;
                }
                None => {
                    self.pending = Some(Pending {
                        trigger: Trigger::Sighup,
                        stamps: stamps(&self.files),
                        since: now,
                        attempt_at: now + SETTLE,
                    })
                }
            }
        }
        let Some(p) = &mut self.pending else {
            if now < self.next_check {
                return None;
            }
            self.next_check = now + CHECK_EVERY;
            let current = stamps(&self.files);
            if current != self.baseline {
                self.pending = Some(Pending {
                    trigger: Trigger::FileChanged,
                    stamps: current,
                    since: now,
                    attempt_at: now + SETTLE,
                });
            }
            return None;
        };
        let current = stamps(&self.files);
        if current != p.stamps {
            p.stamps = current;
            p.since = now;
            p.attempt_at = now + SETTLE;
            return None;
        }
        (now >= p.attempt_at).then(|| Due {
            trigger: p.trigger,
            stable_for: now - p.since,
        })
    }

    /// Whether the files are still as they were when [`PolicyWatch::due`] said so: a policy
    /// compiled from files that changed while being read is not applied.
    pub fn unchanged(&self) -> bool {
        self.pending
            .as_ref()
            .is_none_or(|p| stamps(&self.files) == p.stamps)
    }

    /// The attempt is over (applied or refused): nothing is pending until the files change.
    pub fn finish(&mut self) {
        if let Some(p) = self.pending.take() {
            self.baseline = p.stamps;
        }
        self.next_check = Instant::now() + CHECK_EVERY;
    }

    /// Try again once the files have been unchanged for `stable` (a change starts over).
    pub fn hold(&mut self, stable: Duration) {
        if let Some(p) = &mut self.pending {
            p.attempt_at = p.since + stable;
        }
    }
}

fn stamps(files: &[PathBuf]) -> Vec<Option<Stamp>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f).ok().map(|m| Stamp {
                len: m.len(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                dev: m.dev(),
                ino: m.ino(),
            })
        })
        .collect()
}

/// The enforcing rules of `old` (deny/kill, mode enforce, enabled) that `new` removes, weakens
/// or changes, in `old`'s order.
pub fn enforced_changes(old: &Policy, new: &Policy) -> Vec<EnforcedRuleChange> {
    let enforcing = |action: Action, mode: Mode, enabled: bool| {
        action != Action::Alert && mode == Mode::Enforce && enabled
    };
    old.rules()
        .filter(|r| enforcing(r.action, r.mode, r.enabled))
        .filter_map(|was| {
            let now = match new.rule_by_id(&was.id) {
                None => "removed",
                Some(r) if !r.enabled => "disabled",
                Some(r) if r.action == Action::Alert => "alert",
                Some(r) if r.mode == Mode::Audit => "audit",
                Some(r) if !old.same_condition(was.index, new, r.index) => "condition_changed",
                Some(_) => return None,
            };
            Some(EnforcedRuleChange {
                rule_id: was.id.clone(),
                rule: was.name.clone(),
                was: was.action.as_str().to_string(),
                now: now.to_string(),
            })
        })
        .collect()
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

    fn watch_on(f: &std::path::Path) -> PolicyWatch {
        PolicyWatch::new(&PolicySource {
            default_pack: false,
            files: vec![f.to_path_buf()],
        })
        .unwrap()
    }

    /// A file rewritten in small pieces is not read until it has stopped changing for SETTLE;
    /// then the reload is due once, and after `finish` nothing is pending.
    #[test]
    fn watch_waits_until_a_changed_file_settles() {
        let dir = std::env::temp_dir().join(format!("shrike-policy-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.yaml");
        std::fs::write(&f, "[]").unwrap();
        let mut watch = watch_on(&f);
        watch.next_check = Instant::now();
        assert_eq!(watch.due(), None);
        let started = Instant::now();
        let mut text = String::new();
        // A slow writer: a piece every 300 ms for 1.5 s, each one a moment the file is cut.
        for piece in 0..5 {
            text.push_str(&format!("# piece {piece}\n"));
            std::fs::write(&f, &text).unwrap();
            watch.next_check = Instant::now();
            for _ in 0..3 {
                assert_eq!(
                    watch.due(),
                    None,
                    "due while the file was still being written"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let due = loop {
            if let Some(due) = watch.due() {
                break due;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never due");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(due.trigger, Trigger::FileChanged);
        assert!(due.stable_for >= SETTLE, "{due:?}");
        assert!(watch.unchanged());
        watch.finish();
        watch.next_check = Instant::now();
        assert_eq!(watch.due(), None, "nothing changed since");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An atomic rename with the same size and modification time is a change (its inode
    /// differs); `hold` postpones the attempt until the files have been stable that long.
    #[test]
    fn watch_notices_a_rename_and_holds_on_request() {
        let dir = std::env::temp_dir().join(format!("shrike-policy-rename-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.yaml");
        std::fs::write(&f, "[]").unwrap();
        let when = std::fs::metadata(&f).unwrap().modified().unwrap();
        let mut watch = watch_on(&f);
        let tmp = dir.join("p.yaml.tmp");
        std::fs::write(&tmp, "{}").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(when)
            .unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        watch.next_check = Instant::now();
        assert_eq!(watch.due(), None);
        std::thread::sleep(SETTLE);
        let due = watch.due().expect("due after settling");
        assert_eq!(due.trigger, Trigger::FileChanged);
        watch.hold(Duration::from_secs(3600));
        assert_eq!(watch.due(), None, "held");
        // SIGHUP ends the hold (the files are already settled).
        watch.sighup.store(true, Ordering::Relaxed);
        assert_eq!(watch.due().map(|d| d.trigger), Some(Trigger::Sighup));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn compile(text: &str) -> Policy {
        Policy::compile([("p.yaml", text)]).unwrap()
    }

    const DENY: &str = "- list: jail\n  items: [/tmp/jail/a, /tmp/jail/b]\n- rule: Jail\n  id: T-JAIL\n  severity: high\n  mitre: [T1059]\n  condition: kind = process_exec and process.binary in (jail)\n  action: deny\n";
    const ALERT: &str = "- rule: Watch\n  id: T-WATCH\n  severity: low\n  mitre: [T1059]\n  condition: kind = process_exec and process.binary = /tmp/w\n";

    fn changes(old: &str, new: &str) -> Vec<(String, String)> {
        enforced_changes(&compile(old), &compile(new))
            .into_iter()
            .map(|c| (c.rule_id, c.now))
            .collect()
    }

    /// Each way a reload can loosen an enforcing rule is named; moving a rule, adding rules and
    /// editing alert rules are not.
    #[test]
    fn enforced_changes_name_removed_weakened_and_changed_rules() {
        let deny = format!("{ALERT}{DENY}");
        assert_eq!(changes(&deny, ALERT), [("T-JAIL".into(), "removed".into())]);
        assert_eq!(
            changes(&deny, &deny.replace("action: deny", "action: alert")),
            [("T-JAIL".into(), "alert".into())]
        );
        assert_eq!(
            changes(&deny, &format!("{deny}  mode: audit\n")),
            [("T-JAIL".into(), "audit".into())]
        );
        assert_eq!(
            changes(&deny, &format!("{deny}  enabled: false\n")),
            [("T-JAIL".into(), "disabled".into())]
        );
        // Through the list it uses.
        assert_eq!(
            changes(&deny, &deny.replace(", /tmp/jail/b", "")),
            [("T-JAIL".into(), "condition_changed".into())]
        );
        assert!(changes(&deny, &format!("{DENY}{ALERT}")).is_empty());
        assert!(changes(&deny, &deny.replace("/tmp/w", "/tmp/v")).is_empty());
        assert!(
            changes(ALERT, "[]").is_empty(),
            "alert rules do not enforce"
        );
    }
}
