//! Host integration tests of the process sensor, as root: the real `shrike run` with its real
//! BPF programs, real processes, exact fields.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;
use serde_json::Value;

fn exec_of<'a>(binary: &'a str, marker: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |e| kind_is(e, "process_exec") && e["process"]["binary"] == binary && has_arg(e, marker)
}

/// The issue's own check: `bash -c '/usr/bin/env true <marker>'` yields an exec of env with
/// exact argv and bash as parent, linked by exec_id to the exit of the same process.
#[test]
fn bash_running_env_reports_argv_parent_exec_id_and_exit() {
    if !require_root("bash_running_env_reports_argv_parent_exec_id_and_exit") {
        return;
    }
    let agent = Agent::start_process_only(&[]);
    let m = marker("spine");
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!("/usr/bin/env true {m}"))
        .status()
        .unwrap();
    assert!(status.success());

    let env = agent.wait_for("exec of /usr/bin/env", WAIT, exec_of("/usr/bin/env", &m));
    assert_eq!(args(&env), ["/usr/bin/env", "true", m.as_str()]);
    assert!(
        env["parent"]["binary"].as_str().unwrap().ends_with("bash"),
        "{env}"
    );
    let env_id = env["process"]["exec_id"].as_str().unwrap().to_string();
    assert_eq!(env_id.len(), 16);
    assert_eq!(env["process"]["parent_exec_id"], env["parent"]["exec_id"]);
    assert_eq!(env["ancestors"][0]["exec_id"], env["parent"]["exec_id"]);
    assert_eq!(
        env["process"]["cwd"],
        std::env::current_dir().unwrap().to_str().unwrap()
    );
    assert_eq!(env["process"]["comm"], "env");
    assert_eq!(env["process"]["uid"], 0);
    assert_eq!(env["process"]["args_truncated"], false);

    // env replaces itself with true: true's parent is env's image, and the process's exit
    // carries true's exec_id.
    let pid = env["process"]["pid"].clone();
    let tru = agent.wait_for("exec of true", WAIT, exec_of("/usr/bin/true", &m));
    assert_eq!(tru["process"]["pid"], pid);
    assert_eq!(tru["process"]["parent_exec_id"], env_id.as_str());
    let exit = agent.wait_for("exit", WAIT, |e| {
        kind_is(e, "process_exit") && e["process"]["pid"] == pid
    });
    assert_eq!(exit["exit"]["code"], 0);
    assert_eq!(exit["exit"]["signal"], Value::Null);
    assert_eq!(exit["process"]["exec_id"], tru["process"]["exec_id"]);
    assert_eq!(
        exit["parent"]["exec_id"],
        env_id.as_str(),
        "the exit links back to env"
    );
}

/// `sh -c 'exec /usr/bin/env true a b'`: exec without fork makes the replaced shell the parent,
/// and the shell's parent is this test process.
#[test]
fn exec_without_fork_keeps_the_replaced_image_as_parent() {
    if !require_root("exec_without_fork_keeps_the_replaced_image_as_parent") {
        return;
    }
    let agent = Agent::start_process_only(&[]);
    let m = marker("execchain");
    Command::new("sh")
        .arg("-c")
        .arg(format!("exec /usr/bin/env true a b {m}"))
        .status()
        .unwrap();
    let env = agent.wait_for("exec of env", WAIT, exec_of("/usr/bin/env", &m));
    assert_eq!(args(&env), ["/usr/bin/env", "true", "a", "b", m.as_str()]);
    assert_eq!(env["parent"]["binary"], "/usr/bin/dash");
    assert_eq!(
        env["parent"]["pid"], env["process"]["pid"],
        "same process, previous image"
    );
    assert_eq!(env["parent"]["args"][0], "sh");
    assert_eq!(
        env["ancestors"][1]["pid"],
        std::process::id(),
        "the shell was started by this test"
    );
    assert_eq!(env["process"]["ppid"], std::process::id());
}

/// A process older than the agent gets its ancestry from /proc; its exit is reported with it.
#[test]
fn process_started_before_the_agent_has_ancestry() {
    if !require_root("process_started_before_the_agent_has_ancestry") {
        return;
    }
    // sleep takes no extra arguments, so the marker is a unique duration.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let m = format!("60.{:09}", nanos.max(1));
    let mut bash = Command::new("bash")
        .arg("-c")
        .arg(format!("sleep {m}; true"))
        .spawn()
        .unwrap();
    // Wait for bash to have forked sleep.
    let sleep_pid = (0..100)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            pgrep(&m)
        })
        .expect("sleep started");
    let agent = Agent::start_process_only(&[]);
    // SAFETY: kill(2) on a pid this test started.
    unsafe { libc::kill(sleep_pid as i32, libc::SIGTERM) };
    let exit = agent.wait_for("exit of the older sleep", WAIT, |e| {
        kind_is(e, "process_exit") && e["process"]["pid"] == sleep_pid
    });
    assert_eq!(exit["process"]["binary"], "/usr/bin/sleep");
    assert_eq!(args(&exit), ["sleep", m.as_str()]);
    assert_eq!(exit["exit"]["signal"], 15);
    assert_eq!(exit["exit"]["code"], Value::Null);
    assert_eq!(exit["parent"]["binary"], "/usr/bin/bash");
    assert_eq!(exit["parent"]["pid"], bash.id());
    assert_eq!(exit["ancestors"][1]["pid"], std::process::id());
    let _ = bash.wait();
}

fn pgrep(pattern: &str) -> Option<u32> {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(format!("^sleep {pattern}$"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// A `#!` script run by relative path: the interpreter is the binary, the script is named
/// with its absolute path, and its exit code is reported.
#[test]
fn shebang_script_reports_interpreter_script_and_exit_code() {
    if !require_root("shebang_script_reports_interpreter_script_and_exit_code") {
        return;
    }
    let agent = Agent::start_process_only(&[]);
    let m = marker("script");
    let dir = std::env::temp_dir().join(&m);
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("run.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 7\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let status = Command::new("./run.sh")
        .arg(&m)
        .current_dir(&dir)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));

    let e = agent.wait_for("exec of the script", WAIT, exec_of("/usr/bin/dash", &m));
    assert_eq!(args(&e), ["/bin/sh", "./run.sh", m.as_str()]);
    assert_eq!(e["process"]["script"], script.to_str().unwrap());
    assert_eq!(e["process"]["cwd"], dir.to_str().unwrap());
    assert_eq!(e["process"]["comm"], "run.sh");
    let pid = e["process"]["pid"].clone();
    let exit = agent.wait_for("exit", WAIT, |x| {
        kind_is(x, "process_exit") && x["process"]["pid"] == pid
    });
    assert_eq!(exit["exit"]["code"], 7);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A process killed by a signal reports the signal, not an exit code.
#[test]
fn death_by_signal_reports_the_signal() {
    if !require_root("death_by_signal_reports_the_signal") {
        return;
    }
    let agent = Agent::start_process_only(&[]);
    let m = marker("kill9");
    Command::new("sh")
        .arg("-c")
        .arg(format!("kill -9 $$ # {m}"))
        .status()
        .unwrap();
    let e = agent.wait_for("exec of sh", WAIT, |e| {
        kind_is(e, "process_exec")
            && e["process"]["args"][2]
                .as_str()
                .is_some_and(|a| a.contains(&m))
    });
    let pid = e["process"]["pid"].clone();
    let exit = agent.wait_for("exit", WAIT, |x| {
        kind_is(x, "process_exit") && x["process"]["pid"] == pid
    });
    assert_eq!(exit["exit"]["signal"], 9);
    assert_eq!(exit["exit"]["code"], Value::Null);
}

/// Fileless execution: a binary run from a memfd is marked binary_memfd.
#[test]
fn exec_from_memfd_is_marked_fileless() {
    if !require_root("exec_from_memfd_is_marked_fileless") {
        return;
    }
    let agent = Agent::start_process_only(&[]);
    let m = marker("memfd");
    let name = std::ffi::CString::new("shrike-memfd").unwrap();
    // SAFETY: name is a valid C string; flags 0 (the fd is inherited by the child on purpose).
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    assert!(fd >= 0);
    let bytes = std::fs::read("/usr/bin/true").unwrap();
    // SAFETY: fd is ours and bytes is a valid buffer of bytes.len() bytes.
    let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(written as usize, bytes.len());
    let status = Command::new(format!("/proc/self/fd/{fd}"))
        .arg(&m)
        .status()
        .unwrap();
    assert!(status.success());
    // SAFETY: closing our own fd.
    unsafe { libc::close(fd) };

    let e = agent.wait_for("exec from memfd", WAIT, |e| {
        kind_is(e, "process_exec") && has_arg(e, &m)
    });
    assert_eq!(e["process"]["binary"], "/memfd:shrike-memfd");
    assert_eq!(e["process"]["binary_memfd"], true);
    assert_eq!(e["process"]["binary_deleted"], true);
}

/// A file deleted before it is executed (through an open fd) is marked binary_deleted; a
/// binary deleted while it runs still gets a correct exit.
#[test]
fn deleted_binaries_are_marked_and_still_reported() {
    if !require_root("deleted_binaries_are_marked_and_still_reported") {
        return;
    }
    let agent = Agent::start_process_only(&[]);
    let m = marker("deleted");
    let dir = std::env::temp_dir().join(&m);
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("sleeper");
    std::fs::copy("/usr/bin/sleep", &copy).unwrap();

    // Deleted while running (the marker is in the binary's directory: sleep takes no extra
    // arguments).
    let mut child = spawn_fresh_copy(&copy, "0.3");
    std::thread::sleep(std::time::Duration::from_millis(100));
    std::fs::remove_file(&copy).unwrap();
    assert!(child.wait().unwrap().success());
    let copy_path = copy.to_str().unwrap().to_string();
    let e = agent.wait_for("exec of the copy", WAIT, |e| {
        kind_is(e, "process_exec") && e["process"]["binary"] == copy_path.as_str()
    });
    assert_eq!(e["process"]["binary"], copy.to_str().unwrap());
    assert_eq!(
        e["process"]["binary_deleted"], false,
        "it existed when it was executed"
    );
    let pid = e["process"]["pid"].clone();
    let exit = agent.wait_for("exit", WAIT, |x| {
        kind_is(x, "process_exit") && x["process"]["pid"] == pid
    });
    assert_eq!(exit["exit"]["code"], 0);

    // Deleted before exec, run through a descriptor.
    std::fs::copy("/usr/bin/true", &copy).unwrap();
    let file = std::fs::File::open(&copy).unwrap();
    std::fs::remove_file(&copy).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: fd is a valid open descriptor; clearing FD_CLOEXEC so the child can exec it.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let m2 = format!("{m}-fd");
    assert!(Command::new(format!("/proc/self/fd/{fd}"))
        .arg(&m2)
        .status()
        .unwrap()
        .success());
    let e = agent.wait_for("exec of the deleted file", WAIT, |e| {
        kind_is(e, "process_exec") && has_arg(e, &m2)
    });
    assert_eq!(e["process"]["binary"], copy.to_str().unwrap());
    assert_eq!(e["process"]["binary_deleted"], true);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// 2,000 arguments, 100 KB of argv: the event keeps the first 32 KiB of whole and cut
/// arguments and says it was truncated.
#[test]
fn huge_argv_is_cut_at_the_documented_limit_and_flagged() {
    if !require_root("huge_argv_is_cut_at_the_documented_limit_and_flagged") {
        return;
    }
    let agent = Agent::start_process_only(&[]);
    let m = marker("bigargv");
    let filler: Vec<String> = (0..2000)
        .map(|i| format!("{i:04}-{}", "x".repeat(45)))
        .collect();
    let status = Command::new("/usr/bin/true")
        .arg(&m)
        .args(&filler)
        .status()
        .unwrap();
    assert!(status.success());
    let e = agent.wait_for("exec with huge argv", WAIT, exec_of("/usr/bin/true", &m));
    assert_eq!(e["process"]["args_truncated"], true);
    let got = args(&e);
    assert_eq!(got[0], "/usr/bin/true");
    assert_eq!(got[1], m);
    let bytes: usize = got.iter().map(|a| a.len() + 1).sum();
    assert!(bytes <= 32768 + 1, "{bytes} bytes of argv kept");
    assert!(
        bytes > 32000,
        "the record should be filled up to its limit, kept {bytes}"
    );
    // Every argument but the cut last one is exact.
    for (i, a) in got[2..got.len() - 1].iter().enumerate() {
        assert_eq!(a, &filler[i]);
    }
}

/// Non-UTF-8 bytes in argv and in the binary's path are escaped as \xNN, never dropped.
#[test]
fn non_utf8_argv_and_paths_are_escaped_not_lost() {
    if !require_root("non_utf8_argv_and_paths_are_escaped_not_lost") {
        return;
    }
    let agent = Agent::start_process_only(&[]);
    let m = marker("utf8");
    let dir = std::env::temp_dir().join(&m);
    std::fs::create_dir_all(&dir).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"bin-\xff\xfe");
    let binary = dir.join(name);
    std::fs::copy("/usr/bin/true", &binary).unwrap();
    let arg = std::ffi::OsStr::from_bytes(b"arg-\xc3\x28-\xe2\x82\xac");
    assert!(Command::new(&binary)
        .arg(&m)
        .arg(arg)
        .status()
        .unwrap()
        .success());
    let e = agent.wait_for("exec with non-UTF-8 names", WAIT, |e| {
        kind_is(e, "process_exec") && has_arg(e, &m)
    });
    assert_eq!(
        e["process"]["binary"],
        format!("{}/bin-\\xff\\xfe", dir.display())
    );
    assert_eq!(e["process"]["args"][2], "arg-\\xc3(-€");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every image gets its own exec_id; forks are tracked and emitted on request.
#[test]
fn forks_are_emitted_on_request_with_unique_exec_ids() {
    if !require_root("forks_are_emitted_on_request_with_unique_exec_ids") {
        return;
    }
    let agent = Agent::start_process_only(&["--emit-forks"]);
    let m = marker("forks");
    // bash forks a subshell that runs true in the background three times.
    Command::new("bash")
        .arg("-c")
        .arg(format!("for i in 1 2 3; do /usr/bin/true {m} & done; wait"))
        .status()
        .unwrap();
    agent.wait_all(WAIT, |evs| {
        evs.iter()
            .filter(|e| kind_is(e, "process_exec") && has_arg(e, &m))
            .count()
            == 3
    });
    let execs = agent.events(|e| kind_is(e, "process_exec") && has_arg(e, &m));
    assert_eq!(execs.len(), 3);
    let bash_id = execs[0]["parent"]["exec_id"].clone();
    let forks =
        agent.events(|e| kind_is(e, "process_fork") && e["process"]["parent_exec_id"] == bash_id);
    assert!(
        forks.len() >= 3,
        "each background job is a fork of bash: {forks:?}"
    );
    let mut ids: Vec<&str> = execs
        .iter()
        .chain(forks.iter())
        .map(|e| e["process"]["exec_id"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "exec_ids are unique");
    for e in &execs {
        assert_eq!(
            e["parent"]["binary"], "/usr/bin/bash",
            "the fork's parent is the forking bash"
        );
    }
}

/// SIGTERM detaches everything and exits 0, logging the final counters.
#[test]
fn sigterm_stops_cleanly_and_reports_counters() {
    if !require_root("sigterm_stops_cleanly_and_reports_counters") {
        return;
    }
    let agent = Agent::start_process_only(&[]);
    let (status, stderr) = agent.stop();
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("final counters") && stderr.contains("ringbuf_full="),
        "{stderr}"
    );
    assert!(stderr.contains("detaching all programs"), "{stderr}");
}

/// An agent stopped and continued (SIGSTOP/SIGCONT, as a debugger or a frozen container does)
/// keeps running: the interrupted wait is retried, and what happened meanwhile is delivered.
#[test]
fn the_agent_survives_being_stopped_and_continued() {
    if !require_root("the_agent_survives_being_stopped_and_continued") {
        return;
    }
    let agent = Agent::start_process_only(&[]);
    let pid = agent.pid() as i32;
    // SAFETY: kill(2) with the pid of the agent this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let m = marker("stopped");
    assert!(Command::new("/usr/bin/true")
        .arg(&m)
        .status()
        .unwrap()
        .success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    agent.wait_for(
        "the exec while the agent was stopped",
        WAIT,
        exec_of("/usr/bin/true", &m),
    );
    let after = marker("continued");
    assert!(Command::new("/usr/bin/true")
        .arg(&after)
        .status()
        .unwrap()
        .success());
    agent.wait_for(
        "an exec after it continued",
        WAIT,
        exec_of("/usr/bin/true", &after),
    );
    let (status, stderr) = agent.stop();
    assert!(
        status.success(),
        "the agent must not stop on EINTR: {stderr}"
    );
}

/// Spawns a binary just copied into place. Another test thread that forks while the copy's
/// write fd is open holds it in its child until that child execs, so exec can fail with
/// ETXTBSY for a moment: retry then, as package managers do.
fn spawn_fresh_copy(path: &std::path::Path, arg: &str) -> std::process::Child {
    for _ in 0..100 {
        match Command::new(path).arg(arg).spawn() {
            Ok(child) => return child,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("spawning {}: {e}", path.display()),
        }
    }
    panic!("{} stayed busy (ETXTBSY) for 2 s", path.display());
}
