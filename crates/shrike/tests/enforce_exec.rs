//! Exec enforcement at the point of attack, as root, with real rules and real processes: the
//! forbidden exec fails with no side effect — EPERM where BPF LSM is active (the kernel
//! matrix), SIGKILL before the first instruction where it is not (this machine) — the alert
//! says which (`denied` or `killed`), lineage rules are decided in the kernel, audit mode only
//! reports `would_deny`, and everything else still runs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

struct Setup {
    dir: PathBuf,
    policy: PathBuf,
}

impl Setup {
    fn new(name: &str, rules: impl FnOnce(&Path) -> String) -> Setup {
        let dir = std::env::temp_dir().join(marker(name));
        std::fs::create_dir_all(&dir).unwrap();
        let policy = dir.join("policy.yaml");
        std::fs::write(&policy, rules(&dir)).unwrap();
        Setup { dir, policy }
    }

    fn agent(&self) -> Agent {
        Agent::start_process_only(&["--policy", self.policy.to_str().unwrap()])
    }

    /// A copy of `from` at `name` in the test directory.
    fn binary(&self, from: &str, name: &str) -> PathBuf {
        let to = self.dir.join(name);
        std::fs::copy(from, &to).unwrap();
        to
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rule(id: &str, condition: &str, action: &str, mode: &str) -> String {
    format!("- rule: Rule {id}\n  id: {id}\n  severity: high\n  mitre: [T1059]\n  condition: {condition}\n  action: {action}\n  mode: {mode}\n")
}

/// How the kernel enforces exec rules in this run, from the agent's own log: the LSM hook
/// exactly where BPF LSM works.
fn lsm(agent: &Agent) -> bool {
    let took = agent.stderr().contains("lsm/bprm_check_security");
    assert_eq!(
        took,
        bpf_lsm_expected(),
        "exec rules must use lsm/bprm_check_security exactly where BPF LSM is active:\n{}",
        agent.stderr()
    );
    took
}

/// The outcome of running `cmd` under a deny rule, checked for the kernel's path.
fn assert_denied(agent: &Agent, result: std::io::Result<std::process::ExitStatus>) {
    if lsm(agent) {
        let err = result.expect_err("the exec must fail with EPERM under BPF LSM");
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    } else {
        let status =
            result.expect("the exec itself succeeds without LSM, then the image is killed");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }
}

fn alert<'a>(event: &'a Value, id: &str) -> Option<&'a Value> {
    event["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["rule_id"] == id)
}

/// The check: a deny rule on a marker script makes running it fail without the
/// script's side effect, and the alert says what really happened.
#[test]
fn deny_rule_on_a_script_stops_it_before_its_side_effect() {
    if !require_root("deny_rule_on_a_script_stops_it_before_its_side_effect") {
        return;
    }
    let setup = Setup::new("deny-script", |dir| {
        rule(
            "T-DENY-SCRIPT",
            &format!(
                "kind = process_exec and process.script = {}/marker.sh",
                dir.display()
            ),
            "deny",
            "enforce",
        )
    });
    let script = setup.dir.join("marker.sh");
    let side_effect = setup.dir.join("ran");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch {}\n", side_effect.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = setup.agent();
    assert!(
        agent.stderr().contains("exec rules enforced in the kernel"),
        "{}",
        agent.stderr()
    );

    assert_denied(&agent, Command::new(&script).status());
    assert!(
        !side_effect.exists(),
        "the script ran: its side effect exists"
    );

    let e = agent.wait_for("the refused exec", WAIT, |e| {
        alert(e, "T-DENY-SCRIPT").is_some()
    });
    let a = alert(&e, "T-DENY-SCRIPT").unwrap();
    assert_eq!(a["action"], "deny");
    assert_eq!(a["outcome"], if lsm(&agent) { "denied" } else { "killed" });
    if lsm(&agent) {
        assert_eq!(e["result"], -libc::EPERM as i64);
        assert_eq!(e["process"]["binary"], script.to_str().unwrap());
    } else {
        assert_eq!(e["process"]["script"], script.to_str().unwrap());
        let pid = e["process"]["pid"].clone();
        let exit = agent.wait_for("the killed image's exit", WAIT, |x| {
            kind_is(x, "process_exit") && x["process"]["pid"] == pid
        });
        assert_eq!(exit["exit"]["signal"], libc::SIGKILL);
    }

    // Other programs still run.
    let other = setup.binary("/usr/bin/true", "other");
    assert!(Command::new(&other).status().unwrap().success());
}

/// Lineage in the kernel: the same binary is stopped under one ancestor and allowed under
/// another, decided in BPF from the lineage map.
#[test]
fn kill_rule_scoped_by_ancestor_is_decided_in_the_kernel() {
    if !require_root("kill_rule_scoped_by_ancestor_is_decided_in_the_kernel") {
        return;
    }
    let m = marker("lineage").replace('-', "_");
    let (server, victim) = (
        format!("websrv_{}", &m[m.len() - 8..]),
        format!("victim_{}", &m[m.len() - 8..]),
    );
    let setup = Setup::new("lineage", |_| {
        rule(
            "T-LINEAGE",
            &format!(
                "kind = process_exec and process.name = {victim} and ancestors.name = {server}"
            ),
            "kill",
            "enforce",
        )
    });
    let server_bin = setup.binary("/usr/bin/bash", &server);
    let victim_bin = setup.binary("/usr/bin/true", &victim);
    let agent = setup.agent();
    assert!(
        agent.stderr().contains("exec rules enforced in the kernel"),
        "{}",
        agent.stderr()
    );

    // Directly from the test: no such ancestor, it runs.
    assert!(
        Command::new(&victim_bin).status().unwrap().success(),
        "allowed outside the server's tree"
    );
    // Under the "server" (a grandchild: server -> sh -> victim): killed.
    let status = Command::new(&server_bin)
        .arg("-c")
        .arg(format!(
            "/bin/sh -c '{}; echo $? > {}/rc'",
            victim_bin.display(),
            setup.dir.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let rc = std::fs::read_to_string(setup.dir.join("rc")).unwrap();
    // sh forks a child to run the victim; with or without LSM the kill rule kills that child
    // (after its exec is refused, or as the new image starts): 128 + SIGKILL.
    assert_eq!(
        rc.trim(),
        "137",
        "the victim under the server must be stopped"
    );

    let e = agent.wait_for("the kill", WAIT, |e| alert(e, "T-LINEAGE").is_some());
    assert_eq!(alert(&e, "T-LINEAGE").unwrap()["outcome"], "killed");
    assert!(
        e["ancestors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["binary"] == server_bin.to_str().unwrap()),
        "{e}"
    );
}

/// Audit mode reports `would_deny` and lets the exec run; a reload that drops the rule stops
/// enforcement without restarting the agent.
#[test]
fn audit_mode_only_reports_and_reload_swaps_kernel_rules() {
    if !require_root("audit_mode_only_reports_and_reload_swaps_kernel_rules") {
        return;
    }
    let setup = Setup::new("audit", |dir| {
        rule(
            "T-AUDIT",
            &format!(
                "kind = process_exec and process.binary = {}/audited",
                dir.display()
            ),
            "deny",
            "audit",
        ) + &rule(
            "T-KILL",
            &format!(
                "kind = process_exec and process.binary = {}/killed",
                dir.display()
            ),
            "kill",
            "enforce",
        )
    });
    let audited = setup.binary("/usr/bin/true", "audited");
    let killed = setup.binary("/usr/bin/true", "killed");
    let agent = setup.agent();

    assert!(
        Command::new(&audited).status().unwrap().success(),
        "audit mode never stops anything"
    );
    let e = agent.wait_for("the audited exec", WAIT, |e| alert(e, "T-AUDIT").is_some());
    assert_eq!(alert(&e, "T-AUDIT").unwrap()["outcome"], "would_deny");
    // A kill rule kills on every kernel (under LSM the refused caller is killed too).
    let status = Command::new(&killed).status().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");

    // Reload without the kill rule: the kernel's rules switch generation, the binary runs.
    std::fs::write(
        &setup.policy,
        rule(
            "T-AUDIT",
            &format!(
                "kind = process_exec and process.binary = {}/audited",
                setup.dir.display()
            ),
            "deny",
            "audit",
        ),
    )
    .unwrap();
    // SAFETY: kill(2) with the pid of the agent this test started.
    unsafe { libc::kill(agent.pid() as i32, libc::SIGHUP) };
    let reloaded = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        agent.stderr().contains("policy reloaded")
    });
    assert!(reloaded, "{}", agent.stderr());
    assert!(
        Command::new(&killed).status().unwrap().success(),
        "the dropped rule no longer applies"
    );
}
