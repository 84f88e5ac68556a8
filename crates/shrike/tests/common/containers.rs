//! What the workload-identity tests share (`workload.rs`, `workload_docker.rs`): the tools they
//! need, a temporary directory of their own, the busybox root file system their images are made
//! of, the script a container runs (exec, file open, loopback connect) and the checks that the
//! events from inside carry the runtime's identity exactly and a host process's none.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{has_arg, kind_is, marker, Agent};

/// How long a test waits for one event from a container (a runtime's first start is slow).
pub const CONTAINER_WAIT: Duration = Duration::from_secs(60);

/// Tests that run agents take this to read; the test of an agent that dies holding execs takes
/// it to write (runs alone): any agent that starts meanwhile would resume the execs it left,
/// and adopt its pinned programs.
pub static AGENTS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The read side of [`AGENTS`], for a test that runs an agent.
pub fn agents_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    AGENTS.read().unwrap_or_else(|e| e.into_inner())
}

/// Whether `tool` is installed; panics under CI=true when it is not (`./dev deps` installs the
/// runtimes, `./dev test` also Docker).
pub fn require_tool(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    let why = format!("{test}: needs {tool} (./dev deps installs podman, containerd and runc; ./dev test also docker.io)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true this test must run, not skip");
    }
    eprintln!("SKIPPED {why}");
    false
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A directory of the test's own, removed (after unmounting anything left in it) at the end.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = PathBuf::from("/tmp").join(marker(name));
        std::fs::create_dir_all(dir.join("share")).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let prefix = self.0.to_string_lossy().to_string();
        let mut inside: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        inside.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in inside {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A root file system of busybox (with an /etc/shadow to read) as a tar.
pub fn rootfs_tar(dir: &TempDir) -> PathBuf {
    let root = dir.path("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "share"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "sleep", "nc", "echo", "true"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    // A binary of its own path for the workload-scoped deny rule (busybox runs the applet its
    // name says: `echo`).
    std::fs::create_dir_all(root.join("opt/denied")).unwrap();
    std::fs::copy("/bin/busybox", root.join("opt/denied/echo")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    let tar = dir.path("rootfs.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}

/// The script a container runs: it waits for the test's go (a file in the shared directory,
/// polled with `sleep`, whose execs show the agent has the identity), then reads /etc/shadow,
/// connects over loopback and execs `echo MARKER`.
pub fn script(port: u16, m: &str) -> String {
    format!(
        "while [ ! -e /share/go ]; do sleep 0.2; done; cat /etc/shadow >/dev/null; \
         nc -l -p {port} >/dev/null & sleep 0.5; echo hi | nc -w 1 127.0.0.1 {port}; \
         /bin/echo {m}; sleep 2"
    )
}

pub fn in_container<'a>(id: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| e["container"]["id"] == id
}

/// Waits for the identity to be resolved, says go, and returns the exec, file and connect
/// events from inside, each checked to carry `container` (and `k8s`) exactly.
pub fn container_events(
    agent: &Agent,
    id: &str,
    share: &Path,
    port: u16,
    m: &str,
    container: &Value,
    k8s: &Value,
) {
    let first = agent.wait_for("the container's first exec", CONTAINER_WAIT, |e| {
        kind_is(e, "process_exec") && in_container(id)(e)
    });
    assert_eq!(first["container"]["id"], id, "{first}");
    agent.wait_for("an exec after the runtime answered", CONTAINER_WAIT, |e| {
        in_container(id)(e) && e["container"]["resolved"] == true
    });
    std::fs::write(share.join("go"), "").unwrap();
    let exec = agent.wait_for("exec of echo MARKER", CONTAINER_WAIT, |e| {
        kind_is(e, "process_exec") && in_container(id)(e) && has_arg(e, m)
    });
    let file = agent.wait_for("open of /etc/shadow", CONTAINER_WAIT, |e| {
        kind_is(e, "file_open") && in_container(id)(e) && e["file"]["path"] == "/etc/shadow"
    });
    let net = agent.wait_for("connect to the listener", CONTAINER_WAIT, |e| {
        kind_is(e, "net_connect") && in_container(id)(e) && e["network"]["dport"] == port
    });
    for e in [&exec, &file, &net] {
        assert_eq!(&e["container"], container, "{}: {e}", e["kind"]);
        assert_eq!(&e["k8s"], k8s, "{}: {e}", e["kind"]);
    }
}

/// A host process (not in any container) carries neither `container` nor `k8s`.
pub fn host_exec_has_no_identity(agent: &Agent) {
    let m = marker("host");
    run(Command::new("/usr/bin/env").args(["true", &m]));
    let e = agent.wait_for("host exec", CONTAINER_WAIT, |e| {
        kind_is(e, "process_exec") && has_arg(e, &m)
    });
    assert!(
        e.get("container").is_none() && e.get("k8s").is_none(),
        "{e}"
    );
}

pub fn wait_for_socket(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
