//! The shaper end to end on hand-built event sequences: the alerts written, the incident
//! events, and the suppressed counts, with explicit times.

use std::sync::Arc;
use std::time::Duration;

use shrike_event::{Alert, Event, EventKind, ExecId, IncidentState, Process, Timestamp};
use shrike_rules::{Policy, Rate};

use super::*;

const S: u64 = 1_000_000_000;

fn proc(pid: u32, exec_id: u64, parent: u64, binary: &str) -> Arc<Process> {
    Arc::new(Process {
        pid,
        exec_id: ExecId(exec_id),
        parent_exec_id: (parent != 0).then_some(ExecId(parent)),
        binary: binary.into(),
        ..Process::default()
    })
}

fn alert(id: &str, outcome: &str) -> Alert {
    Alert {
        rule_id: id.into(),
        rule: format!("rule {id}"),
        severity: "high".into(),
        action: "alert".into(),
        outcome: outcome.into(),
        mitre: vec!["T1059.004".into()],
        incident_id: None,
    }
}

fn ev(kind: EventKind, t: u64, p: &Arc<Process>, anc: &[&Arc<Process>], alerts: &[Alert]) -> Event {
    let mut e = Event::new(Timestamp(t), kind, "n".into(), p.clone());
    e.parent = anc.first().map(|a| (*a).clone());
    e.ancestors = anc.iter().map(|a| (*a).clone()).collect();
    e.alerts = alerts.to_vec();
    e
}

fn shaper(config: ShapingConfig) -> Shaper {
    Shaper::new(
        &config,
        "n".into(),
        Arc::new(Process::default()),
        Timestamp(0),
    )
}

/// Everything one event makes: what goes before it, and the event as written.
fn run(s: &mut Shaper, mut e: Event) -> (Vec<Event>, Event) {
    let mut before = Vec::new();
    s.shape(&mut e, &mut before);
    (before, e)
}

/// The reverse-shell shape: a shell connects out (one rule), then its interactive
/// replacement starts 25 shells with the socket as stdio (another rule, same binary). Two
/// alerts are written, both in one incident rooted at the script's shell; the 24 repeats are
/// counted in the incident and reported as duplicates.
#[test]
fn a_reverse_shell_burst_is_one_incident_with_two_alerts_and_counted_repeats() {
    let mut s = shaper(ShapingConfig::default());
    let runner = proc(100, 1, 0, "/usr/bin/runner");
    let script = proc(101, 2, 1, "/usr/bin/dash");
    let bash_c = proc(102, 3, 2, "/usr/bin/bash");
    let bash_i = proc(102, 4, 3, "/usr/bin/bash");
    let (before, e) = run(
        &mut s,
        ev(
            EventKind::NetConnect,
            S,
            &bash_c,
            &[&script, &runner],
            &[alert("EXEC-005", "alerted")],
        ),
    );
    assert_eq!(before.len(), 1, "the incident opens before its first alert");
    let open = before[0].incident().unwrap();
    assert_eq!(open.state, IncidentState::Open);
    assert_eq!(
        before[0].process.exec_id,
        ExecId(2),
        "rooted at the script's shell"
    );
    assert_eq!(e.alerts.len(), 1);
    assert_eq!(e.alerts[0].incident_id, Some(open.id.clone()));

    let mut written = 1;
    let mut parent = bash_i.clone();
    for i in 0..25u64 {
        let child = proc(200 + i as u32, 10 + i, parent.exec_id.0, "/usr/bin/bash");
        let (before, e) = run(
            &mut s,
            ev(
                EventKind::ProcessExec,
                S + (i + 1) * S / 10,
                &child,
                &[&parent, &bash_c, &script],
                &[alert("EXEC-004", "alerted")],
            ),
        );
        assert!(before.is_empty());
        written += e.alerts.len();
        if let Some(a) = e.alerts.first() {
            assert_eq!(a.incident_id, Some(open.id.clone()));
        }
        parent = if i % 5 == 0 { bash_i.clone() } else { child };
    }
    assert_eq!(
        written, 2,
        "the first EXEC-004 is written, its repeats are not"
    );

    let mut out = Vec::new();
    s.tick(Timestamp(20 * S), &mut out);
    let update = out.iter().find_map(|e| e.incident()).unwrap();
    assert_eq!(update.state, IncidentState::Update);
    assert_eq!(
        (update.alerts, update.reported, update.suppressed),
        (26, 2, 24)
    );
    let suppressed = out.iter().find_map(|e| e.suppressed()).unwrap();
    assert_eq!(suppressed.total, 24);
    assert_eq!(suppressed.rules[0].rule_id, "EXEC-004");
    assert_eq!(suppressed.rules[0].duplicate, 24);
    assert_eq!(
        s.stats(),
        ShapingStats {
            incidents: 1,
            suppressed: 24
        }
    );

    out.clear();
    s.finish(Timestamp(21 * S), &mut out);
    let closed = out[0].incident().unwrap();
    assert_eq!(closed.state, IncidentState::Closed);
    assert_eq!(closed.id, open.id);
}

/// An enforced action stays enforced and counted: a repeat's alert is taken off the event,
/// but the event keeps its result, and the incident counts every `killed`.
#[test]
fn repeats_of_enforced_actions_are_counted_by_outcome() {
    let mut s = shaper(ShapingConfig::default());
    let p = proc(5, 50, 0, "/tmp/marker");
    for t in 0..3 {
        let mut e = ev(
            EventKind::ProcessExec,
            t * S,
            &p,
            &[],
            &[alert("K", "killed")],
        );
        e.result = Some(0);
        let (_, e) = run(&mut s, e);
        assert_eq!(e.alerts.len(), usize::from(t == 0));
        assert_eq!(e.result, Some(0));
    }
    let mut out = Vec::new();
    s.finish(Timestamp(10 * S), &mut out);
    let closed = out[0].incident().unwrap();
    assert_eq!(closed.outcomes.killed, 3);
}

/// A rule's throttle and the global limit hold alerts back; each is reported under its own
/// reason.
#[test]
fn throttle_and_global_limit_are_reported_per_rule() {
    let policy = Policy::compile([(
        "p.yaml",
        "- rule: t\n  id: T\n  severity: low\n  condition: kind = file_open\n  throttle: 2/min\n",
    )])
    .unwrap();
    let mut s = shaper(ShapingConfig {
        dedup_window: Duration::ZERO,
        alert_limit: Some(Rate {
            count: 3,
            per_secs: 60,
        }),
        ..ShapingConfig::default()
    });
    s.set_policy(&policy);
    let p = proc(5, 50, 0, "/usr/bin/x");
    let mut written = Vec::new();
    for i in 0..5 {
        let (_, e) = run(
            &mut s,
            ev(EventKind::FileOpen, i, &p, &[], &[alert("T", "alerted")]),
        );
        written.extend(e.alerts.iter().map(|a| a.rule_id.clone()));
        let (_, e) = run(
            &mut s,
            ev(EventKind::FileOpen, i, &p, &[], &[alert("U", "alerted")]),
        );
        written.extend(e.alerts.iter().map(|a| a.rule_id.clone()));
    }
    assert_eq!(written, ["T", "U", "T"]);
    let mut out = Vec::new();
    s.finish(Timestamp(100), &mut out);
    let r = out.iter().find_map(|e| e.suppressed()).unwrap();
    let t = r.rules.iter().find(|x| x.rule_id == "T").unwrap();
    let u = r.rules.iter().find(|x| x.rule_id == "U").unwrap();
    assert_eq!((t.throttle, t.global_limit), (3, 0));
    assert_eq!((u.throttle, u.global_limit), (0, 4));
    assert_eq!(r.total, 7);
}

/// `--no-shaping`: every alert is written as it came, with no incident.
#[test]
fn disabled_shaping_leaves_alerts_alone() {
    let mut s = shaper(ShapingConfig {
        enabled: false,
        ..ShapingConfig::default()
    });
    let p = proc(5, 50, 0, "/usr/bin/x");
    for t in 0..3 {
        let (before, e) = run(
            &mut s,
            ev(EventKind::FileOpen, t, &p, &[], &[alert("A", "alerted")]),
        );
        assert!(before.is_empty());
        assert_eq!(e.alerts.len(), 1);
        assert_eq!(e.alerts[0].incident_id, None);
    }
    let mut out = Vec::new();
    s.finish(Timestamp(10 * S), &mut out);
    assert!(out.is_empty());
}
