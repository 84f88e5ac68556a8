//! Paths cut at the root end (issue 19, case 1): when `process.binary` or `process.cwd` was too
//! deep for a record, only its end is known. A rule that needs the missing start cannot decide
//! and is reported (it matches, so it alerts); one the end decides is decided; nothing is
//! matched on the cut text as if it were the whole path.

use std::sync::Arc;

use shrike_event::{Event, EventKind, Process, Timestamp};
use shrike_rules::Policy;

fn policy() -> Policy {
    let rule = |id: &str, condition: &str| {
        format!("- rule: {id}\n  id: {id}\n  severity: high\n  condition: kind = process_exec and {condition}\n  action: deny\n")
    };
    let text = [
        rule("JAIL", "process.binary startswith /tmp/x/jail/"),
        rule("EXACT", "process.binary = /usr/bin/nc"),
        rule("NAME", "process.name = true"),
        rule("OTHER-NAME", "process.name = false"),
        rule("ENDS", "process.binary endswith /deep/true"),
        rule("CUT-START", "process.binary startswith /AAAA"),
        rule("CWD", "process.cwd startswith /tmp/x/jail"),
        rule("FLAG", "process.binary_truncated"),
        rule(
            "EXCEPT",
            "process.binary startswith /tmp/ and not process.name = true",
        ),
    ]
    .concat();
    Policy::compile([("p.yaml", text)]).unwrap()
}

fn exec(binary: &str, binary_truncated: bool, cwd: &str, cwd_truncated: bool) -> Event {
    Event::new(
        Timestamp(0),
        EventKind::ProcessExec,
        "n".into(),
        Arc::new(Process {
            binary: binary.into(),
            binary_truncated,
            cwd: cwd.into(),
            cwd_truncated,
            ..Process::default()
        }),
    )
}

fn matched(policy: &Policy, event: &Event) -> Vec<String> {
    policy
        .evaluate(event)
        .iter()
        .map(|m| m.rule_id.to_string())
        .collect()
}

/// A cut binary: the prefix rule is undecided (reported), as is the rule whose exception
/// depends on the name only when the name does not decide it; the exact rule on a shorter path
/// cannot match a longer one; the base name and the suffix decide; the cut start "/AAAA…" is
/// not taken for the path's start.
#[test]
fn a_cut_binary_reports_the_rules_it_cannot_decide_and_decides_the_rest() {
    let p = policy();
    let tail = format!("/{}/deep/true", "A".repeat(200));
    let e = exec(&tail, true, "/", false);
    assert_eq!(
        matched(&p, &e),
        ["JAIL", "NAME", "ENDS", "CUT-START", "FLAG"],
        "EXACT and OTHER-NAME are decided false; EXCEPT is excluded by its exception"
    );
    let e = exec(&tail.replace("/true", "/sh"), true, "/", false);
    assert!(matched(&p, &e).contains(&"EXCEPT".to_string()));
}

/// The same text, not cut, is decided as usual.
#[test]
fn an_uncut_path_is_decided_as_written() {
    let p = policy();
    let tail = format!("/{}/deep/true", "A".repeat(200));
    assert_eq!(
        matched(&p, &exec(&tail, false, "/", false)),
        ["NAME", "ENDS", "CUT-START"]
    );
    assert_eq!(
        matched(&p, &exec("/tmp/x/jail/true", false, "/tmp/x/jail", false)),
        ["JAIL", "NAME", "CWD"]
    );
}

/// A cut cwd leaves cwd rules undecided, reported.
#[test]
fn a_cut_cwd_reports_cwd_rules() {
    let p = policy();
    let cwd = format!("/{}/x", "B".repeat(200));
    assert_eq!(
        matched(&p, &exec("/usr/bin/false", false, &cwd, true)),
        ["OTHER-NAME", "CWD"]
    );
}
