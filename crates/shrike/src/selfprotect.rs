//! Self-protection alerts: a signal or ptrace aimed at the agent by another process, or the
//! removal of its pins, is an alert on every kernel — refused (`denied`) where `--protect-self`
//! runs on BPF LSM, only reported (`alerted`) elsewhere; a grab of its BPF programs, maps or
//! links is refused and alerted where `--protect-self` runs (BPF LSM only: no other hook sees
//! it). A built-in rule rather than a policy rule, because it needs the agent's own pid, which no
//! policy file can know.

use shrike_event::{Alert, Event, EventKind};

pub const RULE_ID: &str = "SHR-SELF-001";

/// `bpf.prog_type` of the `bpf_load` event that tells of a refused grab of one of the agent's
/// own objects: this prefix and `prog`, `map` or `link`.
pub const OWN_OBJECT_PREFIX: &str = "shrike_";

/// Signals a process receives in the ordinary course of things: SIGCHLD, SIGWINCH, SIGURG.
const BENIGN_SIGNALS: &[i32] = &[17, 28, 23];

/// The self-protection alert for `event`, if it is an attempt against the agent (`self_pid`).
pub fn alert(event: &Event, self_pid: u32, protecting: bool) -> Option<Alert> {
    if event.process.pid == self_pid {
        return None;
    }
    let against_agent = match event.kind {
        EventKind::Signal => event.signal().is_some_and(|s| {
            s.target_pid == self_pid && s.signal != 0 && !BENIGN_SIGNALS.contains(&s.signal)
        }),
        EventKind::Ptrace => event
            .ptrace()
            .as_ref()
            .is_some_and(|p| p.target_pid == self_pid),
        EventKind::BpfLoad => event
            .bpf()
            .as_ref()
            .is_some_and(|b| b.prog_type.starts_with(OWN_OBJECT_PREFIX)),
        EventKind::FileUnlink => event
            .file()
            .as_ref()
            .is_some_and(|f| f.path.starts_with("/sys/fs/bpf/shrike")),
        _ => false,
    };
    if !against_agent {
        return None;
    }
    let denied = event.result == Some(-i64::from(libc::EPERM)) && protecting;
    Some(Alert {
        rule_id: RULE_ID.into(),
        rule: "Attempt to stop, trace or unload the shrike agent".into(),
        severity: "critical".into(),
        action: if protecting { "deny" } else { "alert" }.into(),
        outcome: if denied { "denied" } else { "alerted" }.into(),
        mitre: vec!["T1562.001".into()],
        incident_id: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shrike_event::{Process, Signal, Timestamp};

    use super::*;

    fn signal(from: u32, to: u32, sig: i32, result: i64) -> Event {
        let p = Arc::new(Process {
            pid: from,
            ..Process::default()
        });
        let mut e = Event::new(Timestamp(0), EventKind::Signal, "n".into(), p);
        e.set_signal(Signal {
            signal: sig,
            target_pid: to,
            target_binary: "/usr/bin/shrike".into(),
        });
        e.result = Some(result);
        e
    }

    #[test]
    fn a_kill_of_the_agent_is_alerted_and_says_denied_only_when_refused() {
        let a = alert(&signal(10, 99, 15, 0), 99, false).unwrap();
        assert_eq!(
            (a.outcome.as_str(), a.action.as_str()),
            ("alerted", "alert")
        );
        let a = alert(&signal(10, 99, 9, -1), 99, true).unwrap();
        assert_eq!(a.outcome, "denied");
    }

    #[test]
    fn ordinary_signals_and_other_targets_are_not_alerts() {
        assert!(alert(&signal(10, 99, 17, 0), 99, true).is_none(), "SIGCHLD");
        assert!(
            alert(&signal(10, 50, 9, 0), 99, true).is_none(),
            "another process"
        );
        assert!(
            alert(&signal(99, 99, 15, 0), 99, true).is_none(),
            "the agent itself"
        );
    }
}
