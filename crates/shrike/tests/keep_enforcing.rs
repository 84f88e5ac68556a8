//! `--keep-enforcing`: enforcement stays in force while the agent is stopped or crashed, the
//! next start adopts it without a gap, and a start and stop without the flag removes it all.
//! The pins are root's alone: another user can neither remove them nor plant a directory the
//! next agent adopts, and a bpffs shrike mounted is root-only and unmounted when no pin needs
//! it. The tests take one lock, so that no other agent of this binary adopts the pins midway.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::*;

const PINS: &str = "/sys/fs/bpf/shrike";

/// One test of this binary at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `sh -c script` as the user nobody (uid and gid 65534, no supplementary groups): what an
/// unprivileged local user can do.
fn as_nobody(script: &str) -> std::process::Output {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    // SAFETY: setgroups, setgid and setuid are async-signal-safe and touch no memory of the
    // parent; this runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// Mode bits and owner of `path` (not following a symlink).
fn mode_and_owner(path: &Path) -> (u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.mode() & 0o7777, meta.uid())
}

fn pins_in(sub: &str) -> Vec<PathBuf> {
    std::fs::read_dir(Path::new(PINS).join(sub))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
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
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
    // Root's alone: directories 0700, pins 0600, all owned by root.
    for d in [
        PINS.to_string(),
        format!("{PINS}/maps"),
        format!("{PINS}/links"),
    ] {
        assert_eq!(mode_and_owner(Path::new(&d)), (0o700, 0), "{d}");
    }
    for pin in pins_in("maps").iter().chain(&pins_in("links")) {
        let (mode, owner) = mode_and_owner(pin);
        assert_eq!((mode & 0o077, owner), (0, 0), "{}: {mode:o}", pin.display());
    }

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
    // Issue 19, case 2: after the crash another user cannot remove (or add) pins.
    let links = pins_in("links").len();
    let out = as_nobody(&format!(
        "rm -f {PINS}/links/* {PINS}/maps/*; rm -rf {PINS}; mkdir {PINS}/links/x; mv {PINS} /sys/fs/bpf/moved"
    ));
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(pins_in("links").len(), links, "a user removed link pins");
    assert!(!Path::new("/sys/fs/bpf/moved").exists());
    assert!(
        stopped(&victim),
        "enforced after another user tried to remove the pins"
    );

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

    // 4. Issue 19, case 2: a pin directory another user made before a start is refused loudly:
    // --keep-enforcing does not start, a start without it does not adopt it.
    // The start without the flag unmounted the bpffs shrike had mounted (where the system had
    // none, as in the kernel matrix): mount one as many systems do (1777), for the user to
    // plant into.
    let bpffs_mounted = || {
        std::fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf"))
    };
    let mounted_here = !bpffs_mounted();
    if mounted_here {
        let ok = Command::new("mount")
            .args(["-t", "bpf", "-o", "mode=1777", "bpf", "/sys/fs/bpf"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a bpffs for the planted-directory check");
    }
    let planted = as_nobody(&format!("mkdir -p {PINS}/links {PINS}/maps"));
    if !planted.status.success() {
        // The bpffs root is root-only here: the user cannot plant it; make the state by hand.
        std::fs::create_dir_all(Path::new(PINS).join("links")).unwrap();
        std::os::unix::fs::chown(PINS, Some(65534), Some(65534)).unwrap();
    }
    assert_ne!(mode_and_owner(Path::new(PINS)).1, 0);
    let out = Command::new(common::agent_binary())
        .args(["run", "--no-file-sensor", "--no-net", "--duration", "5"])
        .args([args[0], args[1], "--keep-enforcing"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "refusing the pin directory /sys/fs/bpf/shrike: it is owned by uid 65534, not root"
        ),
        "{stderr}"
    );
    let agent = Agent::start_process_only(&args);
    assert!(
        agent.stderr().contains("pinned enforcement not adopted"),
        "{}",
        agent.stderr()
    );
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{stderr}");
    if mounted_here {
        let _ = std::fs::remove_dir_all(PINS);
        let _ = Command::new("umount").arg("/sys/fs/bpf").status();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19, cases 2 and 7: where no bpffs and no cgroup2 are mounted (a private mount
/// namespace with both unmounted), `--keep-enforcing` mounts bpffs root-only (1700, source
/// `shrike`) and keeps it for its pins; a start without the flag removes the pins and unmounts
/// it. The cgroup2 the network sensor mounted under /run/shrike is unmounted at exit and the
/// directory removed. /run is a private tmpfs there, so an agent running beside the test (its
/// API socket is under /run/shrike) does not decide the outcome.
#[test]
fn what_shrike_mounts_is_root_only_and_unmounted_when_not_needed() {
    if !require_root("what_shrike_mounts_is_root_only_and_unmounted_when_not_needed") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir: PathBuf = std::env::temp_dir().join(marker("mounts"));
    std::fs::create_dir_all(&dir).unwrap();
    let shrike = common::agent_binary();
    let script = format!(
        r#"set -u
mount -t tmpfs -o mode=755 shrike-test-run /run || exit 7
while grep -q ' /sys/fs/bpf bpf ' /proc/self/mounts; do umount /sys/fs/bpf || exit 3; done
for p in $(awk '$3 == "cgroup2" {{print $2}}' /proc/self/mounts); do umount -l "$p" || exit 4; done
{shrike} run --no-file-sensor --keep-enforcing --duration 2 >/dev/null 2>{d}/keep.log || exit 5
grep ' /sys/fs/bpf bpf ' /proc/self/mounts > {d}/bpffs-kept
stat -c '%a %u' /sys/fs/bpf /sys/fs/bpf/shrike > {d}/modes
grep -c /run/shrike /proc/self/mounts > {d}/run-mounts
if [ -e /run/shrike ]; then echo "left: $(ls -A /run/shrike)"; else echo absent; fi > {d}/run-shrike
{shrike} run --no-file-sensor --duration 2 >/dev/null 2>{d}/plain.log || exit 6
grep ' /sys/fs/bpf ' /proc/self/mounts > {d}/bpffs-after
exit 0
"#,
        d = dir.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    assert!(
        out.status.success(),
        "{:?}: {}\nkeep.log:\n{}\nplain.log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        read("keep.log"),
        read("plain.log")
    );
    let kept = read("bpffs-kept");
    assert!(
        kept.starts_with("shrike /sys/fs/bpf bpf ") && kept.contains("mode=700"),
        "bpffs mounted by shrike, root-only, kept for the pins: {kept}"
    );
    // bpffs always sets the sticky bit on its root.
    assert_eq!(read("modes"), "1700 0\n700 0\n");
    let keep_log = read("keep.log");
    assert!(keep_log.contains("mounted cgroup2"), "{keep_log}");
    assert!(
        keep_log.contains("unmounted what shrike had mounted")
            && keep_log.contains("/run/shrike/cgroup2"),
        "{keep_log}"
    );
    assert_eq!(
        read("run-mounts").trim(),
        "0",
        "nothing left mounted under /run/shrike"
    );
    assert_eq!(read("run-shrike"), "absent\n", "/run/shrike removed");
    let plain_log = read("plain.log");
    assert!(
        plain_log.contains("unmounted the bpffs shrike had mounted"),
        "{plain_log}"
    );
    assert_eq!(
        read("bpffs-after"),
        "",
        "bpffs unmounted once no pin needs it"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The value size of the map pinned at `pin` (`bpftool map show pinned`).
fn pinned_value_size(pin: &Path) -> u64 {
    let out = Command::new("bpftool")
        .args(["--json", "map", "show", "pinned"])
        .arg(pin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    info["bytes_value"].as_u64().unwrap()
}

/// An upgrade over pins an older version left: its `enforce_state` map had an 8-byte value
/// (before the `--strict` rules for cut paths were added to it). The new agent must not adopt a
/// map whose layout differs (libbpf would take the old layout and the verifier would refuse
/// the process sensor, so the agent would not start at all): it says so, starts the map
/// empty, replaces the pin with the map it uses, and enforces.
#[test]
fn a_pinned_map_of_an_older_layout_is_replaced_not_adopted() {
    if !require_root("a_pinned_map_of_an_older_layout_is_replaced_not_adopted") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _guard = PinGuard;
    let dir: PathBuf = std::env::temp_dir().join(marker("layout"));
    std::fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("victim");
    std::fs::copy("/usr/bin/true", &victim).unwrap();
    let policy = dir.join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "- rule: Kill victim\n  id: T-LAYOUT\n  severity: high\n  mitre: [T1059]\n  condition: kind = process_exec and process.binary = {}\n  action: kill\n",
            victim.display()
        ),
    )
    .unwrap();
    let args = ["--policy", policy.to_str().unwrap()];
    let run = |extra: &[&str]| {
        Command::new(common::agent_binary())
            .args(["run", "--no-file-sensor", "--no-net", "--duration", "1"])
            .args(args)
            .args(extra)
            .output()
            .unwrap()
    };

    // The pins as this version makes them, then enforce_state swapped for the old layout.
    let out = run(&["--keep-enforcing"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = Path::new(PINS).join("maps").join("enforce_state");
    let current = pinned_value_size(&state);
    assert_ne!(current, 8);
    std::fs::remove_file(&state).unwrap();
    let made = Command::new("bpftool")
        .args(["map", "create"])
        .arg(&state)
        .args(["type", "array", "key", "4", "value", "8", "entries", "1"])
        .args(["name", "enforce_state"])
        .status()
        .unwrap();
    assert!(made.success(), "bpftool map create");
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    assert_eq!(pinned_value_size(&state), 8);

    let agent = Agent::start_process_only(&[args[0], args[1], "--keep-enforcing"]);
    assert!(
        agent
            .stderr()
            .contains("a pinned map does not fit this version"),
        "{}",
        agent.stderr()
    );
    assert!(stopped(&victim), "enforced by the upgraded agent");
    assert_eq!(
        pinned_value_size(&state),
        current,
        "the pin now holds the map in use"
    );
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{stderr}");

    // A start without the flag removes the pins again.
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new(PINS).exists(), "pins removed");
    assert!(Command::new(&victim).status().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}
