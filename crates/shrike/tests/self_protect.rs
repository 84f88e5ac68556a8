//! Self-protection: a signal aimed at the agent by another process is an alert naming that
//! process on every kernel; with `--protect-self` on BPF LSM (the kernel matrix) it is also
//! refused with EPERM, and ptrace of the agent is refused, while allowed binaries (here, this
//! test) can still stop it.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn self_alert(e: &Value) -> Option<&Value> {
    e["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["rule_id"] == "SHR-SELF-001")
}

#[test]
fn signals_and_ptrace_against_the_agent_are_alerted_and_refused_under_lsm() {
    if !require_root("signals_and_ptrace_against_the_agent_are_alerted_and_refused_under_lsm") {
        return;
    }
    let me = std::env::current_exe().unwrap();
    let agent = Agent::start(&["--protect-self", "--allow-control", me.to_str().unwrap()]);
    let lsm = agent.stderr().contains("lsm/task_kill");
    let pid = agent.pid().to_string();

    // SIGCONT: harmless to a running agent, but a signal from another process all the same.
    let status = Command::new("/usr/bin/kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert_eq!(
        status.success(),
        !lsm,
        "refused under LSM, delivered elsewhere"
    );
    let e = agent.wait_for("the signal to the agent", WAIT, |e| {
        self_alert(e).is_some() && e["process"]["binary"] == "/usr/bin/kill"
    });
    assert_eq!(e["kind"], "signal");
    assert_eq!(e["signal"]["target_pid"], agent.pid());
    let alert = self_alert(&e).unwrap();
    assert_eq!(alert["outcome"], if lsm { "denied" } else { "alerted" });
    assert_eq!(alert["mitre"][0], "T1562.001");

    if lsm {
        // ptrace attach by another binary is refused too.
        let out = Command::new("/usr/bin/python3")
            .args(["-c", &format!("import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); r=l.ptrace(16,{pid},0,0); sys.exit(ctypes.get_errno() if r!=0 else 0)")])
            .status()
            .unwrap();
        assert_eq!(
            out.code(),
            Some(libc::EPERM),
            "PTRACE_ATTACH to the agent must fail with EPERM"
        );
        agent.wait_for("the refused ptrace", WAIT, |e| {
            e["kind"] == "ptrace" && self_alert(e).is_some()
        });
    }
    // This test's own binary is allowed: it can stop the agent.
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{stderr}");
}
