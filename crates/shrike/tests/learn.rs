//! `shrike learn` end to end on a real workload: a Python HTTP server on loopback with a
//! client it starts, in a cgroup of its own. Learned once; then run again under the learned
//! policy — in audit mode the same workload raises no `would_deny` and each deviation (an
//! unexpected exec, connect, file write) exactly its own; in enforce mode the exec and the write
//! are killed (SIGKILL here, EPERM under BPF LSM), the connect refused with EPERM. The same for
//! a binary scope (`learn --binary`): a copy of the interpreter and everything below it,
//! wherever it runs (a connect below it too, by a child).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::learn::{learn_alerts, learn_around, pair};
use common::*;
use serde_json::Value;

const WORKLOAD: &str = r#"
import http.server, json, os, socket, subprocess, sys, threading
port, d, deviation = int(sys.argv[1]), sys.argv[2], sys.argv[3]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", port), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
client = "import sys, urllib.request\nfor _ in range(3): urllib.request.urlopen('http://127.0.0.1:%s/' % sys.argv[1], timeout=5).read()"
result = {"client": subprocess.run(["/usr/bin/python3", "-c", client, str(port)]).returncode}
with open(os.path.join(d, "state.txt"), "w") as f:
    f.write("served\n")
if deviation == "exec":
    try:
        result["exec"] = subprocess.run(["/usr/bin/id"], stdout=subprocess.PIPE).returncode
    except OSError as e:
        result["exec"] = "errno %d" % e.errno
elif deviation == "connect":
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port + 1))
        result["connect"] = 0
    except OSError as e:
        result["connect"] = e.errno
elif deviation == "connect_child":
    # A connect below the service, by a child it starts.
    connector = "import socket, sys\ns = socket.socket()\ntry:\n    s.connect(('127.0.0.1', int(sys.argv[1])))\nexcept OSError as e:\n    sys.exit(e.errno)"
    result["connect_child"] = subprocess.run(["/usr/bin/python3", "-c", connector, str(port + 1)]).returncode
elif deviation == "write":
    # In a child, as the exec: without BPF LSM the kernel kills the writer.
    writer = "import sys\ntry:\n    open(sys.argv[1], 'w').write('x')\nexcept OSError as e:\n    sys.exit(e.errno)"
    result["write"] = subprocess.run(["/usr/bin/python3", "-c", writer, os.path.join(d, "unexpected.txt")]).returncode
server.shutdown()
print(json.dumps(result), flush=True)
"#;

/// A cgroup v2 directory this test creates and removes.
struct Cgroup {
    dir: PathBuf,
    id: u64,
}

impl Cgroup {
    fn new(name: &str) -> Cgroup {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let root = mounts
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
            })
            .expect("a cgroup2 mount");
        let dir = root.join(marker(name));
        std::fs::create_dir(&dir).unwrap();
        let id = std::fs::metadata(&dir).unwrap().ino();
        Cgroup { dir, id }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Runs the workload inside the cgroup (the shell moves itself in, then execs Python) and
/// returns its JSON result and its pid.
fn workload(cg: &Cgroup, dir: &Path, port: u16, deviation: &str) -> (Value, u32) {
    let script = dir.join("workload.py");
    let cmd = format!(
        "echo $$ > {}/cgroup.procs && exec {PYTHON} {} {port} {} {deviation}",
        cg.dir.display(),
        script.display(),
        dir.display()
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", &cmd]);
    run_workload(sh, deviation)
}

/// Runs `cmd` (the workload, or what starts it) and returns its JSON result and its pid.
fn run_workload(mut cmd: Command, deviation: &str) -> (Value, u32) {
    let child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "workload {deviation}: {out:?}");
    (serde_json::from_str(text.trim()).unwrap(), pid)
}

/// A loopback port nobody listens on now (nor on the next one).
fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 65000 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// `shrike learn --cgroup` around one run of the workload; the policy it wrote.
fn learn(cg: &Cgroup, dir: &Path, port: u16) -> String {
    let scope = ["--cgroup", cg.dir.to_str().unwrap()];
    learn_around(&scope, &dir.join("learned.yaml"), || {
        let (result, _) = workload(cg, dir, port, "none");
        assert_eq!(result["client"], 0, "{result}");
    })
}

/// The `LEARN-*` alerts raised by the cgroup's processes so far: (rule id, outcome).
fn learned_alerts(agent: &Agent, cg: &Cgroup) -> Vec<(String, String)> {
    learn_alerts(&agent.events(|e| e["process"]["cgroup_id"] == cg.id))
}

/// Runs one workload under `agent` and returns its result and the `LEARN-*` alerts it
/// raised (after its exit is seen and the ring buffer had time to deliver the rest).
fn run_under(
    agent: &Agent,
    cg: &Cgroup,
    dir: &Path,
    port: u16,
    deviation: &str,
) -> (Value, Vec<(String, String)>) {
    let before = learned_alerts(agent, cg).len();
    let (result, pid) = workload(cg, dir, port, deviation);
    agent.wait_for(
        &format!("the exit of workload {deviation}"),
        Duration::from_secs(30),
        |e| kind_is(e, "process_exit") && e["process"]["pid"] == pid,
    );
    std::thread::sleep(Duration::from_millis(1000));
    (result, learned_alerts(agent, cg)[before..].to_vec())
}

/// The issue's check: learn a real workload, then run it again under the learned policy in
/// audit mode (no would_deny; each deviation exactly its own) and in enforce mode (the
/// deviations the kernel decides are stopped).
#[test]
fn a_learned_policy_passes_its_workload_and_catches_each_deviation() {
    if !require_root("a_learned_policy_passes_its_workload_and_catches_each_deviation") {
        return;
    }
    let dir = std::env::temp_dir().join(marker("learn"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("workload.py"), WORKLOAD).unwrap();
    let cg = Cgroup::new("learn");
    let port = free_port();

    let policy = learn(&cg, &dir, port);
    let file = dir.join("learned.yaml");
    assert!(policy.contains("mode: audit"), "{policy}");
    assert!(
        policy.contains(&format!("process.cgroup_id = {}", cg.id)),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("    - {}  #", python_binary())),
        "{policy}"
    );
    assert!(policy.contains(&format!("    - {port}  #")), "{policy}");
    assert!(
        policy.contains(&format!("    - {}  #", dir.join("state.txt").display())),
        "{policy}"
    );
    let validate = Command::new(common::agent_binary())
        .args(["policy", "validate", "--no-default-policy"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(validate.status.success(), "{validate:?}");
    let explain = Command::new(common::agent_binary())
        .args(["policy", "explain", "--no-default-policy"])
        .arg(&file)
        .output()
        .unwrap();
    let explain = String::from_utf8_lossy(&explain.stdout).to_string();
    // The kernel holds most rules, the file allow-lists (path exclusions) among them.
    let rules = policy.matches("\n- rule:").count();
    let in_kernel = policy.matches(": decided in the kernel").count();
    assert!(
        in_kernel * 2 > rules,
        "{in_kernel} of {rules} in the kernel:\n{explain}"
    );
    assert!(explain.contains("LEARN-EXEC #0"), "{explain}");
    for id in ["LEARN-WRITE", "LEARN-CHANGE"] {
        assert!(
            policy.contains(&format!("# {id}: decided in the kernel")),
            "{id}: {policy}"
        );
    }

    // Audit mode.
    let agent = Agent::start(&[
        "--no-default-policy",
        "--no-shaping",
        "--policy",
        file.to_str().unwrap(),
    ]);
    let (result, alerts) = run_under(&agent, &cg, &dir, port, "none");
    assert_eq!(result["client"], 0);
    assert_eq!(alerts, [], "the learned workload itself");
    let (result, alerts) = run_under(&agent, &cg, &dir, port, "exec");
    assert_eq!(result["exec"], 0, "audit mode stops nothing");
    assert_eq!(alerts, pair("LEARN-EXEC", "would_deny"));
    let (result, alerts) = run_under(&agent, &cg, &dir, port, "connect");
    assert_eq!(result["connect"], libc::ECONNREFUSED, "{result}");
    assert_eq!(alerts, pair("LEARN-PORT", "would_deny"));
    let (result, alerts) = run_under(&agent, &cg, &dir, port, "write");
    assert_eq!(result["write"], 0);
    assert_eq!(alerts, pair("LEARN-WRITE", "would_deny"));
    drop(agent);

    // Enforce mode: the same file with the mode switched, as a reviewer would.
    std::fs::write(&file, policy.replace("mode: audit", "mode: enforce")).unwrap();
    let agent = Agent::start(&[
        "--no-default-policy",
        "--no-shaping",
        "--policy",
        file.to_str().unwrap(),
    ]);
    let lsm = bpf_lsm_expected();
    let (result, alerts) = run_under(&agent, &cg, &dir, port, "none");
    assert_eq!(result["client"], 0, "the learned workload still works");
    assert_eq!(alerts, [], "the learned workload itself");
    let (result, alerts) = run_under(&agent, &cg, &dir, port, "exec");
    if lsm {
        assert_eq!(result["exec"], format!("errno {}", libc::EPERM), "{result}");
        assert_eq!(alerts, pair("LEARN-EXEC", "denied"));
    } else {
        assert_eq!(result["exec"], -libc::SIGKILL, "{result}");
        assert_eq!(alerts, pair("LEARN-EXEC", "killed"));
    }
    let (result, alerts) = run_under(&agent, &cg, &dir, port, "connect");
    assert_eq!(result["connect"], libc::EPERM, "{result}");
    assert_eq!(alerts, pair("LEARN-PORT", "denied"));
    let (result, alerts) = run_under(&agent, &cg, &dir, port, "write");
    if lsm {
        assert_eq!(result["write"], libc::EPERM, "{result}");
        assert_eq!(alerts, pair("LEARN-WRITE", "denied"));
    } else {
        assert_eq!(result["write"], -libc::SIGKILL, "{result}");
        assert_eq!(alerts, pair("LEARN-WRITE", "killed"));
    }
    drop(agent);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `shrike learn --binary`: the workload is whatever a copy of the interpreter runs, and every
/// process below it, wherever it runs (no cgroup). Learned once; in audit mode the same workload
/// raises nothing and each deviation exactly its own rule — the one for the binary itself or for
/// its descendants — while the same deviations by the stock interpreter raise nothing; in
/// enforce mode the kernel stops the exec below the binary and the binary's own connect.
#[test]
fn a_binary_scope_is_learned_and_enforced_on_that_binary_and_its_descendants() {
    if !require_root("a_binary_scope_is_learned_and_enforced_on_that_binary_and_its_descendants") {
        return;
    }
    let dir = std::env::temp_dir().join(marker("learn-binary"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("workload.py"), WORKLOAD).unwrap();
    let service = dir.join("svc-python");
    std::fs::copy(python_binary(), &service).unwrap();
    let service = service.to_str().unwrap().to_string();
    let port = free_port();
    let run = |interpreter: &str, deviation: &str| -> (Value, u32) {
        let mut cmd = Command::new(interpreter);
        cmd.arg(dir.join("workload.py")).args([
            &port.to_string(),
            dir.to_str().unwrap(),
            deviation,
        ]);
        run_workload(cmd, deviation)
    };

    // Learn around one run of the workload under the copy.
    let file = dir.join("learned.yaml");
    let policy = learn_around(&["--binary", &service], &file, || {
        let (result, _) = run(&service, "none");
        assert_eq!(result["client"], 0, "{result}");
    });
    assert!(
        policy.contains(&format!("process.binary = {service}"))
            && policy.contains(&format!("ancestors.binary = {service}")),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("    - {}  #", python_binary())),
        "the client the service runs is a learned executable: {policy}"
    );

    // The LEARN-* alerts of the runs of `interpreter` (by pid: the run and what it started).
    let alerts_of = |agent: &Agent, pid: u32| -> Vec<(String, String)> {
        agent.wait_for(
            &format!("the exit of workload pid {pid}"),
            Duration::from_secs(30),
            |e| kind_is(e, "process_exit") && e["process"]["pid"] == pid,
        );
        std::thread::sleep(Duration::from_millis(1000));
        learn_alerts(&agent.events(|e| {
            e["process"]["pid"] == pid
                || e["ancestors"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|p| p["pid"] == pid))
        }))
    };
    let start = |mode: &str| {
        std::fs::write(&file, policy.replace("mode: audit", mode)).unwrap();
        Agent::start(&[
            "--no-default-policy",
            "--no-shaping",
            "--policy",
            file.to_str().unwrap(),
        ])
    };

    // Audit mode.
    let agent = start("mode: audit");
    let (result, pid) = run(&service, "none");
    assert_eq!(result["client"], 0);
    assert_eq!(alerts_of(&agent, pid), [], "the learned workload itself");
    let (result, pid) = run(&service, "exec");
    assert_eq!(result["exec"], 0, "audit mode stops nothing");
    assert_eq!(alerts_of(&agent, pid), pair("LEARN-EXEC", "would_deny"));
    let (result, pid) = run(&service, "connect");
    assert_eq!(result["connect"], libc::ECONNREFUSED, "{result}");
    assert_eq!(
        alerts_of(&agent, pid),
        pair("LEARN-PORT-SELF", "would_deny")
    );
    let (result, pid) = run(&service, "connect_child");
    assert_eq!(result["connect_child"], libc::ECONNREFUSED, "{result}");
    assert_eq!(
        alerts_of(&agent, pid),
        pair("LEARN-PORT-DESC", "would_deny")
    );
    let (result, pid) = run(&service, "write");
    assert_eq!(result["write"], 0);
    assert_eq!(
        alerts_of(&agent, pid),
        pair("LEARN-WRITE-DESC", "would_deny")
    );
    // Outside the scope the same deviations are nobody's business.
    for deviation in ["exec", "connect", "connect_child", "write"] {
        let (_, pid) = run(PYTHON, deviation);
        assert_eq!(
            alerts_of(&agent, pid),
            [],
            "{deviation} by the stock interpreter"
        );
    }
    drop(agent);

    // Enforce mode: the kernel decides the exec, the connect and the write below the binary and
    // the binary's own connect.
    let agent = start("mode: enforce");
    let (result, pid) = run(&service, "none");
    assert_eq!(result["client"], 0, "the learned workload still works");
    assert_eq!(alerts_of(&agent, pid), [], "the learned workload itself");
    let (result, pid) = run(&service, "exec");
    if bpf_lsm_expected() {
        assert_eq!(result["exec"], format!("errno {}", libc::EPERM), "{result}");
        assert_eq!(alerts_of(&agent, pid), pair("LEARN-EXEC", "denied"));
    } else {
        assert_eq!(result["exec"], -libc::SIGKILL, "{result}");
        assert_eq!(alerts_of(&agent, pid), pair("LEARN-EXEC", "killed"));
    }
    let (result, pid) = run(&service, "connect");
    assert_eq!(result["connect"], libc::EPERM, "{result}");
    assert_eq!(alerts_of(&agent, pid), pair("LEARN-PORT-SELF", "denied"));
    let (result, pid) = run(&service, "connect_child");
    assert_eq!(result["connect_child"], libc::EPERM, "{result}");
    assert_eq!(alerts_of(&agent, pid), pair("LEARN-PORT-DESC", "denied"));
    let (result, pid) = run(&service, "write");
    if bpf_lsm_expected() {
        assert_eq!(result["write"], libc::EPERM, "{result}");
        assert_eq!(alerts_of(&agent, pid), pair("LEARN-WRITE-DESC", "denied"));
    } else {
        assert_eq!(result["write"], -libc::SIGKILL, "{result}");
        assert_eq!(alerts_of(&agent, pid), pair("LEARN-WRITE-DESC", "killed"));
    }
    for deviation in ["exec", "write"] {
        let (result, _) = run(PYTHON, deviation);
        assert_eq!(
            result[deviation], 0,
            "the stock interpreter is not in the scope"
        );
    }
    drop(agent);
    std::fs::remove_dir_all(&dir).unwrap();
}
