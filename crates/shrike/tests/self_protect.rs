//! Self-protection: a signal aimed at the agent by another process is an alert naming that
//! process on every kernel; with `--protect-self` on BPF LSM (the kernel matrix) it is also
//! refused with EPERM, and ptrace of the agent is refused, and so is a file descriptor to any of
//! its BPF programs, maps or links — a program the agent holds only through its link (the file
//! sensor drops its skeleton once attached) included — while allowed binaries (here, this test)
//! can still reach them and stop it.

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
    assert_eq!(
        lsm,
        bpf_lsm_expected(),
        "--protect-self must load its LSM hooks exactly where BPF LSM is active:\n{}",
        agent.stderr()
    );
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
        let out = Command::new(PYTHON)
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
    if lsm {
        let linked_only = linked_only_program(agent.pid())
            .expect("the file sensor's programs are held only through their links");
        for (what, cmd, kind) in [
            ("link", BPF_LINK_GET_FD_BY_ID, Some("link_id")),
            ("map", BPF_MAP_GET_FD_BY_ID, Some("map_id")),
            ("prog", BPF_PROG_GET_FD_BY_ID, Some("prog_id")),
            ("prog", BPF_PROG_GET_FD_BY_ID, None),
        ] {
            let id = match kind {
                Some(kind) => agent_object_id(agent.pid(), kind)
                    .unwrap_or_else(|| panic!("the agent holds no BPF {what}")),
                None => linked_only,
            };
            // Another binary (python) is refused.
            assert_eq!(
                grab_by_id_elsewhere(cmd, id),
                Some(libc::EPERM),
                "a {what} of the agent by id must be refused"
            );
            let e = agent.wait_for(&format!("the refused {what} grab"), WAIT, |e| {
                e["kind"] == "bpf_load"
                    && e["bpf"]["prog_type"] == format!("shrike_{what}")
                    && self_alert(e).is_some()
            });
            assert_eq!(self_alert(&e).unwrap()["outcome"], "denied");
            assert_eq!(e["process"]["binary"], python_binary());
            // This test's binary is allowed.
            let fd = grab_by_id(cmd, id);
            assert!(fd >= 0, "an allowed binary reaches the agent's {what}");
            // SAFETY: a descriptor this process just got and owns.
            unsafe { libc::close(fd) };
        }
    }
    // This test's own binary is allowed: it can stop the agent.
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{stderr}");
}

const BPF_PROG_GET_FD_BY_ID: u32 = 13;
const BPF_MAP_GET_FD_BY_ID: u32 = 14;
const BPF_LINK_GET_FD_BY_ID: u32 = 30;

/// The fdinfo texts of the agent's descriptors.
fn agent_fdinfos(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The id an fdinfo text gives for `kind` (`link_id`, `map_id`, `prog_id`).
fn fdinfo_id(info: &str, kind: &str) -> Option<u32> {
    info.lines()
        .find_map(|l| l.strip_prefix(kind)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// The id of one of the agent's BPF objects, from its fdinfo (`link_id`, `map_id`, `prog_id`;
/// a link's fdinfo also names its program, so links are skipped for `prog_id` and `map_id`).
fn agent_object_id(pid: u32, kind: &str) -> Option<u32> {
    agent_fdinfos(pid)
        .iter()
        .filter(|info| kind == "link_id" || !info.contains("link_id:"))
        .find_map(|info| fdinfo_id(info, kind))
}

/// The id of a program the agent holds only through a link: one its links' fdinfo names and no
/// program descriptor of it does.
fn linked_only_program(pid: u32) -> Option<u32> {
    let (linked, held): (Vec<String>, Vec<String>) = agent_fdinfos(pid)
        .into_iter()
        .partition(|info| info.contains("link_id:"));
    let held: Vec<u32> = held
        .iter()
        .filter_map(|i| fdinfo_id(i, "prog_id"))
        .collect();
    linked
        .iter()
        .filter_map(|info| fdinfo_id(info, "prog_id"))
        .find(|id| !held.contains(id))
}

/// `bpf(cmd, {id})` from this process: the new descriptor, or -errno.
fn grab_by_id(cmd: u32, id: u32) -> i32 {
    let mut attr = [0u8; 128];
    attr[..4].copy_from_slice(&id.to_ne_bytes());
    // SAFETY: `attr` is a valid, writable 128-byte buffer for the kernel to read.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        -std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        r as i32
    }
}

/// The same call made by /usr/bin/python3 (a binary not allowed to control the agent): its
/// errno, or `None` when it got a descriptor.
fn grab_by_id_elsewhere(cmd: u32, id: u32) -> Option<i32> {
    let script = format!(
        "import ctypes, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n\
         attr = ctypes.create_string_buffer(128)\n\
         ctypes.memmove(attr, ctypes.byref(ctypes.c_uint32({id})), 4)\n\
         fd = libc.syscall(321, {cmd}, attr, 128)\n\
         sys.exit(ctypes.get_errno() if fd < 0 else 0)\n"
    );
    let status = Command::new(PYTHON).args(["-c", &script]).status().unwrap();
    match status.code() {
        Some(0) => None,
        other => other,
    }
}
