//! Table-driven rule tests: a YAML snippet, an event as JSON (the contract's form), and the rule
//! ids expected to match, covering every operator, list semantics, macros, lists and exceptions.

use shrike_event::Event;
use shrike_rules::{KernelAction, Outcome, Policy};

fn event(json: &str) -> Event {
    let base = serde_json::json!({
        "time": "2026-01-01T00:00:00.000000000Z",
        "node": "n1",
        "process": {"pid": 10, "binary": "/usr/bin/cat", "args": ["cat", "-e", "/etc/shadow"], "comm": "cat", "uid": 1000, "euid": 1000},
        "parent": {"pid": 9, "exec_id": "0000000000000009", "binary": "/usr/sbin/sshd", "args": ["sshd"]},
        "ancestors": [{"pid": 9, "exec_id": "0000000000000009", "binary": "/usr/sbin/sshd"},
                      {"pid": 1, "exec_id": "0000000000000001", "binary": "/usr/sbin/nginx"}]
    });
    let mut v = base;
    let patch: serde_json::Value = serde_json::from_str(json).expect("test event JSON");
    merge(&mut v, patch);
    serde_json::from_value(v).expect("valid event")
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

const OPEN: &str =
    r#"{"kind": "file_open", "file": {"path": "/etc/shadow", "access": ["read"], "flags": 0}}"#;

/// (description, rules YAML, event patch, expected rule ids)
const CASES: &[(&str, &str, &str, &[&str])] = &[
    ("equality on a path written bare", "condition: kind = file_open and file.path = /etc/shadow", OPEN, &["R"]),
    ("inequality", "condition: kind = file_open and file.path != /etc/shadow", OPEN, &[]),
    ("in a list literal", "condition: kind = file_open and file.path in (/etc/passwd, /etc/shadow)", OPEN, &["R"]),
    ("startswith", "condition: kind = file_open and file.path startswith /etc/", OPEN, &["R"]),
    ("endswith", "condition: kind = file_open and file.path endswith shadow", OPEN, &["R"]),
    ("contains on a string", "condition: kind = file_open and file.path contains sha", OPEN, &["R"]),
    ("glob", "condition: kind = file_open and file.path glob /etc/sh*", OPEN, &["R"]),
    ("glob does not cross /", "condition: kind = file_open and file.path glob /*", OPEN, &[]),
    ("list-valued field: any element", "condition: kind = file_open and file.access contains read", OPEN, &["R"]),
    ("args contains an option", "condition: kind = file_open and process.args contains -e", OPEN, &["R"]),
    ("args in", "condition: kind = file_open and process.args in (-x, -e)", OPEN, &["R"]),
    ("ancestors: some ancestor", "condition: kind = file_open and ancestors.binary contains nginx", OPEN, &["R"]),
    ("ancestors: no ancestor", "condition: kind = file_open and not ancestors.name in (nginx)", OPEN, &[]),
    ("parent binary", "condition: kind = file_open and parent.binary = /usr/sbin/sshd", OPEN, &["R"]),
    ("parent name", "condition: kind = file_open and parent.name = sshd", OPEN, &["R"]),
    ("numbers", "condition: kind = file_open and process.uid >= 1000 and process.uid < 1001 and process.euid != 0", OPEN, &["R"]),
    ("number in", "condition: kind = file_open and process.uid in (0, 1000)", OPEN, &["R"]),
    ("hex number", "condition: kind = file_open and process.uid = 0x3e8", OPEN, &["R"]),
    ("or and parentheses", "condition: kind = file_open and (file.path = /x or (file.path = /etc/shadow and not process.name = vi))", OPEN, &["R"]),
    ("kind in", "condition: kind in (file_open, file_unlink) and file.path = /etc/shadow", OPEN, &["R"]),
    ("kind !=", "condition: kind != process_exec and kind != dns and file.path exists", OPEN, &["R"]),
    ("other kind does not match", "condition: kind = file_unlink and file.path = /etc/shadow", OPEN, &[]),
    ("exists on a missing optional", "condition: kind = file_open and process.script exists", OPEN, &[]),
    ("not exists", "condition: kind = file_open and not process.script exists", OPEN, &["R"]),
    ("env variable exists", "condition: kind = process_exec and process.env.LD_PRELOAD exists",
        r#"{"kind": "process_exec", "process": {"env": {"LD_PRELOAD": "/tmp/x.so"}}}"#, &["R"]),
    ("env variable absent", "condition: kind = process_exec and process.env.LD_PRELOAD exists",
        r#"{"kind": "process_exec"}"#, &[]),
    ("boolean field alone", "condition: kind = process_exec and process.binary_memfd",
        r#"{"kind": "process_exec", "process": {"binary_memfd": true}}"#, &["R"]),
    ("boolean = false", "condition: kind = process_exec and process.binary_memfd = false",
        r#"{"kind": "process_exec"}"#, &["R"]),
    ("setuid bit", "condition: kind = file_chmod and file.mode.setuid",
        r#"{"kind": "file_chmod", "file": {"path": "/tmp/x", "mode": 2541}}"#, &["R"]),
    ("cidr", "condition: kind = net_connect and network.daddr cidr (10.0.0.0/8, 192.168.0.0/16)",
        r#"{"kind": "net_connect", "network": {"daddr": "10.1.2.3", "dport": 443}}"#, &["R"]),
    ("address equality with mapped v6", "condition: kind = net_connect and network.daddr = 10.1.2.3",
        r#"{"kind": "net_connect", "network": {"daddr": "::ffff:10.1.2.3", "dport": 443}}"#, &["R"]),
    ("not cidr", "condition: kind = net_connect and not network.daddr cidr 127.0.0.0/8",
        r#"{"kind": "net_connect", "network": {"daddr": "127.0.0.1", "dport": 443}}"#, &[]),
    ("stdio sockets", "condition: kind = process_exec and process.stdio_sockets.fd in (0, 1) and process.stdio_sockets.family = ipv4",
        r#"{"kind": "process_exec", "process": {"stdio_sockets": [{"fd": 0, "family": "ipv4", "protocol": "tcp", "peer_addr": "1.2.3.4", "peer_port": 4444}]}}"#, &["R"]),
    ("cred.new.uid", "condition: kind = cred_change and cred.new.uid = 0 and cred.caps_gained contains CAP_SYS_ADMIN",
        r#"{"kind": "cred_change", "cred": {"syscall": "setuid", "new": {"uid": 0}, "caps_gained": ["CAP_SYS_ADMIN"]}}"#, &["R"]),
    ("quoted value with blanks", "condition: kind = file_open and process.args contains 'x y'", OPEN, &[]),
    ("list name after in", "condition: kind = file_open and file.path in creds", OPEN, &["R"]),
    ("list name inside a literal", "condition: kind = file_open and file.path in (creds, /x)", OPEN, &["R"]),
    ("quoted list name is a literal", "condition: kind = file_open and file.path in ('creds')", OPEN, &[]),
    ("macro", "condition: reading and file.path = /etc/shadow", OPEN, &["R"]),
    ("exception suppresses", "condition: kind = file_open and file.path = /etc/shadow\n  exceptions: [process.name = cat]", OPEN, &[]),
    ("structured exception", "condition: kind = file_open and file.path = /etc/shadow\n  exceptions:\n    - name: viewers\n      condition: process.name = less", OPEN, &["R"]),
    ("disabled rule", "condition: kind = file_open\n  enabled: false", OPEN, &[]),
    ("folded condition", "condition: >\n    kind = file_open\n    and file.path = /etc/shadow", OPEN, &["R"]),
    ("dns", "condition: kind = dns and dns.query endswith nanopool.org",
        r#"{"kind": "dns", "dns": {"query": "xmr.nanopool.org", "qtype": "A", "answers": []}}"#, &["R"]),
    ("result", "condition: kind = module_load and result < 0",
        r#"{"kind": "module_load", "module": {"name": ""}, "result": -8}"#, &["R"]),
];

const PRELUDE: &str = "- list: creds\n  items: [/etc/shadow]\n- macro: reading\n  condition: kind = file_open and file.access contains read\n";

/// Each case's rule matches exactly the expected events.
#[test]
fn table_of_rules_and_events() {
    for (what, rule, patch, expected) in CASES {
        let yaml =
            format!("{PRELUDE}- rule: r\n  id: R\n  severity: low\n  mitre: [T1003]\n  {rule}\n");
        let policy = Policy::compile([("t.yaml", yaml.as_str())])
            .unwrap_or_else(|d| panic!("{what}: {}", shrike_rules::text::render_diagnostics(&d)));
        let e = event(patch);
        let got: Vec<String> = policy
            .evaluate(&e)
            .iter()
            .map(|m| m.rule_id.to_string())
            .collect();
        assert_eq!(got, *expected, "{what}");
        if !got.is_empty() {
            assert!(
                policy.kernel_plan().admits(&e),
                "{what}: first stage would drop a match"
            );
        }
    }
}

/// A match carries the rule's metadata, and its alert says truthfully what happened.
#[test]
fn matches_become_truthful_alerts() {
    let yaml = r#"
- rule: Deny shadow
  id: D
  severity: critical
  mitre: [T1003.008]
  action: deny
  condition: kind = file_open and file.path = /etc/shadow
- rule: Audit shadow
  id: A
  severity: high
  mitre: [T1003.008]
  action: kill
  mode: audit
  condition: kind = file_open and file.path = /etc/shadow
- rule: Alert shadow
  id: L
  severity: low
  mitre: [T1003]
  condition: kind = file_open and file.path = /etc/shadow
"#;
    let policy = Policy::compile([("t.yaml", yaml)]).unwrap();
    let m = policy.evaluate(&event(OPEN));
    assert_eq!(m.len(), 3);
    let (deny, audit, alert) = (&m[0], &m[1], &m[2]);
    assert_eq!(
        (deny.index, &*deny.rule_id, &*deny.rule),
        (0, "D", "Deny shadow")
    );
    assert_eq!(deny.outcome(KernelAction::Denied), Outcome::Denied);
    assert_eq!(
        deny.outcome(KernelAction::Nothing),
        Outcome::Alerted,
        "not enforced: not denied"
    );
    assert_eq!(deny.outcome(KernelAction::Killed), Outcome::Killed);
    assert_eq!(audit.outcome(KernelAction::Nothing), Outcome::WouldDeny);
    assert_eq!(
        alert.outcome(KernelAction::Denied),
        Outcome::Alerted,
        "an alert rule never says denied"
    );
    let a = deny.to_alert(KernelAction::Denied);
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        serde_json::json!({"rule_id": "D", "rule": "Deny shadow", "severity": "critical",
            "action": "deny", "outcome": "denied", "mitre": ["T1003.008"]})
    );
}

/// `policy test` replays JSON lines and reports each match, and bad lines, with line numbers.
#[test]
fn replay_reports_matches_by_line() {
    let policy = Policy::default_pack().unwrap();
    let shadow = serde_json::to_string(&event(r#"{"kind": "file_open", "process": {"binary": "/usr/bin/python3"}, "file": {"path": "/etc/shadow", "access": ["read"]}}"#)).unwrap();
    let input = format!(
        "{shadow}\n\nnot json\n{}\n",
        serde_json::to_string(&event(
            r#"{"kind": "file_open", "file": {"path": "/etc/hosts", "access": ["read"]}}"#
        ))
        .unwrap()
    );
    let report = shrike_rules::text::test_policy(&policy, input.as_bytes()).unwrap();
    assert_eq!(
        (report.events, report.matched_events, report.invalid),
        (2, 1, 1),
        "{}",
        report.text
    );
    assert!(
        report
            .text
            .starts_with("line 1: file_open pid=10 /usr/bin/python3: SHR-CRED-001 [high]"),
        "{}",
        report.text
    );
    assert!(
        report.text.contains("line 3: not an event"),
        "{}",
        report.text
    );
    assert!(
        report
            .text
            .ends_with("2 events, 1 matched, 1 matches, 1 invalid lines\n"),
        "{}",
        report.text
    );
}

/// `list` shows id, severity, action, mode, mitre, index and name for every rule.
#[test]
fn list_has_one_row_per_rule() {
    let policy = Policy::default_pack().unwrap();
    let text = shrike_rules::text::list(&policy);
    assert!(text.starts_with("ID "), "{text}");
    assert_eq!(text.lines().count(), policy.rules().count() + 1);
    assert!(
        text.contains("SHR-CRED-001  high      alert   enforce  T1003.008"),
        "{text}"
    );
}

/// The default pack has at least 30 enabled rules, each with ATT&CK ids and a description,
/// each with a unique id.
#[test]
fn default_pack_shape() {
    let policy = Policy::default_pack().unwrap();
    let rules: Vec<_> = policy.rules().collect();
    assert!(rules.len() >= 30, "{} rules", rules.len());
    for r in &rules {
        assert!(!r.mitre.is_empty(), "{} has no mitre ids", r.id);
        assert!(!r.description.is_empty(), "{} has no description", r.id);
        assert!(r.enabled);
        assert!(r.id.starts_with("SHR-"));
    }
    let summary = policy.summary();
    assert_eq!(summary.rules, rules.len());
    assert!(shrike_rules::text::render_summary(&summary).starts_with("ok: "));
}
