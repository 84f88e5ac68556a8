//! Execs the kernel held for a workload-scoped rule, until the agent kills or resumes them.
//!
//! A rule scoped to a pod, a namespace or an image is enforced in the kernel on the cgroup ids
//! of the containers it covers ([`crate::workload::scope`]). A container's first exec can run
//! before its runtime has described it; there the kernel stops the new image before its first
//! instruction (SIGSTOP) and says so in the exec record. Its event waits here, not yet written,
//! until the cgroup is placed: the agent then kills the process (SIGKILL, the alert's outcome
//! `killed`) when the rule covers the container, and resumes it (SIGCONT) when not. A cgroup
//! whose directory is known and holds no container of its own is placed at once, from the
//! event. An exec held past
//! [`HOLD_LIMIT`] (no runtime answered) is resumed and written as it is, with a warning: the
//! rule cannot be decided without the container's identity. On stop every held exec is resumed.
//! Signals go through a pidfd opened when the exec is parked, so they cannot reach another
//! process that reused the pid. What is held is written down ([`Ledger`]) for the next agent,
//! which resumes it if this one dies holding it.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use shrike_event::{Enforced, EnforcedAction, Event};
use shrike_rules::Policy;
use tracing::{debug, warn};

use super::hold_ledger::{start_time, Ledger};
use crate::workload::scope::ScopeKeeper;

/// How long an exec is held at most: longer than the resolver gives the runtimes to answer.
pub const HOLD_LIMIT: Duration = Duration::from_secs(10);

/// The held execs, oldest first.
#[derive(Default)]
pub(super) struct Holds {
    parked: Vec<Parked>,
    /// Where they are written down for the next agent (None: not written down).
    ledger: Option<Ledger>,
}

struct Parked {
    event: Event,
    rule: u16,
    /// The held process (None: it was gone before it could be opened).
    pidfd: Option<OwnedFd>,
    /// Its start time (`/proc/PID/stat`), which identifies it in the ledger.
    start: Option<u64>,
    since: Instant,
}

impl Holds {
    /// Holds whose execs are written down in `ledger`.
    pub(super) fn with_ledger(ledger: Ledger) -> Self {
        Holds {
            parked: Vec::new(),
            ledger: Some(ledger),
        }
    }

    /// Brings the ledger up to date with what is parked.
    fn record(&mut self) {
        if let Some(ledger) = &mut self.ledger {
            let held: Vec<(u32, u64)> = self
                .parked
                .iter()
                .filter_map(|p| Some((p.event.process.pid, p.start?)))
                .collect();
            ledger.record(&held);
        }
    }

    /// Whether no exec is held.
    pub(super) fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    /// Holds `event`, an exec the kernel stopped for scoped rule `rule`. `cgroup_dir` is its
    /// cgroup's directory, when known: one that is no container's own is placed with `keeper`
    /// at once (an unknown one is left to the cgroup watcher and the resolver).
    pub(super) fn park(
        &mut self,
        event: Event,
        rule: u16,
        cgroup_dir: Option<PathBuf>,
        keeper: &ScopeKeeper,
    ) {
        let cgroup = event.process.cgroup_id;
        if let Some(dir) = cgroup_dir {
            let own_container = event.process.container.as_ref().is_some_and(|c| {
                dir.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(&c.id))
            });
            if !own_container {
                keeper.place(cgroup, dir);
            }
        }
        debug!(
            pid = event.process.pid,
            rule, cgroup, "exec held until its container is described"
        );
        let pidfd = pidfd_open(event.process.pid);
        // Read after the pidfd is open: a process that is gone by now has no entry.
        let start = pidfd.as_ref().and_then(|_| start_time(event.process.pid));
        self.parked.push(Parked {
            pidfd,
            start,
            event,
            rule,
            since: Instant::now(),
        });
        self.record();
    }

    /// The held execs that can be decided now, killed or resumed, as the events to write.
    pub(super) fn decide(&mut self, keeper: &ScopeKeeper, now: Instant) -> Vec<Event> {
        let mut decided = Vec::new();
        let mut i = 0;
        while i < self.parked.len() {
            let p = &self.parked[i];
            let cgroup = p.event.process.cgroup_id;
            let verdict = if keeper.is_placed(cgroup) {
                Some(keeper.covers(p.rule, cgroup))
            } else if now.duration_since(p.since) >= HOLD_LIMIT {
                warn!(
                    pid = p.event.process.pid,
                    binary = %p.event.process.binary,
                    cgroup,
                    held_ms = now.duration_since(p.since).as_millis() as u64,
                    "a held exec is resumed undecided: no runtime described its container in time, so its workload-scoped rule cannot be applied"
                );
                Some(false)
            } else {
                None
            };
            match verdict {
                Some(kill) => decided.push(self.parked.remove(i).release(kill)),
                None => i += 1,
            }
        }
        if !decided.is_empty() {
            self.record();
        }
        decided
    }

    /// After a policy reload (`old` → `new`): each held exec follows its rule to the rule's
    /// index in `new` (by id); one whose rule is gone is resumed. Returns the resumed ones'
    /// events.
    pub(super) fn renumber(&mut self, old: &Policy, new: &Policy) -> Vec<Event> {
        let mut resumed = Vec::new();
        let mut i = 0;
        while i < self.parked.len() {
            let id = old.rule(self.parked[i].rule).map(|r| r.id.clone());
            let index = id.and_then(|id| new.rules().position(|r| r.id == id));
            match index.and_then(|n| u16::try_from(n).ok()) {
                Some(n) => {
                    self.parked[i].rule = n;
                    i += 1;
                }
                None => resumed.push(self.parked.remove(i).release(false)),
            }
        }
        if !resumed.is_empty() {
            self.record();
        }
        resumed
    }

    /// Resumes every held exec (the agent stops), as the events to write.
    pub(super) fn resume_all(&mut self) -> Vec<Event> {
        let resumed = self.parked.drain(..).map(|p| p.release(false)).collect();
        self.record();
        resumed
    }
}

impl Parked {
    /// Kills (`kill`) or resumes the process; the event says what the kernel-side rule did.
    fn release(self, kill: bool) -> Event {
        let mut event = self.event;
        let signal = if kill { libc::SIGKILL } else { libc::SIGCONT };
        let sent = self
            .pidfd
            .as_ref()
            .is_some_and(|fd| send_signal(fd, signal));
        if kill && sent {
            event.enforced = Some(Enforced {
                rule_index: self.rule,
                action: EnforcedAction::Killed,
            });
        }
        debug!(
            pid = event.process.pid,
            rule = self.rule,
            kill,
            sent,
            held_ms = self.since.elapsed().as_millis() as u64,
            "held exec released"
        );
        event
    }
}

/// A pidfd for process `pid`, or None when it is gone.
pub(super) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the descriptor was just returned to us and is owned by nothing else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `signal` to the process behind `fd`; whether it was delivered.
pub(super) fn send_signal(fd: &OwnedFd, signal: i32) -> bool {
    // SAFETY: fd is a live pidfd; a null siginfo asks for the kill(2)-like default.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    r == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::hold_ledger::tests::{stopped_sleep, wait_state};
    use std::sync::Arc;

    use shrike_event::{EventKind, Process};

    /// Checks that `child` was resumed, then ends it.
    fn end_resumed(mut child: std::process::Child) {
        wait_state(child.id(), 'S');
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Puts `event`'s process in container `id` of `runtime`, as its cgroup path names it.
    fn in_container(event: &mut Event, id: &str, runtime: &str) {
        Arc::make_mut(&mut event.process).container = Some(Arc::new(shrike_event::Container {
            id: id.into(),
            runtime: runtime.into(),
        }));
    }

    fn exec_event(pid: u32, cgroup: u64) -> Event {
        Event::new(
            Default::default(),
            EventKind::ProcessExec,
            "node".into(),
            Arc::new(Process {
                pid,
                cgroup_id: cgroup,
                ..Process::default()
            }),
        )
    }

    /// A stopped child (as the kernel leaves a held exec) in a cgroup that is no container's:
    /// parked, it is placed at once and the next decision resumes it, unkilled. One whose
    /// cgroup directory is not known is not placed from the event.
    #[test]
    fn a_host_cgroup_is_placed_and_its_exec_resumed() {
        let child = stopped_sleep();
        let pid = child.id();
        let keeper = ScopeKeeper::new(None);
        let mut holds = Holds::default();
        holds.park(
            exec_event(pid, 4242),
            0,
            Some("/sys/fs/cgroup/system.slice/cron.service".into()),
            &keeper,
        );
        assert!(keeper.is_placed(4242));
        let mut unknown = Holds::default();
        unknown.park(exec_event(0, 4243), 0, None, &keeper);
        assert!(!keeper.is_placed(4243));
        unknown.parked.clear();
        let out = holds.decide(&keeper, Instant::now());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].enforced, None);
        assert!(holds.is_empty());
        end_resumed(child);
    }

    /// A held exec in an unplaced container cgroup waits; past the limit it is resumed.
    #[test]
    fn an_undescribed_container_is_waited_for_then_resumed() {
        let child = stopped_sleep();
        let pid = child.id();
        let keeper = ScopeKeeper::new(None);
        let mut holds = Holds::default();
        let mut event = exec_event(pid, 4343);
        in_container(&mut event, "c0ffee", "podman");
        holds.park(
            event,
            0,
            Some("/sys/fs/cgroup/libpod-c0ffee.scope".into()),
            &keeper,
        );
        assert!(!keeper.is_placed(4343));
        assert!(holds.decide(&keeper, Instant::now()).is_empty());
        wait_state(pid, 'T');
        let out = holds.decide(&keeper, Instant::now() + HOLD_LIMIT);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].enforced, None);
        end_resumed(child);
    }

    /// A held exec whose container the runtime then describes inside the rule's scope is
    /// killed, and its event says the rule killed it; the same in another namespace resumes.
    #[test]
    fn a_covered_container_is_killed_and_another_resumed() {
        let policy = shrike_rules::Policy::compile([(
            "p.yaml",
            "- rule: r\n  id: T\n  severity: high\n  condition: kind = process_exec and process.name = nc and k8s.namespace = prod\n  action: deny\n",
        )])
        .unwrap_or_else(|d| panic!("{}", shrike_rules::text::render_diagnostics(&d)));
        let keeper = ScopeKeeper::new(None);
        keeper
            .load(policy.workload_scopes(), policy.kernel_plan(), |_| {
                Ok::<_, ()>(())
            })
            .unwrap();
        let base = std::env::temp_dir().join(format!("shrike-holds-{}", std::process::id()));
        let mut holds = Holds::default();
        let mut children = Vec::new();
        let mut described = Vec::new();
        for (cgroup, id, namespace) in [(51u64, "aaa1", "prod"), (52, "bbb2", "dev")] {
            let child = stopped_sleep();
            let mut event = exec_event(child.id(), cgroup);
            in_container(&mut event, id, "containerd");
            let dir = base.join(format!("cri-containerd-{id}.scope"));
            std::fs::create_dir_all(&dir).unwrap();
            holds.park(event, 0, Some(dir.clone()), &keeper);
            described.push((
                cgroup,
                dir,
                crate::workload::Identity {
                    container: shrike_event::ContainerIdentity {
                        id: id.into(),
                        resolved: true,
                        ..Default::default()
                    },
                    k8s: Some(shrike_event::PodIdentity {
                        namespace: namespace.into(),
                        ..Default::default()
                    }),
                },
            ));
            children.push(child);
        }
        // Not described yet: both wait.
        assert!(holds.decide(&keeper, Instant::now()).is_empty());
        for (cgroup, dir, identity) in described {
            keeper.added(cgroup, dir, identity);
        }
        let out = holds.decide(&keeper, Instant::now());
        let _ = std::fs::remove_dir_all(&base);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].enforced,
            Some(Enforced {
                rule_index: 0,
                action: EnforcedAction::Killed
            })
        );
        assert_eq!(out[1].enforced, None);
        let resumed = children.pop().unwrap();
        let killed = children[0].wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&killed),
            Some(libc::SIGKILL)
        );
        end_resumed(resumed);
    }

    /// A reload moves a held exec's rule to its new index, and resumes it when the rule went.
    #[test]
    fn a_reload_renumbers_held_rules_or_resumes() {
        let compile = |text: &str| {
            shrike_rules::Policy::compile([("p.yaml", text)])
                .unwrap_or_else(|d| panic!("{}", shrike_rules::text::render_diagnostics(&d)))
        };
        let rule = |id: &str| {
            format!("- rule: r{id}\n  id: {id}\n  severity: high\n  condition: kind = process_exec and process.name = nc{id} and k8s.namespace = prod\n  action: deny\n")
        };
        let old = compile(&(rule("A") + &rule("B")));
        let moved = compile(&(rule("C") + &rule("D") + &rule("B")));
        let gone = compile(&rule("A"));
        let child = stopped_sleep();
        let pid = child.id();
        let keeper = ScopeKeeper::new(None);
        let mut holds = Holds::default();
        let mut event = exec_event(pid, 4545);
        in_container(&mut event, "abcd", "podman");
        holds.park(event, 1, Some("/x/libpod-abcd.scope".into()), &keeper);
        assert!(holds.renumber(&old, &moved).is_empty());
        assert_eq!(holds.parked[0].rule, 2);
        assert_eq!(holds.renumber(&moved, &gone).len(), 1);
        assert!(holds.is_empty());
        end_resumed(child);
    }

    /// Every held exec is resumed on stop.
    #[test]
    fn resume_all_resumes() {
        let child = stopped_sleep();
        let pid = child.id();
        let keeper = ScopeKeeper::new(None);
        let mut holds = Holds::default();
        let mut event = exec_event(pid, 4444);
        in_container(&mut event, "feed", "podman");
        holds.park(event, 0, Some("/x/libpod-feed.scope".into()), &keeper);
        assert_eq!(holds.resume_all().len(), 1);
        end_resumed(child);
    }
}
