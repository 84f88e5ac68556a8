//! Workload identity on a real Docker, as root: the test starts its own `dockerd` (Debian's
//! `docker.io`, 20.10; runc) with everything private to it — data root, exec root (where the
//! containerd it manages keeps its socket and state), pid file and API socket under a temporary
//! directory, no bridge and no iptables — imports the busybox image the Podman test builds,
//! runs a named, labelled container under the real `shrike run` asking that dockerd, and checks
//! that the events from inside carry the identity `docker inspect` reports, and host processes
//! none. The daemon and everything it made are removed at the end.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::containers::*;
use common::*;
use serde_json::{json, Value};

const WAIT: Duration = CONTAINER_WAIT;

/// How long dockerd gets to answer its first `docker version` (it starts containerd first).
const DAEMON_START: Duration = Duration::from_secs(60);
/// How long dockerd gets to stop after SIGTERM before it is killed.
const DAEMON_STOP: Duration = Duration::from_secs(20);

/// A `dockerd` of the test's own: its socket, state and pid file are under the test's
/// directory, and it changes nothing on the host's network (no bridge, no iptables rules).
struct Docker {
    socket: PathBuf,
    config: PathBuf,
    log: PathBuf,
    daemon: Child,
    cleanup: Vec<Vec<String>>,
}

impl Docker {
    fn start(dir: &TempDir) -> Docker {
        let socket = dir.path("docker.sock");
        let config = dir.path("cli");
        std::fs::create_dir_all(&config).unwrap();
        let log = dir.path("dockerd.log");
        let log_file = std::fs::File::create(&log).unwrap();
        // No default ulimits are set (dockerd sets none unless told), so runc does not try to
        // raise RLIMIT_NOFILE/NPROC, which the sandbox refuses.
        let daemon = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.path("data"))
            .arg("--exec-root")
            .arg(dir.path("exec"))
            .arg("--pidfile")
            .arg(dir.path("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--default-runtime=runc",
            ])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("starting dockerd");
        let mut d = Docker {
            socket,
            config,
            log,
            daemon,
            cleanup: Vec::new(),
        };
        d.wait_ready();
        d
    }

    /// Waits until the daemon answers `docker version`; panics with its log when it exits or
    /// does not answer in time.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + DAEMON_START;
        loop {
            let ok = self
                .cmd()
                .args(["version", "--format", "{{.Server.Version}}"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            let exited = self.daemon.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "dockerd did not come up ({}): {}",
                    exited.map_or("no answer in time".to_string(), |s| s.to_string()),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The `docker` client, talking to this daemon only (its own config directory too).
    fn cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("--config")
            .arg(&self.config)
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()));
        c
    }

    /// Imports the root file system `tar` as image `tag` (removed when the test ends): its id.
    fn import(&mut self, tar: &std::path::Path, tag: &str) -> String {
        let id = run(self.cmd().arg("import").arg(tar).arg(tag));
        self.cleanup
            .push(vec!["rmi".into(), "-f".into(), tag.to_string()]);
        id
    }

    /// `docker run -d` of container `name` (removed when the test ends) from `image`, with no
    /// network, `args` before the image and `command` after: its id.
    fn run_detached(&mut self, name: &str, args: &[&str], image: &str, command: &[&str]) -> String {
        self.cleanup
            .insert(0, vec!["rm".into(), "-f".into(), name.to_string()]);
        run(self
            .cmd()
            .args(["run", "-d", "--network", "none", "--name", name])
            .args(args)
            .arg(image)
            .args(command))
    }

    /// `docker inspect` of one object, as JSON.
    fn inspect(&self, what: &str) -> Value {
        let text = run(self.cmd().args(["inspect", what]));
        let all: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("docker inspect {what}: {e}: {text}"));
        all[0].clone()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for args in &self.cleanup {
            let _ = self
                .cmd()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // SIGTERM, not SIGKILL: dockerd then stops the containerd it started, which would
        // otherwise outlive it.
        let pid = self.daemon.id() as libc::pid_t;
        // SAFETY: kill takes a pid and a signal number; the pid is our own child, not reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + DAEMON_STOP;
        while Instant::now() < deadline {
            if self.daemon.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Docker's container: exec, file and network events from inside carry the container's id,
/// name, image (as `docker run` named it) and image id, labels, runtime `docker` and host
/// configuration (a bind mount, not privileged, own pid and network namespaces) exactly as
/// `docker inspect` reports them, and no pod; a host process carries no container.
#[test]
fn docker_container_events_carry_the_runtimes_identity() {
    let _agents = agents_shared();
    let test = "docker_container_events_carry_the_runtimes_identity";
    if !require_root(test)
        || !require_tool(test, "dockerd")
        || !require_tool(test, "docker")
        || !require_tool(test, "runc")
    {
        return;
    }
    let started = Instant::now();
    let dir = TempDir::new("docker");
    let tar = rootfs_tar(&dir);
    let mut docker = Docker::start(&dir);
    let tag = format!("localhost/shrike-wl-{}:1", std::process::id());
    let image_id = docker.import(&tar, &tag);
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    // A container older than the agent: found by the agent's first cgroup walk, asked about
    // at start, and entered later with `docker exec`.
    let name = format!("shrike-wl-{}", std::process::id());
    let early_name = format!("{name}-early");
    let m0 = marker("docker-early");
    let early = docker.run_detached(
        &early_name,
        &["--label", "started=before-agent"],
        &tag,
        &[
            "/bin/sh",
            "-c",
            &format!("while true; do /bin/echo {m0}; sleep 0.3; done"),
        ],
    );
    let agent = Agent::start(&[
        "--container-runtime",
        &format!("docker={}", docker.socket.display()),
    ]);
    host_exec_has_no_identity(&agent);

    let m = marker("docker");
    let port = 20000 + (std::process::id() % 20000) as u16;
    let share = dir.path("share");
    let id = docker.run_detached(
        &name,
        &[
            "--label",
            "app=shrike-test",
            "--label",
            &format!("marker={m}"),
            "-v",
            &format!("{}:/share", share.display()),
        ],
        &tag,
        &["/bin/sh", "-c", &script(port, &m)],
    );
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );

    // What Docker itself says, so the expected identity is Docker's and not the test's guess.
    let inspect = docker.inspect(&id);
    assert_eq!(inspect["Name"], format!("/{name}"), "{inspect}");
    assert_eq!(inspect["Config"]["Image"], tag.as_str(), "{inspect}");
    assert_eq!(inspect["Image"], image_id.as_str(), "{inspect}");
    assert_eq!(docker.inspect(&tag)["Id"], image_id.as_str());

    // The process's cgroup is what the agent parsed the id and runtime from: say which layout
    // this dockerd used (cgroupfs `/docker/<id>` or systemd `docker-<id>.scope`).
    let pid = run(docker
        .cmd()
        .args(["inspect", "--format", "{{.State.Pid}}", &id]));
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    eprintln!(
        "docker container {id}: cgroup {:?}",
        cgroup.lines().find(|l| l.starts_with("0::")).unwrap_or("?")
    );

    let container = json!({
        "id": id,
        "name": name,
        "image": tag,
        "image_id": image_id,
        "runtime": "docker",
        "labels": {"app": "shrike-test", "marker": m},
        "resolved": true,
        "privileged": false,
        "host_pid": false,
        "host_network": false,
        "host_mounts": [share.to_string_lossy()],
        "runtime_socket_mounted": false,
    });
    container_events(&agent, &id, &share, port, &m, &container, &Value::Null);

    let described = |e: &Value, id: &str, needle: &str| {
        kind_is(e, "process_exec")
            && in_container(id)(e)
            && has_arg(e, needle)
            && e["container"]["resolved"] == true
    };
    let early_identity = |e: &Value| {
        let c = &e["container"];
        assert_eq!(
            (&c["name"], &c["image"], &c["image_id"], &c["runtime"]),
            (
                &json!(early_name),
                &json!(tag),
                &json!(image_id),
                &json!("docker")
            ),
            "{e}"
        );
        assert_eq!(c["labels"], json!({"started": "before-agent"}), "{e}");
        assert!(e.get("k8s").is_none(), "{e}");
    };
    let e = agent.wait_for(
        "a described exec in the container older than the agent",
        WAIT,
        |e| described(e, &early, &m0),
    );
    early_identity(&e);
    let m1 = marker("docker-exec");
    run(docker.cmd().args(["exec", &early_name, "/bin/echo", &m1]));
    let e = agent.wait_for("the exec `docker exec` ran in the container", WAIT, |e| {
        described(e, &early, &m1)
    });
    early_identity(&e);

    eprintln!("docker test took {:.1}s", started.elapsed().as_secs_f64());
}
