//! Rate rules: N matching events (or N distinct values) from one group within T seconds, with
//! bounded memory, the events' own clock, and mistakes reported with positions.

mod common;

use common::*;
use shrike_event::{Event, ExecId, Timestamp};
use shrike_rules::{Policy, RateState};

const SEC: u64 = 1_000_000_000;

fn policy(rate: &str) -> Policy {
    let yaml = format!(
        "- rule: Port sweep\n  id: R-1\n  severity: medium\n  mitre: [T1046]\n  condition: kind = net_connect\n  rate:\n{rate}"
    );
    Policy::compile([("r.yaml", yaml.as_str())])
        .unwrap_or_else(|d| panic!("{}", shrike_rules::text::render_diagnostics(&d)))
}

fn fired(policy: &Policy, state: &mut RateState, e: &Event) -> bool {
    let mut out = Vec::new();
    policy.evaluate_with(e, state, &mut out);
    !out.is_empty()
}

fn connect_at(p: &shrike_event::Process, port: u16, t: u64) -> Event {
    let mut e = connect(p, &scenario_shell("x.sh"), "127.0.0.1", port);
    e.time = Timestamp(t);
    e
}

/// The Nth match within the window fires, once; the count then starts again.
#[test]
fn the_threshold_fires_once_per_n_matches() {
    let policy = policy("    count: 3\n    within: 10s\n");
    let mut state = RateState::new();
    let p = process("/usr/bin/python3", &["python3"]);
    let results: Vec<bool> = (0..7)
        .map(|i| fired(&policy, &mut state, &connect_at(&p, 80, 100 * SEC + i)))
        .collect();
    assert_eq!(results, [false, false, true, false, false, true, false]);
    // Without counting state a rate rule never matches.
    assert!(policy.evaluate(&connect_at(&p, 80, 0)).is_empty());
}

/// Matches older than the window are forgotten: three matches 6 s apart never make 3 in 10 s.
#[test]
fn matches_outside_the_window_do_not_count() {
    let policy = policy("    count: 3\n    within: 10s\n");
    let mut state = RateState::new();
    let p = process("/usr/bin/python3", &["python3"]);
    for i in 0..10 {
        assert!(!fired(
            &policy,
            &mut state,
            &connect_at(&p, 80, i * 6 * SEC)
        ));
    }
}

/// `distinct` counts values, not events: 50 connections to one port are not a sweep, 20 ports
/// are.
#[test]
fn distinct_counts_values() {
    let policy = policy("    count: 20\n    within: 10s\n    distinct: [network.dport]\n");
    let mut state = RateState::new();
    let p = process("/usr/bin/python3", &["python3"]);
    for i in 0..50 {
        assert!(!fired(&policy, &mut state, &connect_at(&p, 443, SEC + i)));
    }
    let hits: Vec<u16> = (1..=25)
        .filter(|port| fired(&policy, &mut state, &connect_at(&p, *port, 2 * SEC)))
        .collect();
    assert_eq!(hits, [19], "443 counted once, then 19 new ports make 20");
}

/// `by: [parent]` puts one-connection-per-process loops (a shell running `nc -z` per port)
/// into their shell's group; `by: [process]` keeps them apart.
#[test]
fn grouping_by_parent_joins_sibling_processes() {
    let parent = ExecId(777);
    let child = |port: u16| {
        let mut p = process("/usr/bin/nc", &["nc", "-z", "127.0.0.1"]);
        p.parent_exec_id = Some(parent);
        connect_at(&p, port, 5 * SEC)
    };
    let by_parent = policy("    count: 5\n    within: 10s\n    by: [parent]\n");
    let mut state = RateState::new();
    let fires: Vec<bool> = (1..=5)
        .map(|p| fired(&by_parent, &mut state, &child(p)))
        .collect();
    assert_eq!(fires, [false, false, false, false, true]);
    let by_process = policy("    count: 5\n    within: 10s\n");
    let mut state = RateState::new();
    assert!((1..=5).all(|p| !fired(&by_process, &mut state, &child(p))));
}

/// A field in `by` splits groups: distinct DNS names per parent domain per process.
#[test]
fn a_field_in_by_splits_groups() {
    let yaml = "- rule: Tunnel\n  id: D-1\n  severity: high\n  mitre: [T1572]\n  condition: kind = dns\n  rate:\n    count: 4\n    within: 60s\n    by: [process, dns.parent_domain]\n    distinct: [dns.query]\n";
    let policy = Policy::compile([("d.yaml", yaml)]).unwrap();
    let mut state = RateState::new();
    let p = process("/usr/bin/python3", &["python3"]);
    let sh = scenario_shell("x.sh");
    let q = |name: &str| {
        let mut e = dns(&p, &sh, name);
        e.time = Timestamp(SEC);
        e
    };
    let mut hits = Vec::new();
    for (i, name) in [
        "a.one.example",
        "b.one.example",
        "a.two.example",
        "c.one.example",
        "b.two.example",
        "a.one.example",
        "d.one.example",
    ]
    .iter()
    .enumerate()
    {
        if fired(&policy, &mut state, &q(name)) {
            hits.push(i);
        }
    }
    assert_eq!(hits, [6], "the 4th distinct name under one.example");
}

/// A flood of new groups (one per process) never grows the state past its bounds; the oldest
/// groups are forgotten and counted.
#[test]
fn memory_stays_bounded_under_a_flood_of_groups() {
    let policy = policy("    count: 500\n    within: 3600s\n");
    let mut state = RateState::new();
    for i in 0..100_000u64 {
        let mut p = process("/usr/bin/x", &["x"]);
        p.exec_id = ExecId(1_000_000 + i);
        fired(&policy, &mut state, &connect_at(&p, 80, SEC + i));
    }
    assert!(state.groups() <= shrike_rules::counting::MAX_WINDOWS);
    assert!(state.evicted() >= 100_000 - shrike_rules::counting::MAX_WINDOWS as u64);
    // One busy group hitting the per-group cap keeps working.
    let p = process("/usr/bin/y", &["y"]);
    let n = (0..1000)
        .filter(|i| fired(&policy, &mut state, &connect_at(&p, 80, 2 * SEC + i)))
        .count();
    assert_eq!(n, 2);
}

/// Rate mistakes have positions: a deny rule cannot count, an unknown or wrong-kind field, a
/// count of 1, a bad window.
#[test]
fn rate_mistakes_are_reported_with_positions() {
    let errors = |yaml: &str| -> Vec<String> {
        match Policy::compile([("r.yaml", yaml)]) {
            Ok(_) => panic!("expected errors:\n{yaml}"),
            Err(d) => d.iter().map(ToString::to_string).collect(),
        }
    };
    let head = "- rule: r\n  id: R\n  severity: low\n  condition: kind = net_connect\n";
    assert_eq!(
        errors(&format!(
            "{head}  action: deny\n  rate:\n    count: 3\n    within: 10s\n"
        )),
        ["r.yaml:7:5: a rate rule can only alert, not deny (remove `action:` or `rate:`)"]
    );
    assert_eq!(
        errors(&format!(
            "{head}  rate:\n    count: 3\n    within: 10s\n    distinct: [network.dprot]\n"
        )),
        ["r.yaml:8:16: unknown field 'network.dprot' (did you mean 'network.dport'?)"]
    );
    assert_eq!(
        errors(&format!("{head}  rate:\n    count: 3\n    within: 10s\n    distinct: [file.path]\n")),
        ["r.yaml:8:16: field 'file.path' does not exist for kinds net_connect (it exists for file_open, file_unlink, file_rename, file_chmod, file_chown, file_link, file_utimes)"]
    );
    assert_eq!(
        errors(&format!("{head}  rate:\n    count: 1\n    within: 10s\n")),
        ["r.yaml:6:12: rate count must be a whole number from 2 to 500 (a count of 1 is an ordinary rule: leave out `rate:`)"]
    );
    assert_eq!(
        errors(&format!("{head}  rate:\n    count: 3\n    within: 10 minutes\n")),
        ["r.yaml:7:13: invalid rate window '10 minutes' (write seconds, minutes or hours up to 3600s: 10s, 2m, 1h)"]
    );
}

/// `policy test` replays with counting: the third of three matching lines is reported.
#[test]
fn replay_counts_rates() {
    let policy = policy("    count: 3\n    within: 10s\n");
    let p = process("/usr/bin/python3", &["python3"]);
    let lines: Vec<String> = (0..3)
        .map(|i| serde_json::to_string(&connect_at(&p, 80, SEC + i)).unwrap())
        .collect();
    let report = shrike_rules::text::test_policy(&policy, lines.join("\n").as_bytes()).unwrap();
    assert_eq!(report.matches, 1, "{}", report.text);
    assert!(report.text.starts_with("line 3:"), "{}", report.text);
}
