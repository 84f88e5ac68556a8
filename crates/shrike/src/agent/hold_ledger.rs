//! The held execs, written down where the next agent looks. A held exec stays stopped until
//! somebody resumes it, and an agent that dies (SIGKILL, a crash, the OOM killer) cannot. While
//! it holds anything the agent keeps a ledger, `/run/shrike/held/<its pid>` (root-only): its
//! own start time, then one line per held process, pid and start time as `/proc/PID/stat`
//! counts them, so that a reused pid is never taken for it. The file is rewritten when the set
//! changes and removed when it empties. An agent that starts resumes every process listed in
//! the ledger of an agent that is no longer alive — if it is still the same process and still
//! stopped — and says so in its log: the rule that held it can no longer be decided (its event
//! went with the dead agent), so it runs, as an exec held past the limit does. Not covered: an
//! exec stopped so shortly before the agent died that its record was still in the ring buffer.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::warn;

use super::holds::{pidfd_open, send_signal};

/// Where the ledgers live.
pub const LEDGER_DIR: &str = "/run/shrike/held";

/// This agent's ledger.
pub(super) struct Ledger {
    dir: PathBuf,
    path: PathBuf,
    /// What the file says now (empty: there is no file).
    written: Vec<(u32, u64)>,
    /// A failure to write was logged (logged once, not on every change).
    warned: bool,
}

impl Ledger {
    /// The ledger of this agent in `dir` (nothing is written until something is held).
    pub(super) fn new(dir: &Path) -> Self {
        Ledger {
            dir: dir.to_path_buf(),
            path: dir.join(std::process::id().to_string()),
            written: Vec::new(),
            warned: false,
        }
    }

    /// Makes the ledger say `held` (pid, start time): rewritten (atomically) when it changed,
    /// removed when empty.
    pub(super) fn record(&mut self, held: &[(u32, u64)]) {
        if held == self.written.as_slice() {
            return;
        }
        let result = if held.is_empty() {
            std::fs::remove_file(&self.path).map(|()| {
                // Other agents' ledgers may be there too: then the directory stays.
                let _ = std::fs::remove_dir(&self.dir);
            })
        } else {
            self.write(held)
        };
        match result {
            Ok(()) => self.written = held.to_vec(),
            Err(err) if !self.warned => {
                self.warned = true;
                warn!(%err, path = %self.path.display(), "the held execs could not be written down: if this agent dies, the next one cannot resume them");
            }
            Err(_) => {}
        }
    }

    fn write(&self, held: &[(u32, u64)]) -> io::Result<()> {
        ensure_private_dir(&self.dir)?;
        let me = start_time(std::process::id()).unwrap_or_default();
        let mut text = format!("agent {me}\n");
        for (pid, start) in held {
            text.push_str(&format!("{pid} {start}\n"));
        }
        let tmp = self.path.with_extension("new");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// Resumes the processes listed in the ledgers in `dir` of agents that are no longer alive
/// (the ledger of a live agent, this one's included, is left alone) and removes those
/// ledgers; returns how many processes were resumed.
pub(super) fn resume_orphans(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut resumed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(agent) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut lines = text.lines();
        let agent_start = lines
            .next()
            .and_then(|l| l.strip_prefix("agent "))
            .and_then(|s| s.parse::<u64>().ok());
        if agent_alive(agent, agent_start) {
            continue;
        }
        for line in lines {
            let mut fields = line.split(' ').map(|f| f.parse::<u64>().ok());
            if let (Some(Some(pid)), Some(Some(start))) = (fields.next(), fields.next()) {
                if resume_if_same(pid as u32, start) {
                    resumed += 1;
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir(dir);
    resumed
}

/// Whether the agent with pid `pid` that started at `start` still runs: the same process, and
/// not a zombie its parent has yet to reap.
fn agent_alive(pid: u32, start: Option<u64>) -> bool {
    match (stat(pid), start) {
        (Some((state, at)), Some(start)) => at == start && !matches!(state, 'Z' | 'X'),
        _ => false,
    }
}

/// Resumes process `pid` if it is the one that started at `start` and it is stopped.
fn resume_if_same(pid: u32, start: u64) -> bool {
    // Opened first: the stat read after it is of the same process if the start time matches.
    let Some(fd) = pidfd_open(pid) else {
        return false;
    };
    stat(pid) == Some(('T', start)) && send_signal(&fd, libc::SIGCONT)
}

/// A process's start time (clock ticks after boot, `/proc/PID/stat`), if it is alive.
pub(super) fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// A process's state letter and start time from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (which may hold spaces and parentheses): field 3, the state, on.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Creates `dir` (and shrike's run directory above it) root-only, or checks that it is.
fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    use shrike_bpf::mounts::{check_private_dir, create_private_dir, prepare_run_dir};
    if dir.starts_with(shrike_bpf::mounts::RUN_DIR) {
        prepare_run_dir()?;
    }
    match std::fs::symlink_metadata(dir) {
        Ok(_) => check_private_dir(dir, "the held-exec ledger directory"),
        Err(err) if err.kind() == io::ErrorKind::NotFound => create_private_dir(dir),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// A child stopped as the kernel leaves a held exec.
    pub(in crate::agent) fn stopped_sleep() -> std::process::Child {
        let child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        // SAFETY: kill with a live child's pid and a valid signal.
        unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
        wait_state(child.id(), 'T');
        child
    }

    /// Waits (5 s at most) until process `pid` is in state `want`.
    pub(in crate::agent) fn wait_state(pid: u32, want: char) {
        for _ in 0..500 {
            if stat(pid).map(|(s, _)| s) == Some(want) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("process {pid} never reached state {want}: {:?}", stat(pid));
    }

    fn private_tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "shrike-ledger-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A ledger left by a dead agent: its stopped process is resumed (and only when it is the
    /// same process: a wrong start time is a reused pid, left alone); the ledger is removed.
    #[test]
    fn a_dead_agents_held_process_is_resumed_and_a_reused_pid_is_not() {
        let dir = private_tempdir();
        let (mut held, mut other) = (stopped_sleep(), stopped_sleep());
        let held_start = start_time(held.id()).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        // A pid above the kernel's largest (2^22): this ledger's agent is gone.
        std::fs::write(
            dir.join("4194305"),
            format!(
                "agent 1\n{} {held_start}\n{} {}\n",
                held.id(),
                other.id(),
                held_start + 12345
            ),
        )
        .unwrap();
        assert_eq!(resume_orphans(&dir), 1);
        wait_state(held.id(), 'S');
        assert_eq!(stat(other.id()).map(|(s, _)| s), Some('T'));
        assert!(!dir.exists(), "the dead agent's ledger is removed");
        for child in [&mut held, &mut other] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// The ledger of a live agent (here: this process) is left alone, and what this agent
    /// records is what the next one reads: written when something is held, gone when not.
    #[test]
    fn a_live_agents_ledger_is_left_alone_and_emptied_when_nothing_is_held() {
        let dir = private_tempdir();
        let mut child = stopped_sleep();
        let start = start_time(child.id()).unwrap();
        let mut ledger = Ledger::new(&dir);
        ledger.record(&[(child.id(), start)]);
        let text = std::fs::read_to_string(dir.join(std::process::id().to_string())).unwrap();
        assert_eq!(
            text,
            format!(
                "agent {}\n{} {start}\n",
                start_time(std::process::id()).unwrap(),
                child.id()
            )
        );
        assert_eq!(resume_orphans(&dir), 0, "this agent is alive");
        assert_eq!(stat(child.id()).map(|(s, _)| s), Some('T'));
        ledger.record(&[]);
        assert!(
            !dir.exists(),
            "an empty ledger leaves no file and no directory"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
