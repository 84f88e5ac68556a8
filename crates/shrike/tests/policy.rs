//! The policy in the running agent and on the command line: alerts on real events, audit mode,
//! `--alerts-only`, atomic reload (a bad edit leaves the running policy in force), and the
//! `shrike policy` subcommands' output and exit codes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn shrike() -> Command {
    Command::new(common::agent_binary())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(marker(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A rule that fires on exec of one marker binary, with the given id, action and mode.
fn marker_rule(id: &str, binary: &Path, action: &str, mode: &str) -> String {
    format!(
        "- rule: Marker {id}\n  id: {id}\n  severity: high\n  mitre: [T1059]\n  condition: kind = process_exec and process.binary = {}\n  action: {action}\n  mode: {mode}\n",
        binary.display()
    )
}

/// Copies /usr/bin/true to a marker path and runs it.
fn run_marker(binary: &Path) {
    if !binary.exists() {
        std::fs::copy("/usr/bin/true", binary).unwrap();
    }
    assert!(Command::new(binary).status().unwrap().success());
}

fn alert_ids(event: &serde_json::Value) -> Vec<(String, String)> {
    event["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["rule_id"].as_str().unwrap().to_string(),
                        x["outcome"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The issue's check: a misspelled field is reported with file:line:col and a suggestion, and
/// validate exits non-zero.
#[test]
fn validate_reports_a_misspelled_field_with_position_and_suggestion() {
    let dir = temp_dir("validate");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "- rule: Shadow read\n  id: X-1\n  severity: high\n  mitre: [T1003.008]\n  condition: kind = file_open and proc.nmae = cat\n",
    )
    .unwrap();
    let out = shrike()
        .args(["policy", "validate"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:5:35: unknown field 'proc.nmae' (did you mean 'process.name'?)",
            file.display()
        )),
        "{stderr}"
    );

    std::fs::write(
        &file,
        marker_rule("X-2", Path::new("/usr/bin/x"), "alert", "enforce"),
    )
    .unwrap();
    let out = shrike()
        .args(["policy", "validate"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19, case 5: `policy validate` on 63 doubling lists (a 2 KB file that would expand to
/// 2^63 items) and on 10,000 chained lists returns an error naming the list quickly (it ran
/// past 60 s at 7.5 GB, and past 400 s, before).
#[test]
fn validate_refuses_list_expansion_bombs_quickly() {
    let dir = temp_dir("bombs");
    let mut doubling = String::from("- list: b0\n  items: [x]\n");
    for i in 1..63 {
        doubling.push_str(&format!("- list: b{i}\n  items: [b{p}, b{p}]\n", p = i - 1));
    }
    let mut chained = String::from("- list: c0\n  items: [x]\n");
    for i in 1..10_000 {
        chained.push_str(&format!("- list: c{i}\n  items: [c{}]\n", i - 1));
    }
    for (name, text, expect) in [
        (
            "doubling.yaml",
            doubling,
            "list 'b19' expands to 524288 items: at most 500000",
        ),
        (
            "chained.yaml",
            chained,
            "list 'c32' nests lists more than 32 levels deep",
        ),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let start = std::time::Instant::now();
        let out = shrike()
            .args(["policy", "validate"])
            .arg(&file)
            .output()
            .unwrap();
        let took = start.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(expect), "{name}: {stderr}");
        assert!(took < Duration::from_secs(10), "{name}: took {took:?}");
        eprintln!("{name}: refused in {took:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19, case 7: bad input to the policy commands is placed: a policy file with a byte
/// that is not UTF-8 gets its line and column; `policy test` names the event line with the bad
/// byte and still replays the others (and escapes what it prints); a file with too many rules
/// is blamed, at the first rule past the limit, on itself; the default pack's own files given
/// to `validate` are the pack, not a second copy of it; a misspelled log level is an error
/// naming the valid ones.
#[test]
fn bad_input_to_the_policy_commands_is_placed() {
    let dir = temp_dir("placed");
    let file = dir.join("latin1.yaml");
    let mut text = marker_rule("X-1", Path::new("/usr/bin/x"), "alert", "enforce").into_bytes();
    let at = text.windows(6).position(|w| w == b"Marker").unwrap();
    text.insert(at + 3, 0xe9);
    std::fs::write(&file, &text).unwrap();
    let out = shrike()
        .args(["policy", "validate"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:1:12: the policy file is not UTF-8 text: byte 0xe9",
            file.display()
        )),
        "{stderr}"
    );

    let events = dir.join("events.jsonl");
    let memfd_exec = r#"{"time":"2026-01-01T00:00:00.000000000Z","kind":"process_exec","node":"n","process":{"pid":5,"tid":5,"ppid":1,"exec_id":"0000000000000005","binary":"/memfd:\u001b[2Jx","args":["x"],"binary_memfd":true,"cwd":"/","comm":"x"},"parent":null,"ancestors":[]}"#;
    let mut lines = format!("{memfd_exec}\n").into_bytes();
    lines.extend_from_slice(b"{\"kind\": \"process_\xffexec\"}\n");
    lines.extend_from_slice(format!("{memfd_exec}\n").as_bytes());
    std::fs::write(&events, lines).unwrap();
    let out = shrike()
        .args(["policy", "test", "--events"])
        .arg(&events)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("line 2: not an event: not UTF-8 (byte 0xff at byte 19)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 3: process_exec pid=5 /memfd:\\u001b[2Jx: SHR-EVA-006"),
        "{stdout}"
    );
    assert!(stdout.contains("2 events, 2 matched"), "{stdout}");

    let big = dir.join("big.yaml");
    let mut rules = String::new();
    for i in 0..66_000 {
        rules.push_str(&format!(
            "- rule: r{i}\n  id: R-{i}\n  severity: low\n  condition: kind = process_exec and process.name = n{i}\n"
        ));
    }
    std::fs::write(&big, rules).unwrap();
    let out = shrike()
        .args(["policy", "validate"])
        .arg(&big)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The default pack's rules come first: the 65,536th rule is big.yaml's rule 65,536 - pack.
    let pack = shrike_rules::Policy::default_pack()
        .unwrap()
        .rules()
        .count();
    let line = (65_536 - pack - 1) * 4 + 2;
    assert!(
        stderr.starts_with(&format!(
            "{}:{line}:7: {} rules: at most 65535 are supported",
            big.display(),
            66_000 + pack
        )),
        "{stderr}"
    );

    let pack_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default");
    let mut pack: Vec<PathBuf> = std::fs::read_dir(&pack_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    pack.sort();
    let out = shrike()
        .args(["policy", "validate"])
        .args(&pack)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = shrike()
        .args(["--log-level", "eror", "policy", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("unknown log level 'eror': use one of error, warn, info, debug, trace, off"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `policy list` shows the default pack; `policy test` replays events and prints matches.
#[test]
fn list_and_test_work_on_the_default_pack_and_recorded_events() {
    let out = shrike().args(["policy", "list"]).output().unwrap();
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.lines().count() > 30,
        "the default pack has at least 30 rules:\n{list}"
    );
    assert!(list.contains("SHR-EVA-006"));

    let dir = temp_dir("replay");
    let events = dir.join("events.jsonl");
    let memfd_exec = r#"{"time":"2026-01-01T00:00:00.000000000Z","kind":"process_exec","node":"n","process":{"pid":5,"tid":5,"ppid":1,"exec_id":"0000000000000005","binary":"/memfd:x","args":["x"],"binary_memfd":true,"cwd":"/","comm":"x"},"parent":null,"ancestors":[]}"#;
    std::fs::write(&events, format!("{memfd_exec}\n")).unwrap();
    let out = shrike()
        .args(["policy", "test", "--events"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SHR-EVA-006"));

    std::fs::write(&events, "not json\n").unwrap();
    let out = shrike()
        .args(["policy", "test", "--events"])
        .arg(&events)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a line that is not an event is an error"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A rule from --policy alerts on a real exec; an audit-mode deny rule says would_deny;
/// --alerts-only drops events without alerts.
#[test]
fn policy_rules_alert_on_real_events_and_audit_mode_says_would_deny() {
    if !require_root("policy_rules_alert_on_real_events_and_audit_mode_says_would_deny") {
        return;
    }
    let dir = temp_dir("alerts");
    let binary = dir.join("marker-bin");
    let file = dir.join("p.yaml");
    std::fs::write(
        &file,
        marker_rule("T-ALERT", &binary, "alert", "enforce")
            + &marker_rule("T-AUDIT", &binary, "deny", "audit"),
    )
    .unwrap();
    let agent = Agent::start_process_only(&["--alerts-only", "--policy", file.to_str().unwrap()]);
    run_marker(&binary);
    let bin = binary.to_str().unwrap().to_string();
    let e = agent.wait_for("alert on the marker exec", WAIT, |e| {
        kind_is(e, "process_exec") && e["process"]["binary"] == bin.as_str()
    });
    assert_eq!(
        alert_ids(&e),
        [
            ("T-ALERT".to_string(), "alerted".to_string()),
            ("T-AUDIT".to_string(), "would_deny".to_string())
        ]
    );
    assert_eq!(e["alerts"][0]["mitre"][0], "T1059");
    assert_eq!(e["alerts"][0]["severity"], "high");
    let incident = e["alerts"][0]["incident_id"].clone();
    assert!(incident.is_string(), "alerts carry their incident: {e}");
    assert_eq!(e["alerts"][1]["incident_id"], incident);
    let (status, stderr, events) = agent.stop_and_collect();
    assert!(status.success(), "{stderr}");
    // The agent's own events (agent_health at start, events_lost) are always written: a
    // consumer of alerts must still learn what the agent can see.
    let own = |e: &serde_json::Value| kind_is(e, "agent_health") || kind_is(e, "events_lost");
    assert!(
        events.iter().filter(|e| !own(e)).all(|e| kind_is(e, "incident")
            || kind_is(e, "alerts_suppressed")
            || !e["alerts"].as_array().unwrap_or(&vec![]).is_empty()),
        "--alerts-only wrote an event that is neither an alert, an incident, a suppression report nor the agent's own"
    );
    assert!(
        events.iter().any(|e| kind_is(e, "agent_health")),
        "--alerts-only left out the agent_health event"
    );
    // The incident is written when it opens and closed when the agent stops, rooted at the
    // marker's image, with both rules counted.
    let states: Vec<&str> = events
        .iter()
        .filter(|x| kind_is(x, "incident") && x["incident"]["id"] == incident)
        .map(|x| x["incident"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"open"), "{states:?}");
    assert_eq!(states.last(), Some(&"closed"), "{states:?}");
    let closed = events
        .iter()
        .rfind(|x| kind_is(x, "incident") && x["incident"]["id"] == incident)
        .unwrap();
    assert_eq!(closed["incident"]["close_reason"], "shutdown");
    assert_eq!(closed["incident"]["severity"], "high");
    assert_eq!(closed["incident"]["outcomes"]["would_deny"], 1);
    assert_eq!(closed["incident"]["techniques"][0], "T1059");
    assert_eq!(closed["incident"]["first_alert"]["binary"], bin.as_str());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Reload: a changed policy file takes effect; an invalid one is refused with its errors and
/// the running policy stays in force; SIGHUP reloads too.
#[test]
fn reload_is_atomic_and_a_bad_policy_leaves_the_old_one_in_force() {
    if !require_root("reload_is_atomic_and_a_bad_policy_leaves_the_old_one_in_force") {
        return;
    }
    let dir = temp_dir("reload");
    let binary = dir.join("marker-bin");
    let file = dir.join("p.yaml");
    std::fs::write(&file, marker_rule("T-OLD", &binary, "alert", "enforce")).unwrap();
    // Every match an alert (no deduplication): the test runs the same marker again and again.
    let agent = Agent::start_process_only(&[
        "--no-default-policy",
        "--dedup-window",
        "0",
        "--policy",
        file.to_str().unwrap(),
    ]);
    let bin = binary.to_str().unwrap().to_string();
    let alerted = |id: &'static str| {
        let bin = bin.clone();
        move |e: &serde_json::Value| {
            e["process"]["binary"] == bin.as_str() && alert_ids(e).iter().any(|(r, _)| r == id)
        }
    };
    run_marker(&binary);
    agent.wait_for("T-OLD alert", WAIT, alerted("T-OLD"));

    // A broken edit: a valid rule on the same binary (T-HALF) beside one that does not compile.
    // It is refused whole: T-OLD stays in force and no part of the edit (T-HALF) is applied.
    let broken = format!(
        "{}- rule: Broken\n  id: T-BROKEN\n  severity: high\n  mitre: [T1059]\n  condition: kind = process_exec and process.bianry = x\n",
        marker_rule("T-HALF", &binary, "alert", "enforce")
    );
    std::fs::write(&file, broken).unwrap();
    let refused = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        agent.stderr().contains("policy reload refused")
    });
    assert!(refused, "no refusal logged:\n{}", agent.stderr());
    assert!(
        agent.stderr().contains("unknown field 'process.bianry'"),
        "{}",
        agent.stderr()
    );
    let before = agent.events(alerted("T-OLD")).len();
    run_marker(&binary);
    let old_fired = agent.wait_all(WAIT, |evs| {
        evs.iter().filter(|e| alerted("T-OLD")(e)).count() > before
    });
    assert!(
        old_fired,
        "after the refused edit the old rule T-OLD must still fire on a new exec; agent stderr:\n{}",
        agent.stderr()
    );
    let half = agent.events(alerted("T-HALF"));
    assert!(
        half.is_empty(),
        "the refused edit was partly applied (T-HALF fired): {half:?}"
    );

    // A good edit: takes effect.
    std::fs::write(&file, marker_rule("T-NEW", &binary, "alert", "enforce")).unwrap();
    let reloaded = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        agent.stderr().contains("policy reloaded")
    });
    assert!(reloaded, "{}", agent.stderr());
    run_marker(&binary);
    agent.wait_for("T-NEW alert", WAIT, alerted("T-NEW"));

    // SIGHUP also reloads (the file is unchanged, so the count of reloads grows).
    let reloads = agent.stderr().matches("policy reloaded").count();
    // SAFETY: kill(2) with the pid of the agent this test started.
    unsafe { libc::kill(agent.pid() as i32, libc::SIGHUP) };
    let again = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        agent.stderr().matches("policy reloaded").count() > reloads
    });
    assert!(again, "SIGHUP did not reload:\n{}", agent.stderr());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether running `binary` was stopped by a deny rule: EPERM at exec (BPF LSM) or SIGKILL
/// before it ran (the fallback).
fn stopped(binary: &Path) -> bool {
    use std::os::unix::process::ExitStatusExt;
    match Command::new(binary).status() {
        Err(err) => err.raw_os_error() == Some(libc::EPERM),
        Ok(status) => status.signal() == Some(libc::SIGKILL),
    }
}

/// Rewrites `file` in place (truncate, then write), as editors and tools that do not rename do.
fn rewrite_in_place(file: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::File::options()
        .write(true)
        .truncate(true)
        .open(file)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

/// Waits for the `n`th (1-based) `policy_change` event.
fn nth_policy_change(agent: &Agent, n: usize) -> serde_json::Value {
    agent.wait_all(Duration::from_secs(20), |evs| {
        evs.iter().filter(|e| kind_is(e, "policy_change")).count() >= n
    });
    let all = agent.events(|e| kind_is(e, "policy_change"));
    assert!(
        all.len() >= n,
        "expected {n} policy_change events, got {all:?}; stderr:\n{}",
        agent.stderr()
    );
    all[n - 1].clone()
}

fn enforced_changes(change: &serde_json::Value) -> Vec<(String, String)> {
    change["policy"]["enforced"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["was"], "deny");
            (
                c["rule_id"].as_str().unwrap().to_string(),
                c["now"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Issue 19, case 3: a policy file rewritten in place and caught cut — without its `action:
/// deny` line, empty, or empty for 1.5 s during a slow rewrite — never switches the deny rule
/// off: each cut that parses is held and reported as a `policy_change` event naming the rule,
/// and the marker stays stopped throughout. The complete file is applied once it settles; a
/// loosening edit that stays unchanged for the hold (10 s) is applied and says so.
#[test]
fn a_policy_file_caught_mid_write_never_loosens_enforcement() {
    if !require_root("a_policy_file_caught_mid_write_never_loosens_enforcement") {
        return;
    }
    let dir = temp_dir("midwrite");
    let binary = dir.join("jailed");
    std::fs::copy("/usr/bin/true", &binary).unwrap();
    let file = dir.join("p.yaml");
    let full = marker_rule("T-WATCH", &dir.join("other"), "alert", "enforce")
        + &marker_rule("T-DENY", &binary, "deny", "enforce");
    std::fs::write(&file, &full).unwrap();
    let agent =
        Agent::start_process_only(&["--no-default-policy", "--policy", file.to_str().unwrap()]);
    assert!(stopped(&binary), "the deny rule is in force at start");

    // Cut just before `action: deny`: it parses, and T-DENY would become an alert rule.
    let cut = full.rfind("  action: deny").unwrap();
    rewrite_in_place(&file, &full[..cut]);
    let change = nth_policy_change(&agent, 1);
    assert_eq!(change["policy"]["status"], "held", "{change}");
    assert_eq!(change["policy"]["trigger"], "file_changed");
    assert_eq!(
        enforced_changes(&change),
        [("T-DENY".to_string(), "alert".to_string())]
    );
    assert!(stopped(&binary), "a cut file switched enforcement off");

    // Empty: held, T-DENY removed.
    rewrite_in_place(&file, "");
    let change = nth_policy_change(&agent, 2);
    assert_eq!(change["policy"]["status"], "held", "{change}");
    assert_eq!(
        enforced_changes(&change),
        [("T-DENY".to_string(), "removed".to_string())]
    );
    assert!(stopped(&binary), "an empty file switched enforcement off");

    // A slow rewrite that leaves the file empty for 1.5 s, then complete: the gap is held, the
    // complete file is applied and loosens nothing.
    let before = agent.events(|e| kind_is(e, "policy_change")).len();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        stopped(&binary),
        "the slow rewrite's gap switched enforcement off"
    );
    rewrite_in_place(&file, &full);
    let applied = agent.wait_all(Duration::from_secs(20), |evs| {
        evs.iter()
            .filter(|e| kind_is(e, "policy_change"))
            .skip(before)
            .any(|e| e["policy"]["status"] == "applied")
    });
    assert!(
        applied,
        "the complete file was not applied:\n{}",
        agent.stderr()
    );
    let last = agent.events(|e| kind_is(e, "policy_change"));
    let last = last.last().unwrap();
    assert_eq!(last["policy"]["status"], "applied", "{last}");
    assert!(enforced_changes(last).is_empty(), "{last}");
    assert!(stopped(&binary));

    // A deliberate edit that drops the rule and stays so for the hold is applied, and says so.
    let only_watch = marker_rule("T-WATCH", &dir.join("other"), "alert", "enforce");
    rewrite_in_place(&file, &only_watch);
    let n = agent.events(|e| kind_is(e, "policy_change")).len();
    let held = nth_policy_change(&agent, n + 1);
    assert_eq!(held["policy"]["status"], "held", "{held}");
    let applied = nth_policy_change(&agent, n + 2);
    assert_eq!(applied["policy"]["status"], "applied", "{applied}");
    assert_eq!(
        enforced_changes(&applied),
        [("T-DENY".to_string(), "removed".to_string())]
    );
    assert!(!stopped(&binary), "the deliberate edit took effect");
    std::fs::remove_dir_all(&dir).unwrap();
}
