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

/// Builds, under `dir/jail`, a path whose end the kernel cannot record whole: a 250-byte
/// directory, then `decoy-<m>/` and 200-byte directories, then `true-<m>`, with the part from
/// `/decoy-<m>/` on just short enough to fill a record (so the cut path starts exactly there),
/// and runs that copy of /usr/bin/true from inside with `m` as its argument. Returns the
/// shell's report: `rc=N` of the run (0 ran, 137 killed, 126 refused).
fn run_deep(dir: &Path, m: &str) -> String {
    let (p, c) = ("P".repeat(250), "C".repeat(200));
    let fixed = format!("/decoy-{m}").len() + format!("/true-{m}").len();
    let k = (4095 - fixed) / 201;
    assert!(
        fixed + 201 * k > 4095 - 251,
        "the cut must fall right before decoy-{m}"
    );
    // Python, because a shell's `cd` builds the absolute path and fails past PATH_MAX.
    let script = format!(
        "import os, shutil, subprocess, sys\n\
         os.chdir({jail:?})\n\
         for d in [{p:?}, 'decoy-{m}'] + [{c:?}] * {k}:\n    os.makedirs(d, exist_ok=True)\n    os.chdir(d)\n\
         shutil.copy('/usr/bin/true', 'true-{m}')\n\
         try:\n    rc = subprocess.run(['./true-{m}', '{m}']).returncode\n\
         except PermissionError:\n    rc = 126\n\
         print('rc=%d' % (128 - rc if rc < 0 else rc))\n",
        jail = dir.join("jail").display().to_string()
    );
    let out = Command::new(PYTHON).arg("-c").arg(script).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        report.starts_with("rc="),
        "{report}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

/// Issue 19, case 1: a binary deeper than a record holds (4,245 bytes) under a directory a
/// deny rule covers by prefix. Its exec event flags `binary_truncated` and `cwd_truncated`;
/// the cut path, which starts with what looks like another rule's prefix (`/decoy-…/`), is not
/// taken for the whole path; every prefix rule that could match is reported `alerted`, and the
/// binary runs — unless `--strict`, where it is stopped (killed here, refused under BPF LSM).
/// A long path that is not cut (a 250-byte name) is decided in the kernel by its prefix.
#[test]
fn deep_paths_are_flagged_and_never_silently_escape_a_deny_rule() {
    if !require_root("deep_paths_are_flagged_and_never_silently_escape_a_deny_rule") {
        return;
    }
    let m = marker("deep").replace("shrike-test-", "");
    let setup = Setup::new("deep", |dir| {
        rule(
            "T-JAIL",
            &format!(
                "kind = process_exec and process.binary startswith {}/jail/",
                dir.display()
            ),
            "deny",
            "enforce",
        ) + &rule(
            "T-DECOY",
            &format!("kind = process_exec and process.binary startswith /decoy-{m}/"),
            "deny",
            "enforce",
        )
    });
    std::fs::create_dir_all(setup.dir.join("jail").join("L".repeat(250))).unwrap();
    let long = setup.dir.join("jail").join("L".repeat(250)).join("true");
    std::fs::copy("/usr/bin/true", &long).unwrap();
    let deep = |e: &Value| kind_is(e, "process_exec") && has_arg(e, &m);

    let agent = setup.agent();
    // Long but whole: the kernel decides the prefix rule.
    assert_denied(&agent, Command::new(&long).status());
    assert_eq!(
        run_deep(&setup.dir, &m),
        "rc=0",
        "without --strict the deep binary runs"
    );
    let e = agent.wait_for("the deep exec", WAIT, deep);
    assert_eq!(e["process"]["binary_truncated"], true, "{e}");
    assert_eq!(e["process"]["cwd_truncated"], true, "{e}");
    let binary = e["process"]["binary"].as_str().unwrap();
    assert!(binary.starts_with(&format!("/decoy-{m}/")), "{binary}");
    assert!(binary.ends_with(&format!("/true-{m}")), "{binary}");
    for id in ["T-JAIL", "T-DECOY"] {
        let a = alert(&e, id).unwrap_or_else(|| panic!("{id} not reported: {e}"));
        assert_eq!(a["outcome"], "alerted", "{e}");
    }
    drop(agent);

    let agent =
        Agent::start_process_only(&["--policy", setup.policy.to_str().unwrap(), "--strict"]);
    assert!(
        agent
            .stderr()
            .contains("--strict: these exec rules also stop an exec whose path is too deep"),
        "{}",
        agent.stderr()
    );
    let stopped = if lsm(&agent) { "rc=126" } else { "rc=137" };
    assert_eq!(
        run_deep(&setup.dir, &m),
        stopped,
        "--strict stops the deep binary"
    );
    let e = agent.wait_for("the stopped deep exec", WAIT, |e| {
        kind_is(e, "process_exec")
            && e["process"]["binary"]
                .as_str()
                .is_some_and(|b| b.ends_with(&format!("/true-{m}")))
    });
    assert_eq!(e["process"]["binary_truncated"], true, "{e}");
    let a = alert(&e, "T-JAIL").unwrap_or_else(|| panic!("T-JAIL not reported: {e}"));
    assert_eq!(
        a["outcome"],
        if lsm(&agent) { "denied" } else { "killed" },
        "{e}"
    );
    // The deep tree is deeper than PATH_MAX: remove it from inside.
    let _ = Command::new("rm")
        .arg("-rf")
        .arg(setup.dir.join("jail"))
        .status();
}
