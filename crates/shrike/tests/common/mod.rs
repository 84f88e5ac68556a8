//! Test harness: runs the real `shrike` binary as root, collects its JSON events, and finds
//! the ones a test caused.
//!
//! Every test builds real activity with a marker of its own (a unique argument or path) and
//! waits for the events that carry it, so tests can share a machine with other activity. Under
//! `CI=true` a test that cannot run its BPF programs (not root, load refused) fails; elsewhere
//! it says why and skips.

#![allow(dead_code)]

pub mod bpf_lsm;
pub mod containers;
pub mod hang;
pub mod learn;
pub mod raw;

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The interpreter tests run: not `python3` from PATH, which may be a pyenv shim (bash and env
/// around python, 4.5 s per start under qemu).
pub const PYTHON: &str = "/usr/bin/python3";

/// The agent the tests run: this build's `shrike`, or the binary `SHRIKE_TEST_AGENT` names
/// (`./dev test` runs the kernel matrix with the optimized binary it has just packaged: under
/// qemu's TCG a debug agent takes a third longer to start, and the matrix starts hundreds).
pub fn agent_binary() -> String {
    std::env::var("SHRIKE_TEST_AGENT").unwrap_or_else(|_| env!("CARGO_BIN_EXE_shrike").to_owned())
}

/// The binary events name for [`PYTHON`] (a symlink to the versioned interpreter).
pub fn python_binary() -> String {
    std::fs::canonicalize(PYTHON)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Whether the agent must take its BPF LSM paths on this kernel: in the kernel matrix, exactly
/// when the guest was booted with `bpf` in its LSM list; elsewhere, when the harness's own LSM
/// program (raw `bpf()` calls, not the agent's probe) loads, attaches and is called. Once per
/// test process; see [`bpf_lsm`]. Tests compare it with the path the agent says it took, so a
/// kernel booted with BPF LSM cannot quietly pass on the SIGKILL fallback, nor the other way.
pub fn bpf_lsm_expected() -> bool {
    static ACTIVE: OnceLock<bool> = OnceLock::new();
    *ACTIVE.get_or_init(bpf_lsm::expected)
}

/// Whether the file family must take its LSM hook set here: as SHRIKE_FILE_HOOKS forces it (the
/// agent reads it too), else where BPF LSM is active ([`bpf_lsm_expected`]).
pub fn file_lsm_expected() -> bool {
    match std::env::var("SHRIKE_FILE_HOOKS").as_deref() {
        Ok("tracepoint") | Ok("raw-tracepoint") | Ok("fentry") => false,
        Ok("lsm") => true,
        _ => bpf_lsm_expected(),
    }
}

/// Whether the LSM hook set must go without `path_chown`: 5.10's verifier refuses it (no struct
/// argument for a BPF LSM program, and `kuid_t` is one), so chown calls are seen at fexit only
/// there, and a deny rule on them kills.
pub fn chown_lsm_refused() -> bool {
    kernel_5_10()
}

/// The capability states of an `agent_health` event, by name.
pub fn health_states(event: &Value) -> Vec<(String, String)> {
    event["health"]["capabilities"]
        .as_array()
        .expect("health.capabilities")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_string(),
                c["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A kernel-matrix guest running 5.10 (`vm/matrix.sh` passes the series it booted): the legacy
/// build, without `bpf_loop`.
pub fn kernel_5_10() -> bool {
    std::env::var("SHRIKE_VM_SERIES").as_deref() == Ok("5.10")
}

/// Inside a kernel-matrix guest (`vm/matrix.sh` passes the series it booted), where qemu's TCG
/// emulates every instruction: a loop the host runs a million times costs minutes there.
pub fn in_vm() -> bool {
    std::env::var_os("SHRIKE_VM_SERIES").is_some()
}

/// Whether the file sensor must take its fentry hook set where BPF LSM is not active: BPF
/// trampolines work here, by the harness's own check (see [`bpf_lsm::fentry_expected`]), unless
/// SHRIKE_FILE_HOOKS forces another set. Once per test process.
pub fn fentry_expected() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    match std::env::var("SHRIKE_FILE_HOOKS").as_deref() {
        Ok("fentry") => true,
        Ok("tracepoint") | Ok("raw-tracepoint") | Ok("lsm") => false,
        _ => *WORKS.get_or_init(bpf_lsm::fentry_expected),
    }
}

/// Whether the agent's file sensor sees module loads here: always, unless it was told to use
/// the per-syscall tracepoints (SHRIKE_FILE_HOOKS=tracepoint) on a kernel without module
/// syscalls — one built without module support refuses them with ENOSYS and has no trace
/// events for them, and `auto` takes the raw syscall tracepoints there so the attempts are
/// still seen; told otherwise, the agent lists the module rules as not in force.
pub fn module_syscalls_traced(lsm: bool) -> bool {
    lsm || fentry_expected()
        || std::env::var("SHRIKE_FILE_HOOKS").as_deref() != Ok("tracepoint")
        || kernel_traces_module_syscalls()
}

/// Whether the kernel has trace events for the module syscalls (looked for where the agent
/// mounts tracefs, so call this after starting it).
pub fn kernel_traces_module_syscalls() -> bool {
    std::path::Path::new("/sys/kernel/tracing/events/syscalls/sys_exit_finit_module").exists()
}

/// The agent's log says the kernel has no module syscalls to hook, and its `agent_health`
/// event lists its module rule `rule_id` as not in force, saying why (see
/// [`module_syscalls_traced`]).
pub fn assert_module_syscalls_reported_absent(agent: &Agent, rule_id: &str) {
    let stderr = agent.stderr();
    assert!(
        stderr.contains("the kernel has no such system calls") && stderr.contains("finit_module"),
        "the agent should say it hooks no module syscalls: {stderr}"
    );
    let health = agent.wait_for("agent_health", Duration::from_secs(30), |e| {
        e["kind"] == "agent_health"
    });
    let rules = health["health"]["rules_not_in_force"].as_array().unwrap();
    let module_rule = rules
        .iter()
        .find(|r| r["rule_id"] == rule_id)
        .unwrap_or_else(|| panic!("{rule_id} should be not in force: {health}"));
    assert!(
        module_rule["reason"]
            .as_str()
            .is_some_and(|r| r.contains("finit_module") && r.contains("ENOSYS")),
        "{module_rule}"
    );
}

/// Whether this test can run; panics under CI=true when it cannot.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let why = format!("{test}: needs root to load BPF programs");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true a BPF test must run, not skip");
    }
    eprintln!("SKIPPED {why}");
    false
}

/// A marker unique to this test run, to find the events a test caused.
pub fn marker(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("shrike-test-{name}-{}-{nanos}", std::process::id())
}

/// Python, run after `import ctypes, os` and `libc = ctypes.CDLL(None, use_errno=True)`, that
/// defines `vm(call, pid, address)`: one process_vm_readv (`call` 'r') or process_vm_writev
/// ('w') of 64 bytes at `address` of process `pid`, returning the byte count (OSError when it
/// fails; a write writes what the last read read), and `writable(pid)`: the address of the
/// first writable private mapping of `pid`.
pub const PROCESS_VM_PY: &str = "\
class IoVec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
for vm_call in (libc.process_vm_readv, libc.process_vm_writev):
    vm_call.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    vm_call.restype = ctypes.c_ssize_t
vm_buf = ctypes.create_string_buffer(64)
def vm(call, pid, address):
    local, remote = IoVec(ctypes.addressof(vm_buf), 64), IoVec(address, 64)
    f = libc.process_vm_readv if call == 'r' else libc.process_vm_writev
    n = f(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n < 0:
        raise OSError(ctypes.get_errno(), 'process_vm_' + call)
    return n
def writable(pid):
    with open('/proc/%d/maps' % pid) as maps:
        return next(int(l.split('-')[0], 16) for l in maps if ' rw-p ' in l)
";

#[derive(Default)]
struct Shared {
    events: Vec<Value>,
    stderr: Vec<String>,
    ready: bool,
    exited: bool,
}

/// A running `shrike run`.
pub struct Agent {
    child: Child,
    shared: Arc<(Mutex<Shared>, Condvar)>,
}

impl Agent {
    /// Starts the agent with extra `run` arguments and waits until it says it is ready.
    pub fn start(extra: &[&str]) -> Agent {
        Self::start_gated(extra, None)
    }

    /// Starts the agent with only the process sensor (no file or network sensors), for tests
    /// of process events and exec enforcement: less to load, so quicker under qemu.
    pub fn start_process_only(extra: &[&str]) -> Agent {
        let mut args = vec!["--no-file-sensor", "--no-net"];
        args.extend_from_slice(extra);
        Self::start_gated(&args, None)
    }

    /// Like [`Agent::start`], but nobody reads the agent's stdout until `gate` is opened: the
    /// pipe fills and the agent's pipeline stalls, as behind a slow consumer.
    pub fn start_gated(extra: &[&str], gate: Option<Gate>) -> Agent {
        Self::watch(spawn(extra, false), gate)
    }

    /// Like [`Agent::start`], with extra environment variables for the agent (e.g.
    /// `SHRIKE_FAULT_REFUSE`).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Agent {
        Self::watch(spawn_with(extra, false, env), None)
    }

    /// One agent for every test of this test binary that calls this (the first call's `extra`
    /// decides), started on first use: under qemu a file-sensor agent takes ~9 s to attach and
    /// as long to detach, so tests that only need events share one. It runs until the test
    /// process exits; then the kernel sends it SIGTERM (`PR_SET_PDEATHSIG`, from a thread that
    /// lives as long as the process) and it detaches on its own.
    pub fn shared(extra: &[&str]) -> &'static Agent {
        static SHARED: OnceLock<Agent> = OnceLock::new();
        SHARED.get_or_init(|| {
            let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("shared-agent-parent".into())
                .spawn(move || {
                    let args: Vec<&str> = extra.iter().map(String::as_str).collect();
                    let _ = tx.send(spawn(&args, true));
                    // The agent's death signal fires when this thread ends: never.
                    loop {
                        std::thread::park();
                    }
                })
                .expect("spawning the shared agent's parent thread");
            let child = rx.recv().expect("the shared agent's parent thread died");
            Self::watch(child, None)
        })
    }

    /// Collects a spawned agent's output and waits until it says it is ready.
    fn watch(mut child: Child, gate: Option<Gate>) -> Agent {
        hang::watchdog();
        let shared: Arc<(Mutex<Shared>, Condvar)> = Arc::default();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        {
            let shared = shared.clone();
            std::thread::spawn(move || {
                if let Some(gate) = gate {
                    gate.wait();
                }
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                        break;
                    }
                    // A last line with no newline: the agent gave its writer up at exit (a
                    // reader that made no progress for 300 ms, README "Outputs") and counted
                    // what it did not write in its final log line. Not an event.
                    let Some(line) = line.strip_suffix('\n') else {
                        break;
                    };
                    let value: Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                    let (lock, cv) = &*shared;
                    lock.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .events
                        .push(value);
                    cv.notify_all();
                }
                let (lock, cv) = &*shared;
                lock.lock().unwrap_or_else(|e| e.into_inner()).exited = true;
                cv.notify_all();
            });
        }
        {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let (lock, cv) = &*shared;
                    let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if line.contains("shrike ready") {
                        s.ready = true;
                    }
                    s.stderr.push(line);
                    cv.notify_all();
                }
            });
        }
        let agent = Agent { child, shared };
        // Generous: under qemu on a busy host, loading every sensor can take half a minute, and
        // on 5.10 with BPF LSM the file family loads twice (its LSM hook set is refused there,
        // then fentry/fexit attach one trampoline at a time): over 90 s with four guests on
        // two cores.
        agent.wait_until(Duration::from_secs(240), |s| s.ready || s.exited);
        let s = agent.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            s.ready,
            "shrike did not become ready; stderr:\n{}",
            s.stderr.join("\n")
        );
        drop(s);
        agent
    }

    fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&Shared) -> bool) {
        let (lock, cv) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !done(&s) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            s = cv
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The first event matching `pred`, waiting up to `timeout`; panics with the agent's
    /// stderr and the number of events seen when none arrives.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        self.wait_until(timeout, |s| {
            found = s.events.iter().find(|e| pred(e)).cloned();
            found.is_some() || s.exited
        });
        found.unwrap_or_else(|| {
            let s = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
            panic!(
                "no event: {what} (after {timeout:?}; {} events seen); agent stderr:\n{}",
                s.events.len(),
                s.stderr.join("\n")
            )
        })
    }

    /// Every event so far matching `pred`.
    pub fn events(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.shared
            .0
            .lock()
            .unwrap()
            .events
            .iter()
            .filter(|e| pred(e))
            .cloned()
            .collect()
    }

    /// Waits until `pred` holds over all events so far.
    pub fn wait_all(&self, timeout: Duration, pred: impl Fn(&[Value]) -> bool) -> bool {
        let mut ok = false;
        self.wait_until(timeout, |s| {
            ok = pred(&s.events);
            ok || s.exited
        });
        ok
    }

    /// Starts `program args` and waits until the agent has seen it exec, so that later events
    /// naming it as a target (ptrace, signal) find it in the process tree.
    pub fn spawn_seen(&self, program: &str, args: &[&str], timeout: Duration) -> Child {
        let child = Command::new(program).args(args).spawn().unwrap();
        let pid = child.id();
        self.wait_for(&format!("the exec of {program}"), timeout, |e| {
            kind_is(e, "process_exec") && e["process"]["pid"] == pid
        });
        child
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The agent's stderr so far.
    pub fn stderr(&self) -> String {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stderr
            .join("\n")
    }

    /// Stops the agent with SIGTERM and returns its exit status and stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.terminate()
    }

    /// Stops the agent (which drains the ring buffer first) and returns every event it wrote.
    pub fn stop_and_collect(mut self) -> (std::process::ExitStatus, String, Vec<Value>) {
        let (status, stderr) = self.terminate();
        let events = std::mem::take(
            &mut self
                .shared
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .events,
        );
        (status, stderr, events)
    }

    fn terminate(&mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: kill with a pid we spawned and still own; no memory is involved.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = match hang::wait_bounded(&mut self.child, AGENT_EXIT) {
            Ok(status) => status,
            Err(picture) => {
                let why = format!(
                    "shrike did not exit within {AGENT_EXIT:?} of SIGTERM (killed); where it was:\n{picture}agent stderr:\n{}",
                    self.stderr()
                );
                if std::thread::panicking() {
                    eprintln!("{why}");
                    return (
                        std::process::ExitStatus::from_raw(libc::SIGKILL),
                        self.stderr(),
                    );
                }
                panic!("{why}");
            }
        };
        self.wait_until(Duration::from_secs(5), |s| s.exited);
        (status, self.stderr())
    }
}

/// How long the agent may take to exit after SIGTERM: longer than its own limit (it gives up
/// on a blocked output after a minute and exits on its own when its shutdown is stuck for
/// two), so a stuck agent explains itself on stderr before the harness kills it.
const AGENT_EXIT: Duration = Duration::from_secs(180);

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// Starts `shrike run` with `extra`; with `die_with_parent`, it gets SIGTERM when the thread
/// that spawned it ends.
fn spawn(extra: &[&str], die_with_parent: bool) -> Child {
    spawn_with(extra, die_with_parent, &[])
}

fn spawn_with(extra: &[&str], die_with_parent: bool, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(agent_binary());
    cmd.arg("run")
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if die_with_parent {
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent; this closure
        // runs in the forked child before exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn().expect("spawning shrike")
}

/// Holds back reading of the agent's stdout until opened.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn open(&self) {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0 .1.notify_all();
    }

    fn wait(&self) {
        let mut open = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = self.0 .1.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Field access by dotted path, e.g. `get(e, "process.binary")`.
pub fn get<'a>(event: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(event, |v, key| match key.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[key],
        })
}

pub fn kind_is(event: &Value, kind: &str) -> bool {
    event["kind"] == kind
}

/// Whether the event's process args contain `needle` as one argument.
pub fn has_arg(event: &Value, needle: &str) -> bool {
    event["process"]["args"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == needle))
}

pub fn args(event: &Value) -> Vec<String> {
    event["process"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

pub const WAIT: Duration = Duration::from_secs(10);

/// Removes the pins `--keep-enforcing` leaves under /sys/fs/bpf/shrike when a test fails
/// before an agent has taken them over, so that later tests start clean.
pub struct PinGuard;

impl Drop for PinGuard {
    fn drop(&mut self) {
        let pins = std::path::Path::new("/sys/fs/bpf/shrike");
        for sub in ["links", "maps"] {
            if let Ok(dir) = std::fs::read_dir(pins.join(sub)) {
                for e in dir.flatten() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            let _ = std::fs::remove_dir(pins.join(sub));
        }
        let _ = std::fs::remove_dir(pins);
    }
}
