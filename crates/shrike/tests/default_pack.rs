//! The default pack in the running agent, on real activity: trust is by path (a copy of /bin/sh
//! saved as `dpkg` is caught writing a cron job), and reading the system — a `find / -xdev`
//! inventory, `grep -r` over the systemd and cron directories, a tar of /etc without the
//! credential files — raises no alert at all.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Whether `event` was caused by the image `exec_id` or one of its descendants.
fn caused_by(event: &Value, exec_id: &Value) -> bool {
    event["process"]["exec_id"] == *exec_id
        || event["ancestors"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["exec_id"] == *exec_id))
}

fn alert_ids(event: &Value) -> Vec<String> {
    event["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["rule_id"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `sh -c SCRIPT sh MARK` and returns the exec_id of that shell once the agent saw it.
fn run_shell(agent: &Agent, script: &str, mark: &str) -> Value {
    let status = Command::new("/bin/sh")
        .args(["-c", script, "sh", mark])
        .status()
        .expect("running the workload");
    assert!(status.success(), "workload failed: {status}");
    let sh = agent.wait_for("the workload's shell", WAIT, |e| {
        kind_is(e, "process_exec") && has_arg(e, mark) && has_arg(e, script)
    });
    sh["process"]["exec_id"].clone()
}

/// Must-be-true 5: a copy of /bin/sh at a temp path named `dpkg` is not a package manager.
/// Writing a cron job from it, and from a child it starts, alerts; so does a `logrotate`
/// impostor truncating a log.
#[test]
fn a_shell_copied_to_a_package_manager_name_is_still_caught() {
    if !require_root("a_shell_copied_to_a_package_manager_name_is_still_caught") {
        return;
    }
    let agent = Agent::start(&["--alerts-only"]);
    let mark = marker("fake-dpkg");
    let dir = std::env::temp_dir().join(&mark);
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("dpkg");
    std::fs::copy("/bin/sh", &fake).unwrap();
    let job = format!("/etc/cron.d/{mark}");
    let script =
        format!("echo '* * * * * root true' > {job}; /bin/cp {job} {job}.2; rm -f {job} {job}.2");
    let status = Command::new(&fake)
        .args(["-c", &script, "dpkg", &mark])
        .status()
        .unwrap();
    assert!(status.success());
    let fake_path = fake.to_string_lossy().to_string();
    let direct = agent.wait_for("the impostor's own write alert", WAIT, |e| {
        e["process"]["binary"] == fake_path.as_str()
            && get(e, "file.path") == job.as_str()
            && alert_ids(e).iter().any(|id| id == "SHR-PERS-001")
    });
    assert_eq!(direct["kind"], "file_open");
    let copy = format!("{job}.2");
    agent.wait_for("the impostor's child's write alert", WAIT, |e| {
        get(e, "file.path") == copy.as_str()
            && e["ancestors"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["binary"] == fake_path.as_str()))
            && alert_ids(e).iter().any(|id| id == "SHR-PERS-001")
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Must-be-true 4: reading is not writing. An inventory (`find / -xdev`), a search of the
/// systemd and cron configuration (`grep -r`) and a backup of /etc that leaves out the
/// credential files raise no alert (the agent is checked to have seen the three programs run,
/// so the test cannot pass on a missing workload).
#[test]
fn reading_the_system_raises_no_alert() {
    if !require_root("reading_the_system_raises_no_alert") {
        return;
    }
    let agent = Agent::start(&[]);
    let mark = marker("read-only");
    let tar = std::env::temp_dir().join(format!("{mark}.tar"));
    let script = format!(
        "find / -xdev > /dev/null 2>&1; \
         grep -r -l -e ExecStart -e root /etc/systemd /etc/cron* > /dev/null 2>&1; \
         tar -C / -cf {tar} --exclude='etc/shadow*' --exclude='etc/gshadow*' \
             --exclude='etc/ssh/ssh_host_*_key' --exclude=etc/security/opasswd \
             --exclude=etc/ssl/private etc 2>/dev/null; \
         rm -f {tar}; true",
        tar = tar.display()
    );
    let exec_id = run_shell(&agent, &script, &mark);
    // Let the last records through the ring buffer (polled every 100 ms).
    std::thread::sleep(Duration::from_millis(1500));
    // The agent saw the workload run (its reads of the persistence directories are filtered in
    // the kernel now that every open rule names the accesses it needs, so they may not arrive).
    let programs: std::collections::BTreeSet<String> = agent
        .events(|e| kind_is(e, "process_exec") && caused_by(e, &exec_id))
        .iter()
        .filter_map(|e| e["process"]["binary"].as_str().map(String::from))
        .collect();
    for tool in ["/usr/bin/find", "/usr/bin/grep", "/usr/bin/tar"] {
        assert!(
            programs.contains(tool),
            "the agent did not see {tool} run (saw {programs:?})"
        );
    }
    let alerts: Vec<String> = agent
        .events(|e| caused_by(e, &exec_id) && !alert_ids(e).is_empty())
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {:?}",
                e["kind"],
                e["process"]["binary"],
                get(e, "file.path"),
                alert_ids(e)
            )
        })
        .collect();
    assert!(
        alerts.is_empty(),
        "read-only work alerted:\n{}",
        alerts.join("\n")
    );
}
