//! `--output compact`: one readable line per event for a human at a terminal.
//!
//! The line leads with time, kind and process, then the kind's object, then alerts, so that a
//! column-aligned `grep` works. An incident is the exception: a block of a few indented lines
//! (root, first alert, counts, rules, techniques) under an `INCIDENT` line. It is for reading,
//! not parsing: the JSON output is the contract.
//! Every character a terminal would act on (escape sequences, newlines, C1 and bidi controls)
//! is escaped as JSON escapes it ([`crate::text::escape_controls`]): an event is always one
//! inert line (an incident one inert block) whatever its arguments and paths hold.

use std::fmt::Write as _;

use crate::incident::Incident;
use crate::model::{Event, EventKind};
use crate::text::escape_controls;

/// Renders `event` as one line (an incident as a block) without a trailing newline.
pub fn render(event: &Event) -> String {
    if let Some(incident) = event.incident() {
        return render_incident(event, incident);
    }
    let mut line = String::with_capacity(160);
    let p = &event.process;
    let time = event.time.to_string();
    // HH:MM:SS.mmm is enough for a human; the JSON carries nanoseconds.
    let clock = time.get(11..23).unwrap_or(&time);
    let _ = write!(line, "{clock} {:<13} {:>7} ", event.kind.as_str(), p.pid);
    match event.kind {
        EventKind::ProcessExec | EventKind::ProcessFork => {
            line.push_str(&quote_args(&p.args, &p.binary));
            if p.args_truncated {
                line.push_str(" …[truncated]");
            }
            let _ = write!(line, "  bin={} uid={} cwd={}", p.binary, p.uid, p.cwd);
            if let Some(script) = &p.script {
                let _ = write!(line, " script={script}");
            }
            if p.binary_memfd {
                line.push_str(" [memfd]");
            }
            if p.binary_deleted {
                line.push_str(" [deleted]");
            }
        }
        EventKind::ProcessExit => {
            let _ = write!(line, "{}", p.binary);
            if let Some(exit) = event.exit() {
                match (exit.code, exit.signal) {
                    (_, Some(sig)) => {
                        let _ = write!(line, " signal={sig}");
                        if exit.core_dumped {
                            line.push_str(" (core dumped)");
                        }
                    }
                    (Some(code), None) => {
                        let _ = write!(line, " code={code}");
                    }
                    (None, None) => {}
                }
            }
        }
        _ => {
            let _ = write!(line, "{}", p.binary);
            if let Some(file) = event.file() {
                let _ = write!(line, " {}", file.path);
                if let Some(new_path) = &file.new_path {
                    let _ = write!(line, " -> {new_path}");
                }
                if !file.access.is_empty() {
                    let _ = write!(line, " [{}]", file.access.join(","));
                }
                if let Some(t) = &file.times {
                    let time = |word: &str, sec: Option<i64>| match sec {
                        Some(s) => format!("@{s}"),
                        None => word.to_string(),
                    };
                    let _ = write!(
                        line,
                        " atime={} mtime={}",
                        time(&t.atime, t.atime_sec),
                        time(&t.mtime, t.mtime_sec)
                    );
                }
            }
            if let Some(net) = event.network() {
                let _ = write!(
                    line,
                    " {} {}:{} -> {}:{}",
                    net.protocol, net.saddr, net.sport, net.daddr, net.dport
                );
                if let Some(domain) = &net.domain {
                    let _ = write!(line, " ({domain})");
                }
            }
            if let Some(dns) = event.dns() {
                let _ = write!(line, " {} {}", dns.qtype, dns.query);
                if !dns.answers.is_empty() {
                    let _ = write!(line, " = {}", dns.answers.join(","));
                }
            }
            if let Some(s) = event.suppressed() {
                let _ = write!(line, " {} alerts since {}:", s.total, clock_of(s.since));
                for r in &s.rules {
                    let _ = write!(line, " {}", r.rule_id);
                    for (what, n) in [
                        ("duplicate", r.duplicate),
                        ("throttle", r.throttle),
                        ("global_limit", r.global_limit),
                    ] {
                        if n > 0 {
                            let _ = write!(line, " {what}={n}");
                        }
                    }
                    line.push(';');
                }
                line.pop();
            }
            if let Some(lost) = event.lost() {
                let _ = write!(
                    line,
                    " ringbuf_full={} pipeline_full={} other={}",
                    lost.ringbuf_full, lost.pipeline_full, lost.other
                );
                for (output, n) in &lost.outputs {
                    let _ = write!(line, " output:{output}={n}");
                }
            }
            if let Some(health) = event.health() {
                for cap in &health.capabilities {
                    let _ = write!(line, " {}={}", cap.name, cap.state);
                }
                for rule in &health.rules_not_in_force {
                    match rule.reason.as_deref() {
                        // A rule's own reason (its events cannot happen here): its first clause.
                        Some(reason) => {
                            let short = reason.split(':').next().unwrap_or(reason);
                            let _ = write!(line, " NOT-IN-FORCE[{}: {short}]", rule.rule_id);
                        }
                        None => {
                            let _ = write!(
                                line,
                                " NOT-IN-FORCE[{} needs {}]",
                                rule.rule_id, rule.capability
                            );
                        }
                    }
                }
            }
            if let Some(policy) = event.policy() {
                let _ = write!(
                    line,
                    " {} trigger={} rules={}",
                    policy.status, policy.trigger, policy.rules
                );
                for c in &policy.enforced {
                    let _ = write!(line, " {}:{}->{}", c.rule_id, c.was, c.now);
                }
            }
            if let Some(result) = event.result {
                let _ = write!(line, " result={result}");
            }
        }
    }
    if let Some(parent) = &event.parent {
        let _ = write!(line, "  parent={}({})", parent.binary, parent.pid);
    }
    for alert in &event.alerts {
        let _ = write!(
            line,
            "  ALERT[{} {} {}",
            alert.rule_id, alert.severity, alert.outcome
        );
        if let Some(id) = &alert.incident_id {
            let _ = write!(line, " incident={id}");
        }
        let _ = write!(line, ": {}]", alert.rule);
    }
    // Escaped once, whole: nothing this function adds needs escaping, and no field is missed.
    match escape_controls(&line) {
        std::borrow::Cow::Borrowed(_) => line,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

/// HH:MM:SS.mmm of a timestamp.
fn clock_of(t: crate::time::Timestamp) -> String {
    let text = t.to_string();
    text.get(11..23).unwrap_or(&text).to_string()
}

/// An incident as a block: what it is, where it started, what it did.
fn render_incident(event: &Event, i: &Incident) -> String {
    let mut out = String::with_capacity(512);
    let state = match i.close_reason {
        Some(reason) => format!("closed ({})", serde_plain(&reason)),
        None => serde_plain(&i.state),
    };
    let _ = write!(
        out,
        "{} INCIDENT {} {state}  {}  grouped by {}",
        clock_of(event.time),
        i.id,
        i.severity,
        i.grouped_by
    );
    if let Some(c) = &i.container {
        let _ = write!(out, " {} {}", c.runtime, escape_controls(&c.id));
    }
    let p = &event.process;
    let _ = write!(
        out,
        "\n  root        {} (pid {})",
        escape_controls(&quote_args(&p.args, &p.binary)),
        p.pid
    );
    for a in &event.ancestors {
        let _ = write!(out, " <- {}({})", escape_controls(&a.binary), a.pid);
    }
    let _ = write!(
        out,
        "\n  first alert {} (pid {})  first {}  last {}",
        escape_controls(&i.first_alert.binary),
        i.first_alert.pid,
        clock_of(i.first_seen),
        clock_of(i.last_seen)
    );
    let o = &i.outcomes;
    let _ = write!(
        out,
        "\n  alerts      {}: {} reported, {} suppressed; {} processes; outcomes alerted={} denied={} killed={} would_deny={}",
        i.alerts, i.reported, i.suppressed, i.processes, o.alerted, o.denied, o.killed, o.would_deny
    );
    for (n, r) in i.rules.iter().enumerate() {
        let label = if n == 0 { "rules" } else { "" };
        let _ = write!(
            out,
            "\n  {label:<11} {} {} x{}",
            r.rule_id, r.severity, r.count
        );
        if r.suppressed > 0 {
            let _ = write!(out, " ({} suppressed)", r.suppressed);
        }
        let _ = write!(out, ": {}", escape_controls(&r.rule));
    }
    if !i.techniques.is_empty() {
        let _ = write!(out, "\n  techniques  {}", i.techniques.join(", "));
    }
    out
}

/// A unit enum's serde name (`open`, `quiet`, ...).
fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Arguments joined by spaces, each in double quotes (with `"` written `\"`) when it is empty
/// or contains white space or a quote; the binary when there are no arguments.
fn quote_args(args: &[String], binary: &str) -> String {
    if args.is_empty() {
        return binary.to_string();
    }
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"') {
                format!("\"{}\"", a.replace('"', "\\\""))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Exit, Process};
    use crate::time::Timestamp;

    #[test]
    fn exec_line_shows_args_binary_and_parent() {
        let p = Arc::new(Process {
            pid: 42,
            binary: "/usr/bin/env".into(),
            args: vec!["env".into(), "a b".into(), "".into()].into(),
            cwd: "/root".into(),
            ..Process::default()
        });
        let mut e = Event::new(Timestamp(0), EventKind::ProcessExec, "n".into(), p);
        e.parent = Some(Arc::new(Process {
            pid: 41,
            binary: "/usr/bin/bash".into(),
            ..Process::default()
        }));
        assert_eq!(
            render(&e),
            "00:00:00.000 process_exec       42 env \"a b\" \"\"  bin=/usr/bin/env uid=0 cwd=/root  parent=/usr/bin/bash(41)"
        );
    }

    /// Issue 19 case 6: an argv with an OSC title sequence, a file name with a clear-screen
    /// sequence and a newline, a C1 CSI and a bidi override all come out escaped, on one line.
    #[test]
    fn control_characters_in_args_and_paths_are_escaped_on_one_line() {
        let p = Arc::new(Process {
            pid: 42,
            binary: "/tmp/\u{202e}gpj.sh".into(),
            args: vec!["x".into(), "\x1b]0;pwned\x07".into(), "a\nb".into()].into(),
            cwd: "/tmp/\u{9b}2J".into(),
            ..Process::default()
        });
        let e = Event::new(Timestamp(0), EventKind::ProcessExec, "n".into(), p.clone());
        assert_eq!(
            render(&e),
            "00:00:00.000 process_exec       42 x \\u001b]0;pwned\\u0007 \"a\\nb\"  bin=/tmp/\\u202egpj.sh uid=0 cwd=/tmp/\\u009b2J"
        );
        let mut open = Event::new(Timestamp(0), EventKind::FileOpen, "n".into(), p);
        open.set_file(crate::model::FileInfo {
            path: "/tmp/\x1b[2J\nfake 00:00:00.000 process_exec".into(),
            ..Default::default()
        });
        let line = render(&open);
        assert!(!line.chars().any(crate::text::is_unsafe_char), "{line:?}");
        assert!(
            line.contains("/tmp/\\u001b[2J\\nfake 00:00:00.000"),
            "{line}"
        );
    }

    /// A rule not in force for want of a capability names it; one whose events cannot happen
    /// on this kernel gives the first clause of its own reason instead.
    #[test]
    fn health_line_says_why_each_rule_is_not_in_force() {
        let mut e = Event::new(
            Timestamp(0),
            EventKind::AgentHealth,
            "n".into(),
            Arc::new(Process::default()),
        );
        e.set_health(crate::model::Health {
            capabilities: Vec::new(),
            rules_not_in_force: vec![
                crate::model::RuleNotInForce {
                    rule_id: "DNS-1".into(),
                    capability: "net_dns".into(),
                    reason: None,
                },
                crate::model::RuleNotInForce {
                    rule_id: "MOD-1".into(),
                    capability: "file_events".into(),
                    reason: Some("its events cannot be seen here: no init_module".into()),
                },
            ],
        });
        let line = render(&e);
        assert!(
            line.contains(
                "NOT-IN-FORCE[DNS-1 needs net_dns] NOT-IN-FORCE[MOD-1: its events cannot be seen here]"
            ),
            "{line}"
        );
    }

    #[test]
    fn set_times_line_shows_explicit_times_as_epoch_seconds() {
        let p = Arc::new(Process {
            pid: 7,
            binary: "/usr/bin/touch".into(),
            ..Process::default()
        });
        let mut e = Event::new(Timestamp(0), EventKind::FileUtimes, "n".into(), p);
        e.set_file(crate::model::FileInfo {
            path: "/usr/local/bin/x".into(),
            times: Some(crate::model::FileTimes {
                atime: "now".into(),
                mtime: "explicit".into(),
                atime_sec: None,
                mtime_sec: Some(1_546_300_800),
            }),
            ..Default::default()
        });
        let line = render(&e);
        assert!(
            line.ends_with("/usr/bin/touch /usr/local/bin/x atime=now mtime=@1546300800"),
            "{line}"
        );
    }

    #[test]
    fn exit_line_prefers_the_signal() {
        let p = Arc::new(Process {
            pid: 7,
            binary: "/usr/bin/sleep".into(),
            ..Process::default()
        });
        let mut e = Event::new(Timestamp(0), EventKind::ProcessExit, "n".into(), p);
        e.set_exit(Exit {
            code: None,
            signal: Some(9),
            core_dumped: false,
        });
        assert!(
            render(&e).ends_with("/usr/bin/sleep signal=9"),
            "{}",
            render(&e)
        );
    }

    /// An incident is a block: its id and state, the root with ancestry, the first alert,
    /// counts and outcomes, one line per rule, the techniques.
    #[test]
    fn incident_is_a_readable_block() {
        use crate::incident::{CloseReason, ImageRef, Incident, IncidentRule, IncidentState};
        let root = Arc::new(Process {
            pid: 101,
            binary: "/usr/bin/dash".into(),
            args: vec!["sh".into(), "./attack.sh".into()].into(),
            ..Process::default()
        });
        let mut e = Event::new(Timestamp(0), EventKind::Incident, "n".into(), root);
        e.ancestors = vec![Arc::new(Process {
            pid: 100,
            binary: "/usr/bin/runner".into(),
            ..Process::default()
        })];
        e.set_incident(Incident {
            id: "00000000000000aa".into(),
            state: IncidentState::Closed,
            close_reason: Some(CloseReason::Quiet),
            grouped_by: "process_tree".into(),
            severity: "critical".into(),
            alerts: 26,
            reported: 2,
            suppressed: 24,
            processes: 26,
            first_alert: ImageRef {
                pid: 102,
                binary: "/usr/bin/bash".into(),
                ..ImageRef::default()
            },
            rules: vec![IncidentRule {
                rule_id: "SHR-EXEC-004".into(),
                rule: "Reverse shell".into(),
                severity: "critical".into(),
                count: 25,
                suppressed: 24,
                ..IncidentRule::default()
            }],
            techniques: vec!["T1059.004".into()],
            ..Incident::default()
        });
        assert_eq!(
            render(&e),
            "00:00:00.000 INCIDENT 00000000000000aa closed (quiet)  critical  grouped by process_tree\n\
             \x20 root        sh ./attack.sh (pid 101) <- /usr/bin/runner(100)\n\
             \x20 first alert /usr/bin/bash (pid 102)  first 00:00:00.000  last 00:00:00.000\n\
             \x20 alerts      26: 2 reported, 24 suppressed; 26 processes; outcomes alerted=0 denied=0 killed=0 would_deny=0\n\
             \x20 rules       SHR-EXEC-004 critical x25 (24 suppressed): Reverse shell\n\
             \x20 techniques  T1059.004"
        );
    }
}
