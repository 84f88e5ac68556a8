//! The policy's file rules are pushed into the file sensor's kernel filter: a path no
//! configuration watches is sent because a rule names it, a reload adds a new one atomically,
//! and a policy without file rules arms no file sensor.

mod common;

use common::*;

fn rule(id: &str, path: &str) -> String {
    format!("- rule: Read of {id}\n  id: {id}\n  severity: high\n  mitre: [T1005]\n  condition: kind = file_open and file.path = {path}\n")
}

#[test]
fn a_rule_on_an_unwatched_path_makes_the_kernel_send_it_and_reload_adds_more() {
    if !require_root("a_rule_on_an_unwatched_path_makes_the_kernel_send_it_and_reload_adds_more") {
        return;
    }
    let dir = std::env::temp_dir().join(marker("policy-files"));
    std::fs::create_dir_all(&dir).unwrap();
    let (first, second, other) = (dir.join("first"), dir.join("second"), dir.join("other"));
    for f in [&first, &second, &other] {
        std::fs::write(f, "x").unwrap();
    }
    let policy = dir.join("p.yaml");
    std::fs::write(&policy, rule("T-FIRST", first.to_str().unwrap())).unwrap();
    let agent = Agent::start(&[
        "--no-net",
        "--no-builtin-watch",
        "--no-default-policy",
        "--policy",
        policy.to_str().unwrap(),
    ]);

    let opened = |path: &std::path::Path| {
        let p = path.to_str().unwrap().to_string();
        move |e: &serde_json::Value| kind_is(e, "file_open") && e["file"]["path"] == p.as_str()
    };
    std::fs::read(&first).unwrap();
    std::fs::read(&other).unwrap();
    let e = agent.wait_for("the open of the rule's path", WAIT, opened(&first));
    assert_eq!(e["alerts"][0]["rule_id"], "T-FIRST");

    // Reload with a second path: the kernel's filter gains it without a restart.
    std::fs::write(
        &policy,
        rule("T-FIRST", first.to_str().unwrap()) + &rule("T-SECOND", second.to_str().unwrap()),
    )
    .unwrap();
    let reloaded = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        agent.stderr().contains("policy reloaded")
    });
    assert!(reloaded, "{}", agent.stderr());
    std::fs::read(&second).unwrap();
    let e = agent.wait_for("the open of the new rule's path", WAIT, opened(&second));
    assert_eq!(e["alerts"][0]["rule_id"], "T-SECOND");

    let (status, stderr, events) = agent.stop_and_collect();
    assert!(status.success(), "{stderr}");
    assert!(
        !events.iter().any(opened(&other)),
        "a path no rule or watch names stays in the kernel"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_policy_without_file_rules_arms_no_file_sensor() {
    if !require_root("a_policy_without_file_rules_arms_no_file_sensor") {
        return;
    }
    let dir = std::env::temp_dir().join(marker("no-file-rules"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("p.yaml");
    std::fs::write(&policy, "- rule: Exec\n  id: T-EXEC\n  severity: low\n  mitre: [T1059]\n  condition: kind = process_exec and process.name = nc\n").unwrap();
    let agent = Agent::start(&[
        "--no-net",
        "--no-builtin-watch",
        "--no-default-policy",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    let stderr = agent.stderr();
    assert!(stderr.contains("the file sensor is not armed"), "{stderr}");
    assert!(
        !stderr.contains("sys_enter"),
        "no syscall hook is attached: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
