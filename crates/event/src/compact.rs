//! `--output compact`: one readable line per event for a human at a terminal.
//!
//! The line leads with time, kind and process, then the kind's object, then alerts, so that a
//! column-aligned `grep` works. It is for reading, not parsing: the JSON output is the contract.

use std::fmt::Write as _;

use crate::model::{Event, EventKind};

/// Renders `event` as one line without a trailing newline.
pub fn render(event: &Event) -> String {
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
            if let Some(exit) = &event.exit {
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
            if let Some(file) = &event.file {
                let _ = write!(line, " {}", file.path);
                if let Some(new_path) = &file.new_path {
                    let _ = write!(line, " -> {new_path}");
                }
                if !file.access.is_empty() {
                    let _ = write!(line, " [{}]", file.access.join(","));
                }
            }
            if let Some(net) = &event.network {
                let _ = write!(
                    line,
                    " {} {}:{} -> {}:{}",
                    net.protocol, net.saddr, net.sport, net.daddr, net.dport
                );
                if let Some(domain) = &net.domain {
                    let _ = write!(line, " ({domain})");
                }
            }
            if let Some(dns) = &event.dns {
                let _ = write!(line, " {} {}", dns.qtype, dns.query);
                if !dns.answers.is_empty() {
                    let _ = write!(line, " = {}", dns.answers.join(","));
                }
            }
            if let Some(lost) = &event.lost {
                let _ = write!(
                    line,
                    " ringbuf_full={} pipeline_full={} other={}",
                    lost.ringbuf_full, lost.pipeline_full, lost.other
                );
            }
            if let Some(health) = &event.health {
                for cap in &health.capabilities {
                    let _ = write!(line, " {}={}", cap.name, cap.state);
                }
                for rule in &health.rules_not_in_force {
                    let _ = write!(
                        line,
                        " NOT-IN-FORCE[{} needs {}]",
                        rule.rule_id, rule.capability
                    );
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
            "  ALERT[{} {} {}: {}]",
            alert.rule_id, alert.severity, alert.outcome, alert.rule
        );
    }
    line
}

/// Arguments joined by spaces, each quoted when it is empty or contains a space; the binary
/// when there are no arguments.
fn quote_args(args: &[String], binary: &str) -> String {
    if args.is_empty() {
        return binary.to_string();
    }
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("{a:?}")
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

    #[test]
    fn exit_line_prefers_the_signal() {
        let p = Arc::new(Process {
            pid: 7,
            binary: "/usr/bin/sleep".into(),
            ..Process::default()
        });
        let mut e = Event::new(Timestamp(0), EventKind::ProcessExit, "n".into(), p);
        e.exit = Some(Exit {
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
}
