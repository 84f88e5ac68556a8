//! `--keep-enforcing`: enforcement stays in force while the agent is stopped or crashed, the
//! next start adopts it without a gap, and a start and stop without the flag removes it all.
//! One test, so that no other agent of this binary adopts the pins midway.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const PINS: &str = "/sys/fs/bpf/shrike";

/// Removes pins a failed run may leave, so later tests start clean.
struct PinGuard;

impl Drop for PinGuard {
    fn drop(&mut self) {
        for sub in ["links", "maps"] {
            if let Ok(dir) = std::fs::read_dir(Path::new(PINS).join(sub)) {
                for e in dir.flatten() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            let _ = std::fs::remove_dir(Path::new(PINS).join(sub));
        }
        let _ = std::fs::remove_dir(PINS);
    }
}

/// Runs the marker; true when the kernel stopped it (killed, or refused under LSM).
fn stopped(binary: &Path) -> bool {
    match Command::new(binary).status() {
        Ok(status) => status.signal() == Some(libc::SIGKILL),
        Err(err) => err.raw_os_error() == Some(libc::EPERM),
    }
}

#[test]
fn enforcement_survives_stop_and_crash_and_is_removed_without_the_flag() {
    if !require_root("enforcement_survives_stop_and_crash_and_is_removed_without_the_flag") {
        return;
    }
    let _guard = PinGuard;
    let dir: PathBuf = std::env::temp_dir().join(marker("keep"));
    std::fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("victim");
    std::fs::copy("/usr/bin/true", &victim).unwrap();
    let policy = dir.join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "- rule: Kill victim\n  id: T-KEEP\n  severity: high\n  mitre: [T1059]\n  condition: kind = process_exec and process.binary = {}\n  action: kill\n",
            victim.display()
        ),
    )
    .unwrap();
    let args = ["--policy", policy.to_str().unwrap()];

    // 1. With the flag: pinned, and still enforced after a clean stop.
    let agent = Agent::start_process_only(&[args[0], args[1], "--keep-enforcing"]);
    assert!(stopped(&victim), "enforced while running");
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("enforcement stays in force"), "{stderr}");
    assert!(
        Path::new(PINS).join("links").read_dir().unwrap().count() > 0,
        "links are pinned"
    );
    assert!(stopped(&victim), "enforced while the agent is stopped");

    // 2. A restart with the flag adopts the pins; a crash (SIGKILL) leaves enforcement on.
    let agent = Agent::start_process_only(&[args[0], args[1], "--keep-enforcing"]);
    assert!(
        agent.stderr().contains("adopted pinned enforcement"),
        "{}",
        agent.stderr()
    );
    assert!(stopped(&victim));
    // SAFETY: kill(2) with the pid of the agent this test started.
    unsafe { libc::kill(agent.pid() as i32, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(stopped(&victim), "enforced after the agent crashed");
    drop(agent);

    // 3. A start without the flag adopts (no gap), then removes the pins; its stop detaches all.
    let agent = Agent::start_process_only(&args);
    assert!(
        agent.stderr().contains("adopted pinned enforcement"),
        "{}",
        agent.stderr()
    );
    assert!(
        !Path::new(PINS).exists(),
        "pins removed by a start without --keep-enforcing"
    );
    assert!(stopped(&victim), "still enforced by the running agent");
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        !stopped(&victim),
        "nothing enforces after a stop without the flag"
    );
    assert!(Command::new(&victim).status().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}
