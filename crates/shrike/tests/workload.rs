//! Workload identity on real runtimes, as root: the real `shrike run`, with Podman (Debian's
//! package) running a container from an image the test builds, and containerd (Debian's
//! package, its CRI plugin) running a pod sandbox and a container the test creates through the
//! CRI as kubelet does. Each test starts its runtime itself (own sockets, own state under a
//! temporary directory) and removes it; the events of processes inside must carry the exact
//! identity the runtime holds, and host processes none.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::containers::*;
use common::learn::{learn_alerts, learn_around, pair};
use common::*;
use serde_json::{json, Value};
use shrike::workload::cri;
use shrike::workload::pb::Writer;
use shrike::workload::{resolver, Request, RuntimeSocket};

const WAIT: Duration = CONTAINER_WAIT;

/// `podman system service` on a socket of the test's own, with the test's containers.conf.
struct Podman {
    conf: PathBuf,
    socket: PathBuf,
    service: Child,
    cleanup: Vec<Vec<String>>,
}

impl Podman {
    fn start(dir: &TempDir) -> Podman {
        let conf = dir.path("containers.conf");
        // The sandbox refuses raising RLIMIT_NOFILE/NPROC: no default ulimits.
        std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
        let socket = dir.path("podman.sock");
        let service = Command::new("podman")
            .env("CONTAINERS_CONF", &conf)
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting podman system service");
        let p = Podman {
            conf,
            socket,
            service,
            cleanup: Vec::new(),
        };
        wait_for_socket(&p.socket);
        p
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf)
            .args(["--runtime", "runc"]);
        c
    }

    /// Imports the root file system `tar` as image `tag` (removed when the test ends): its id.
    fn import(&mut self, tar: &Path, tag: &str) -> String {
        let id = run(self.cmd().arg("import").arg(tar).arg(tag));
        self.cleanup
            .push(vec!["rmi".into(), "-f".into(), tag.to_string()]);
        id
    }

    /// `podman run -d` of container `name` (removed when the test ends) from `image`, with no
    /// network and the host's limits, `args` before the image and `command` after: its id.
    fn run_detached(&mut self, name: &str, args: &[&str], image: &str, command: &[&str]) -> String {
        self.cleanup
            .insert(0, vec!["rm".into(), "-f".into(), name.to_string()]);
        run(self
            .cmd()
            .args([
                "run",
                "-d",
                "--ulimit",
                "host",
                "--network",
                "none",
                "--name",
                name,
            ])
            .args(args)
            .arg(image)
            .args(command))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for args in &self.cleanup {
            let _ = self
                .cmd()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.service.kill();
        let _ = self.service.wait();
    }
}

/// Podman's container: exec, file and network events from inside carry the container's id,
/// name, image and image id, labels, runtime and host configuration (a bind mount, not
/// privileged, own pid and network namespaces) exactly as Podman reports them; a host process
/// carries no container.
#[test]
fn podman_container_events_carry_the_runtimes_identity() {
    let _agents = agents_shared();
    let test = "podman_container_events_carry_the_runtimes_identity";
    if !require_root(test) || !require_tool(test, "podman") || !require_tool(test, "runc") {
        return;
    }
    let dir = TempDir::new("podman");
    let tar = rootfs_tar(&dir);
    let mut podman = Podman::start(&dir);
    let tag = format!("localhost/shrike-wl-{}:1", std::process::id());
    let image_id = podman.import(&tar, &tag);
    let agent = Agent::start(&[
        "--container-runtime",
        &format!("podman={}", podman.socket.display()),
    ]);
    host_exec_has_no_identity(&agent);

    let m = marker("podman");
    let name = format!("shrike-wl-{}", std::process::id());
    let port = 20000 + (std::process::id() % 20000) as u16;
    let share = dir.path("share");
    let id = podman.run_detached(
        &name,
        &[
            "-l",
            "app=shrike-test",
            "-l",
            &format!("marker={m}"),
            "-v",
            &format!("{}:/share", share.display()),
        ],
        &tag,
        &["/bin/sh", "-c", &script(port, &m)],
    );
    assert_eq!(id.len(), 64, "{id}");

    let container = json!({
        "id": id,
        "name": name,
        "image": tag,
        "image_id": image_id,
        "runtime": "podman",
        "labels": {"app": "shrike-test", "marker": m},
        "resolved": true,
        "privileged": false,
        "host_pid": false,
        "host_network": false,
        "host_mounts": [share.to_string_lossy()],
        "runtime_socket_mounted": false,
    });
    container_events(&agent, &id, &share, port, &m, &container, &Value::Null);

    // The inputs of container-escape rules: a privileged container in the host's pid namespace
    // with the host's /run (where the runtimes' sockets live) mounted in.
    let escape = format!("{name}-priv");
    let m2 = marker("privileged");
    let id2 = podman.run_detached(
        &escape,
        &["--privileged", "--pid", "host", "-v", "/run:/hostrun:ro"],
        &tag,
        &[
            "/bin/sh",
            "-c",
            &format!("while true; do /bin/echo {m2}; sleep 0.2; done"),
        ],
    );
    let e = agent.wait_for("a described exec in the privileged container", WAIT, |e| {
        kind_is(e, "process_exec")
            && in_container(&id2)(e)
            && has_arg(e, &m2)
            && e["container"]["resolved"] == true
    });
    let c = &e["container"];
    assert_eq!(
        (&c["privileged"], &c["host_pid"], &c["host_network"]),
        (&json!(true), &json!(true), &json!(false)),
        "{e}"
    );
    assert_eq!(c["host_mounts"], json!(["/run"]), "{e}");
    assert_eq!(c["runtime_socket_mounted"], true, "{e}");
}

/// The loop a learned container runs: one round per `/share/goN` the test writes (its text is
/// the deviation: `none`, `exec` — a binary it never ran —, `write` — a file it never wrote,
/// from a subshell — or `connect` — a connection it never made, to a closed loopback port),
/// each writing its state file and then `N STATUS` to `/share/result`.
const LEARN_LOOP: &str = "i=0; while true; do \
     while [ ! -e /share/go$i ]; do sleep 0.1; done; d=$(cat /share/go$i); \
     echo served > /tmp/state.txt; r=0; \
     case $d in exec) /opt/denied/echo hi; r=$? ;; \
     write) (echo x > /tmp/unexpected.txt); r=$? ;; \
     connect) nc -w 1 127.0.0.1 9 < /dev/null; r=$? ;; esac; \
     echo \"$i $r\" > /share/result; i=$((i+1)); done";

/// `shrike learn --container` on a Podman container (`LEARN_LOOP`): learned over one round,
/// the policy names the container by the identity Podman reports (`container.id`) and the kernel
/// holds its rules for the container's cgroup; run again under that policy with the agent
/// asking Podman, a round raises nothing, each deviation exactly its rule (`would_deny` in
/// audit mode), and in enforce mode the exec and the write are stopped in the kernel (`killed`,
/// `denied` under BPF LSM) and the connect refused (`denied`).
#[test]
fn a_learned_container_policy_catches_and_stops_each_deviation() {
    let _agents = agents_shared();
    let test = "a_learned_container_policy_catches_and_stops_each_deviation";
    if !require_root(test) || !require_tool(test, "podman") || !require_tool(test, "runc") {
        return;
    }
    let dir = TempDir::new("learn-ctr");
    let tar = rootfs_tar(&dir);
    let mut podman = Podman::start(&dir);
    let tag = format!("localhost/shrike-learn-{}:1", std::process::id());
    podman.import(&tar, &tag);
    let name = format!("shrike-learn-{}", std::process::id());
    let share = dir.path("share");
    std::fs::create_dir_all(&share).unwrap();
    let id = podman.run_detached(
        &name,
        &["-v", &format!("{}:/share", share.display())],
        &tag,
        &["/bin/sh", "-c", LEARN_LOOP],
    );
    assert_eq!(id.len(), 64, "{id}");
    let mut next = 0;
    let mut round = |deviation: &str| -> i64 {
        let i = next;
        next += 1;
        std::fs::write(share.join(format!("go{i}")), deviation).unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let text = std::fs::read_to_string(share.join("result")).unwrap_or_default();
            if let Some(status) = text.trim().strip_prefix(&format!("{i} ")) {
                return status.parse().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "round {i} ({deviation}): {text:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    let file = dir.path("learned.yaml");
    let policy = learn_around(&["--container", &id], &file, || {
        assert_eq!(round("none"), 0);
    });
    assert!(policy.contains(&format!("container.id = {id}")), "{policy}");
    assert!(policy.contains("    - /tmp/state.txt  #"), "{policy}");
    for id in ["LEARN-EXEC", "LEARN-WRITE", "LEARN-CONNECT"] {
        assert!(
            policy.contains(&format!("# {id}: decided in the kernel")),
            "{id}: {policy}"
        );
    }

    let runtime = format!("podman={}", podman.socket.display());
    let start = |mode: &str| {
        std::fs::write(&file, policy.replace("mode: audit", mode)).unwrap();
        Agent::start(&[
            "--no-default-policy",
            "--no-shaping",
            "--container-runtime",
            &runtime,
            "--policy",
            file.to_str().unwrap(),
        ])
    };
    // The LEARN-* alerts of the container's processes since `before` of them.
    let alerts = |agent: &Agent| {
        std::thread::sleep(Duration::from_millis(1500));
        learn_alerts(
            &agent
                .events(|e| e["process"]["container"]["id"] == id.as_str() || in_container(&id)(e)),
        )
    };

    let agent = start("mode: audit");
    assert_eq!(round("none"), 0);
    let mut seen = alerts(&agent);
    assert_eq!(seen, [], "the learned rounds themselves");
    assert_eq!(round("exec"), 0, "audit mode stops nothing");
    let now = alerts(&agent);
    assert_eq!(now[seen.len()..], pair("LEARN-EXEC", "would_deny"));
    seen = now;
    assert_eq!(round("write"), 0);
    let now = alerts(&agent);
    assert_eq!(now[seen.len()..], pair("LEARN-WRITE", "would_deny"));
    seen = now;
    assert_ne!(round("connect"), 0, "nobody listens there");
    assert_eq!(
        alerts(&agent)[seen.len()..],
        pair("LEARN-CONNECT", "would_deny")
    );
    drop(agent);

    let agent = start("mode: enforce");
    assert_eq!(round("none"), 0, "the learned rounds still work");
    let mut seen = alerts(&agent);
    assert_eq!(seen, [], "the learned rounds themselves");
    let status = round("exec");
    let now = alerts(&agent);
    let outcome = if bpf_lsm_expected() {
        "denied"
    } else {
        "killed"
    };
    assert_ne!(status, 0, "the exec must have been stopped");
    assert_eq!(
        now[seen.len()..],
        pair("LEARN-EXEC", outcome),
        "status {status}"
    );
    seen = now;
    let status = round("write");
    assert_ne!(status, 0, "the write must have been stopped");
    let now = alerts(&agent);
    assert_eq!(
        now[seen.len()..],
        pair("LEARN-WRITE", outcome),
        "status {status}"
    );
    seen = now;
    // Refused by the cgroup connect hook (EPERM, `denied`), not only reported.
    assert_ne!(round("connect"), 0);
    assert_eq!(
        alerts(&agent)[seen.len()..],
        pair("LEARN-CONNECT", "denied")
    );
}

/// An image as a Docker archive (`ctr images import` reads it): the root file system as one
/// layer, an entrypoint, and its tag. Returns the archive and the image's config digest.
fn docker_archive(
    dir: &TempDir,
    layer: &Path,
    tag: &str,
    entrypoint: &[&str],
) -> (PathBuf, String) {
    let name = tag.replace(['/', ':'], "_");
    let staging = dir.path(&format!("{name}.d"));
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::copy(layer, staging.join("layer.tar")).unwrap();
    let sha = |p: &Path| {
        run(Command::new("sha256sum").arg(p))
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let diff_id = sha(&staging.join("layer.tar"));
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
    });
    std::fs::write(staging.join("config.json"), config.to_string()).unwrap();
    let config_digest = sha(&staging.join("config.json"));
    let manifest = json!([{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}]);
    std::fs::write(staging.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = dir.path(&format!("{name}.tar"));
    run(Command::new("tar")
        .arg("-C")
        .arg(&staging)
        .arg("-cf")
        .arg(&archive)
        .args(["manifest.json", "config.json", "layer.tar"]));
    (archive, format!("sha256:{config_digest}"))
}

/// containerd with its CRI plugin, its own config, root, state and socket under the test's
/// directory.
struct Containerd {
    socket: PathBuf,
    log: PathBuf,
    daemon: Child,
    pods: Vec<String>,
}

impl Containerd {
    fn start(dir: &TempDir, pause: &str) -> Containerd {
        let socket = dir.path("containerd.sock");
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{pause}\"\n\
             restrict_oom_score_adj = true\n  disable_apparmor = true\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n",
            root = dir.path("ctrd-root").display(),
            state = dir.path("ctrd-state").display(),
            sock = socket.display(),
        );
        let path = dir.path("containerd.toml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting containerd");
        let c = Containerd {
            socket,
            log: dir.path("containerd.log"),
            daemon,
            pods: Vec::new(),
        };
        wait_for_socket(&c.socket);
        c
    }

    fn import(&self, archive: &Path) {
        run(Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(archive));
    }

    /// A CRI call that must answer with a message.
    fn call(&self, method: &str, request: &Writer) -> Vec<u8> {
        cri::call(&self.socket, method, request, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("CRI {method}: {e}"))
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let errors: Vec<&str> = log.lines().filter(|l| l.contains("level=error")).collect();
                panic!(
                    "CRI {method} failed; containerd's errors:\n{}",
                    errors.join("\n")
                )
            })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for pod in &self.pods {
            let mut req = Writer::new();
            req.string(1, pod);
            let _ = cri::call(
                &self.socket,
                "StopPodSandbox",
                &req,
                Duration::from_secs(30),
            );
            let _ = cri::call(
                &self.socket,
                "RemovePodSandbox",
                &req,
                Duration::from_secs(30),
            );
        }
        // SAFETY: kill with a pid this test spawned and has not reaped.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
    }
}

fn first_string(answer: &[u8]) -> String {
    shrike::workload::pb::field(answer, 1)
        .map(|v| v.text())
        .unwrap_or_default()
}

/// A pod with one container, started through containerd's CRI, and what its events must say.
struct Pod {
    ctrd: Containerd,
    id: String,
    share: PathBuf,
    port: u16,
    marker: String,
    container: Value,
    k8s: Value,
}

/// Starts containerd, imports the images, and creates a pod sandbox and a container in it as
/// kubelet does (pod name, namespace, uid and labels; the container's kubelet labels; a
/// host-path mount; the pod on the host's network). `before_start` runs between creating the
/// container and starting it (e.g. starting the agent).
fn start_pod(dir: &TempDir, before_start: impl FnOnce(&Containerd)) -> Pod {
    let layer = rootfs_tar(dir);
    let pause = "localhost/shrike-pause:1";
    let tag = "localhost/shrike-app:1";
    let (pause_tar, _) = docker_archive(dir, &layer, pause, &["/bin/sleep", "100000"]);
    let (app_tar, app_id) = docker_archive(dir, &layer, tag, &["/bin/sh"]);
    let mut ctrd = Containerd::start(dir, pause);
    ctrd.import(&pause_tar);
    ctrd.import(&app_tar);

    let m = marker("cri");
    let pid = std::process::id();
    let (pod, namespace, uid) = (
        format!("web-{pid}"),
        "shrike-test",
        format!("7a0c9a4e-0000-4000-8000-{pid:012}"),
    );
    let pod_labels = BTreeMap::from([
        ("app".to_string(), "web".to_string()),
        ("tier".to_string(), "front".to_string()),
    ]);
    // PodSandboxConfig { metadata 1 { name 1, uid 2, namespace 3 }, log_directory 3 (no
    // hostname: a host-network pod shares the host's UTS namespace), labels 6, linux 8 { cgroup_parent 1, security_context 2 {
    // namespace_options 1 { network 1 = NODE } } } }
    let mut meta = Writer::new();
    meta.string(1, &pod).string(2, &uid).string(3, namespace);
    let mut ns = Writer::new();
    ns.uint(1, 2);
    let mut sec = Writer::new();
    sec.message(1, &ns);
    let mut linux = Writer::new();
    linux
        .string(1, &format!("/kubepods/besteffort/pod{uid}"))
        .message(2, &sec);
    let logs = dir.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut pod_config = Writer::new();
    pod_config
        .message(1, &meta)
        .string(3, &logs.to_string_lossy())
        .map(6, &pod_labels)
        .message(8, &linux);
    let mut req = Writer::new();
    req.message(1, &pod_config);
    let sandbox = first_string(&ctrd.call("RunPodSandbox", &req));
    assert!(!sandbox.is_empty());
    ctrd.pods.push(sandbox.clone());

    // ContainerConfig { metadata 1 { name 1 }, image 2 { image 1 }, command 3, args 4,
    // mounts 7 { container_path 1, host_path 2 }, labels 9, log_path 11 }
    let port = 20000 + (pid % 20000) as u16 + 1;
    let share = dir.path("share");
    let kubelet_labels = BTreeMap::from([
        (
            "io.kubernetes.container.name".to_string(),
            "app".to_string(),
        ),
        ("io.kubernetes.pod.name".to_string(), pod.clone()),
        (
            "io.kubernetes.pod.namespace".to_string(),
            namespace.to_string(),
        ),
        ("io.kubernetes.pod.uid".to_string(), uid.clone()),
    ]);
    let mut cmeta = Writer::new();
    cmeta.string(1, "app");
    let mut image = Writer::new();
    image.string(1, tag);
    let mut mount = Writer::new();
    mount
        .string(1, "/share")
        .string(2, &share.to_string_lossy());
    let mut config = Writer::new();
    config
        .message(1, &cmeta)
        .message(2, &image)
        .string(3, "/bin/sh")
        .string(4, "-c")
        .string(4, &script(port, &m))
        .message(7, &mount)
        .map(9, &kubelet_labels)
        .string(11, "app.log");
    let mut req = Writer::new();
    req.string(1, &sandbox)
        .message(2, &config)
        .message(3, &pod_config);
    let id = first_string(&ctrd.call("CreateContainer", &req));
    assert_eq!(id.len(), 64, "{id}");
    before_start(&ctrd);
    let mut req = Writer::new();
    req.string(1, &id);
    ctrd.call("StartContainer", &req);

    let container = json!({
        "id": id,
        "name": "app",
        "image": tag,
        "image_id": app_id,
        "runtime": "containerd",
        "labels": kubelet_labels,
        "resolved": true,
        "privileged": false,
        "host_pid": false,
        "host_network": true,
        "host_mounts": [share.to_string_lossy()],
        "runtime_socket_mounted": false,
    });
    let k8s = json!({
        "namespace": namespace,
        "pod": pod,
        "uid": uid,
        "container": "app",
        "labels": pod_labels,
    });
    Pod {
        ctrd,
        id,
        share,
        port,
        marker: m,
        container,
        k8s,
    }
}

fn containerd_tools(test: &str) -> bool {
    require_root(test)
        && require_tool(test, "containerd")
        && require_tool(test, "ctr")
        && require_tool(test, "runc")
}

/// The CRI client alone against containerd (no agent): the identity it reads for a pod's
/// container is exactly what the test created through the CRI.
#[test]
fn cri_lookup_reads_container_and_pod_from_containerd() {
    if !containerd_tools("cri_lookup_reads_container_and_pod_from_containerd") {
        return;
    }
    let dir = TempDir::new("cri");
    let pod = start_pod(&dir, |_| {});
    let runtimes = vec![RuntimeSocket {
        runtime: "containerd".into(),
        socket: pod.ctrd.socket.clone(),
    }];
    let request = Request {
        id: pod.id.clone(),
        runtime_hint: "containerd".into(),
        cgroup_dir: None,
    };
    let found = resolver::ask(&runtimes, &request).expect("containerd knows the container");
    assert_eq!(
        serde_json::to_value(&found.container).unwrap(),
        pod.container
    );
    assert_eq!(serde_json::to_value(&found.k8s).unwrap(), pod.k8s);
    let unknown = Request {
        id: "0".repeat(64),
        ..request
    };
    assert!(resolver::ask(&runtimes, &unknown).is_none());
}

/// A pod sandbox and a container in it, created through containerd's CRI as kubelet does:
/// exec, file and network events from inside carry `container` and `k8s` exactly as the CRI
/// reports them.
#[test]
fn containerd_pod_events_carry_container_and_pod_identity() {
    let _agents = agents_shared();
    if !containerd_tools("containerd_pod_events_carry_container_and_pod_identity") {
        return;
    }
    let dir = TempDir::new("containerd");
    let api = dir.path("api.sock");
    let mut agent = None;
    let pod = start_pod(&dir, |ctrd| {
        agent = Some(Agent::start(&[
            "--container-runtime",
            &format!("containerd={}", ctrd.socket.display()),
            "--api-socket",
            api.to_str().unwrap(),
        ]));
    });
    let agent = agent.expect("agent started");
    host_exec_has_no_identity(&agent);
    container_events(
        &agent,
        &pod.id,
        &pod.share,
        pod.port,
        &pod.marker,
        &pod.container,
        &pod.k8s,
    );

    // The local API follows a workload by pod: `namespace=` and a `pod=` glob give exactly the
    // pod's events, and another pod name gives none of them.
    let recent = |filter: &str| -> Vec<Value> {
        let out = Command::new(common::agent_binary())
            .args([
                "events",
                "--limit",
                "100000",
                "--filter",
                filter,
                "--api-socket",
            ])
            .arg(&api)
            .output()
            .unwrap();
        assert!(out.status.success(), "events --filter {filter}: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (namespace, pod_name) = (
        pod.k8s["namespace"].as_str().unwrap(),
        pod.k8s["pod"].as_str().unwrap(),
    );
    let prefix = &pod_name[..pod_name.len() - 2];
    let of_pod = recent(&format!("namespace={namespace},pod={prefix}*"));
    assert!(
        of_pod.iter().any(|e| kind_is(e, "process_exec")),
        "the pod's events through the API: {of_pod:?}"
    );
    for e in &of_pod {
        assert_eq!(&e["k8s"], &pod.k8s, "{e}");
    }
    let other = recent(&format!("namespace={namespace},pod=not-{pod_name}"));
    assert!(other.is_empty(), "{other:?}");
}

/// Creates a pod sandbox through the CRI as kubelet does (name, namespace, uid, labels; the pod
/// on the host's network) and returns its id and config.
fn run_sandbox(
    ctrd: &mut Containerd,
    dir: &TempDir,
    name: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> (String, Writer, String) {
    let uid = format!(
        "7a0c9a4e-0000-4000-8000-{:012x}",
        u64::from(std::process::id()) << 16
            | u64::from(name.len() as u16) << 8
            | u64::from(name.as_bytes()[0])
    );
    let mut meta = Writer::new();
    meta.string(1, name).string(2, &uid).string(3, namespace);
    let mut ns = Writer::new();
    ns.uint(1, 2);
    let mut sec = Writer::new();
    sec.message(1, &ns);
    let mut linux = Writer::new();
    linux
        .string(1, &format!("/kubepods/besteffort/pod{uid}"))
        .message(2, &sec);
    let logs = dir.path(&format!("logs-{name}"));
    std::fs::create_dir_all(&logs).unwrap();
    let mut pod_config = Writer::new();
    pod_config
        .message(1, &meta)
        .string(3, &logs.to_string_lossy())
        .map(6, labels)
        .message(8, &linux);
    let mut req = Writer::new();
    req.message(1, &pod_config);
    let sandbox = first_string(&ctrd.call("RunPodSandbox", &req));
    assert!(!sandbox.is_empty());
    ctrd.pods.push(sandbox.clone());
    (sandbox, pod_config, uid)
}

/// Creates and starts a container running `argv` in `sandbox`; returns its id.
fn start_container(
    ctrd: &Containerd,
    sandbox: &str,
    pod_config: &Writer,
    image: &str,
    argv: &[&str],
) -> String {
    let mut cmeta = Writer::new();
    cmeta.string(1, "app");
    let mut img = Writer::new();
    img.string(1, image);
    let mut config = Writer::new();
    config
        .message(1, &cmeta)
        .message(2, &img)
        .string(3, argv[0]);
    for a in &argv[1..] {
        config.string(4, a);
    }
    config.string(11, "app.log");
    let mut req = Writer::new();
    req.string(1, sandbox)
        .message(2, &config)
        .message(3, pod_config);
    let id = first_string(&ctrd.call("CreateContainer", &req));
    assert_eq!(id.len(), 64, "{id}");
    let mut req = Writer::new();
    req.string(1, &id);
    // Under BPF LSM a refused entrypoint makes runc's exec fail, and with it StartContainer:
    // the test judges by the events, not by this answer.
    let _ = cri::call(
        &ctrd.socket,
        "StartContainer",
        &req,
        Duration::from_secs(60),
    );
    id
}

/// Issue 16's item 3: a deny rule scoped by `k8s.namespace` and a pod label, loaded before
/// either pod exists, stops the exec of `/opt/denied/echo` in the pod it names — as that
/// container's very first exec (its entrypoint), in the kernel — and not in a second pod (other
/// namespace, other label) running the same binary. The pods and containers are created
/// through containerd's CRI after the agent is running, so the rule's cgroup set in the kernel
/// must have gained the first container's cgroup between its creation and its start.
#[test]
fn a_deny_rule_scoped_to_one_pod_stops_the_exec_there_and_not_in_another_pod() {
    if !containerd_tools(
        "a_deny_rule_scoped_to_one_pod_stops_the_exec_there_and_not_in_another_pod",
    ) {
        return;
    }
    scoped_deny(None);
}

/// The same with a runtime that answers each of the agent's calls 0.5 s late (a loaded node): each container's
/// first exec — the denied binary is the entrypoint — runs before the runtime has described
/// the container. The kernel holds it until the agent knows the pod: killed in pod A, resumed
/// (and exiting 0) in pod B. Without the hold, pod A's echo would run and no alert would say
/// it was stopped.
#[test]
fn a_pods_first_exec_is_held_until_the_slow_runtime_describes_the_pod() {
    if !containerd_tools("a_pods_first_exec_is_held_until_the_slow_runtime_describes_the_pod") {
        return;
    }
    scoped_deny(Some(Duration::from_millis(500)));
}

/// A Unix-socket forwarder to `upstream` that waits `delay` before it connects each client:
/// every answer of the runtime behind it comes that much later. Runs until the test ends.
fn slow_socket(dir: &TempDir, upstream: &Path, delay: Duration) -> PathBuf {
    use std::os::unix::net::{UnixListener, UnixStream};
    let path = dir.path("slow-runtime.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let upstream = upstream.to_path_buf();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let Ok(server) = UnixStream::connect(&upstream) else {
                    return;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let pump = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let _ = std::io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(std::net::Shutdown::Write);
                let _ = pump.join();
            });
        }
    });
    path
}

/// What the scoped-deny tests share: containerd with a pause and an app image, and a policy
/// whose deny rule on `/opt/denied/echo` is scoped to namespace `prod`, label `app=payments`.
struct Scoped {
    dir: TempDir,
    ctrd: Containerd,
    policy: PathBuf,
}

/// The app image's tag.
const APP: &str = "localhost/shrike-app:1";

fn scoped_setup() -> Scoped {
    let dir = TempDir::new("scope");
    let layer = rootfs_tar(&dir);
    let pause = "localhost/shrike-pause:1";
    let (pause_tar, _) = docker_archive(&dir, &layer, pause, &["/bin/sleep", "100000"]);
    let (app_tar, _) = docker_archive(&dir, &layer, APP, &["/bin/sh"]);
    let ctrd = Containerd::start(&dir, pause);
    ctrd.import(&pause_tar);
    ctrd.import(&app_tar);
    let policy = dir.path("scoped.yaml");
    std::fs::write(
        &policy,
        "- rule: No denied echo in prod payments\n  id: WL-SCOPE\n  severity: high\n  mitre: [T1059]\n  \
         condition: kind = process_exec and process.binary = /opt/denied/echo and k8s.namespace = prod and k8s.labels.app = payments\n  \
         action: deny\n  mode: enforce\n",
    )
    .unwrap();
    Scoped { dir, ctrd, policy }
}

fn app_labels(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), app.to_string())])
}

/// A deny rule scoped to pod A (namespace and label) on the binary both pods run as their
/// entrypoint; the agent asks containerd directly, or (`slow`) through a socket that delays
/// each answer that long.
fn scoped_deny(slow: Option<Duration>) {
    let _agents = agents_shared();
    let Scoped {
        dir,
        mut ctrd,
        policy,
    } = scoped_setup();
    let tag = APP;
    let runtime = match slow {
        Some(delay) => slow_socket(&dir, &ctrd.socket, delay),
        None => ctrd.socket.clone(),
    };
    let agent = Agent::start_process_only(&[
        "--policy",
        &policy.to_string_lossy(),
        "--container-runtime",
        &format!("containerd={}", runtime.display()),
    ]);

    let pid = std::process::id();
    let (a_name, b_name) = (format!("pay-{pid}"), format!("web-{pid}"));
    let (a_box, a_config, _) =
        run_sandbox(&mut ctrd, &dir, &a_name, "prod", &app_labels("payments"));
    let (b_box, b_config, _) = run_sandbox(&mut ctrd, &dir, &b_name, "dev", &app_labels("web"));
    let (ma, mb) = (marker("scoped-a"), marker("scoped-b"));
    let a = start_container(&ctrd, &a_box, &a_config, tag, &["/opt/denied/echo", &ma]);
    let b = start_container(&ctrd, &b_box, &b_config, tag, &["/opt/denied/echo", &mb]);

    // Killed (no BPF LSM): the exec event of the echo; refused (BPF LSM): the record of the
    // refused exec, by runc's init in the container's cgroup.
    let stopped = agent.wait_for("the denied exec in pod A", WAIT, |e| {
        in_container(&a)(e)
            && e["alerts"]
                .as_array()
                .is_some_and(|al| al.iter().any(|x| x["rule_id"] == "WL-SCOPE"))
    });
    let alert = stopped["alerts"]
        .as_array()
        .and_then(|al| al.iter().find(|x| x["rule_id"] == "WL-SCOPE"))
        .cloned()
        .unwrap_or_default();
    assert!(
        alert["outcome"] == "killed" || alert["outcome"] == "denied",
        "the kernel must have stopped the container's first exec, not only reported it: {stopped}\n{}",
        agent.stderr()
    );
    assert_eq!(stopped["k8s"]["namespace"], "prod", "{stopped}");
    if alert["outcome"] == "killed" {
        assert_eq!(
            stopped["process"]["binary"], "/opt/denied/echo",
            "{stopped}"
        );
        let exit = agent.wait_for("pod A's echo killed", WAIT, |e| {
            kind_is(e, "process_exit") && e["process"]["pid"] == stopped["process"]["pid"]
        });
        assert_eq!(exit["exit"]["signal"], libc::SIGKILL, "{exit}");
    }

    let ran = agent.wait_for("the same exec in pod B", WAIT, |e| {
        kind_is(e, "process_exec") && in_container(&b)(e) && has_arg(e, &mb)
    });
    let exit = agent.wait_for("pod B's echo exits", WAIT, |e| {
        kind_is(e, "process_exit") && e["process"]["pid"] == ran["process"]["pid"]
    });
    assert_eq!(exit["exit"]["code"], 0, "{exit}");
    assert_eq!(exit["exit"]["signal"], Value::Null, "{exit}");
    assert!(
        agent
            .events(|e| in_container(&b)(e) && e["alerts"].as_array().is_some_and(|a| !a.is_empty()))
            .is_empty(),
        "nothing in pod B matches the rule"
    );
    assert!(
        agent.stderr().contains("exec rules enforced in the kernel"),
        "{}",
        agent.stderr()
    );
    if slow.is_some() {
        // Held, then killed by the agent once the pod was known (BPF LSM had nothing to refuse
        // yet): never `denied`.
        assert_eq!(alert["outcome"], "killed", "{stopped}");
    }
}

/// An agent that dies while it holds a container's first exec (SIGKILL, its programs pinned by
/// `--keep-enforcing`, so they stay attached): the held process stays stopped, since nobody is
/// left to decide it; the kernel stops holding new execs once the dead agent's lease runs out
/// (another pod's entrypoint, which the rule would hold, runs with the dead agent's programs
/// still attached); and the next agent to start resumes the process left stopped.
#[test]
fn execs_held_by_an_agent_that_died_are_not_left_stopped() {
    if !containerd_tools("execs_held_by_an_agent_that_died_are_not_left_stopped") {
        return;
    }
    let _alone = AGENTS.write().unwrap_or_else(|e| e.into_inner());
    let _pins = PinGuard;
    let Scoped {
        dir,
        mut ctrd,
        policy,
    } = scoped_setup();
    // A runtime that answers too late for anything: every container's first exec is held.
    let silent = slow_socket(&dir, &ctrd.socket, Duration::from_secs(3600));
    let policy = policy.to_string_lossy().into_owned();
    let agent = Agent::start_process_only(&[
        "--keep-enforcing",
        // Says when it has taken the held exec in (the exec's event waits for the decision).
        "--log-level",
        "info,shrike::agent::holds=debug",
        "--policy",
        &policy,
        "--container-runtime",
        &format!("containerd={}", silent.display()),
    ]);
    let pid = std::process::id();
    let (a_name, b_name) = (format!("held-{pid}"), format!("after-{pid}"));
    let (a_box, a_config, _) =
        run_sandbox(&mut ctrd, &dir, &a_name, "prod", &app_labels("payments"));
    let ma = marker("orphan");
    start_container(&ctrd, &a_box, &a_config, APP, &["/opt/denied/echo", &ma]);
    // The agent resumes what it holds after 10 s: it dies well before.
    let held = wait_for_process(&ma, Duration::from_secs(8))
        .unwrap_or_else(|| panic!("pod A's echo was not held:\n{}", agent.stderr()));
    let deadline = Instant::now() + Duration::from_secs(2);
    while process_state(held) != Some('T') {
        assert!(Instant::now() < deadline, "pod A's echo runs: not held");
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !agent
        .stderr()
        .contains("exec held until its container is described")
    {
        assert!(
            Instant::now() < deadline,
            "the agent never took the held exec in:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill with the agent's pid and a valid signal.
    unsafe { libc::kill(agent.pid() as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        process_state(held),
        Some('T'),
        "nobody resumes it while no agent runs"
    );

    // The dead agent's lease ran out (3 s): its programs, still attached, hold nothing new.
    let (b_box, b_config, _) = run_sandbox(&mut ctrd, &dir, &b_name, "dev", &app_labels("web"));
    let mb = marker("after");
    start_container(&ctrd, &b_box, &b_config, APP, &["/opt/denied/echo", &mb]);
    let b_log = dir.path(&format!("logs-{b_name}")).join("app.log");
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(&b_log).is_ok_and(|l| l.contains(&mb)) {
        assert!(
            Instant::now() < deadline,
            "pod B's echo never ran: held by the dead agent's programs (state {:?})",
            wait_for_process(&mb, Duration::ZERO).and_then(process_state)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The next agent resumes the exec the dead one left stopped.
    let next = Agent::start_process_only(&["--policy", &policy]);
    let a_log = dir.path(&format!("logs-{a_name}")).join("app.log");
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(&a_log).is_ok_and(|l| l.contains(&ma)) {
        assert!(
            Instant::now() < deadline,
            "pod A's echo was never resumed (state {:?}); the agent that held it:\n{}\nthe next one:\n{}",
            process_state(held),
            agent.stderr(),
            next.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        next.stderr()
            .contains("resumed execs that an agent which died was holding"),
        "{}",
        next.stderr()
    );
}

/// The pid of a process whose command line holds `needle`, waiting up to `limit` for one.
fn wait_for_process(needle: &str, limit: Duration) -> Option<u32> {
    let deadline = Instant::now() + limit;
    loop {
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(needle) {
                return Some(pid);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process's state letter (`/proc/PID/stat`), if it is alive.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}
