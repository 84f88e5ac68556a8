//! Reading processes that already run from /proc, once, at start.
//!
//! This is the only place shrike reads /proc for process facts: it gives processes older than
//! the agent their binary, argv, credentials and ancestry. Everything after start-up comes from
//! the kernel's records. A process that vanishes mid-read is skipped, not an error. Equal
//! binaries, argv, working directories, names and containers of the processes found are one
//! allocation each ([`Shared`]), as they are for images forked after start: a machine's
//! processes are mostly copies of a few images, and the tree keeps them for their whole life.
//!
//! Seeded images get exec_ids of their own form — top bit set, then the start time in
//! milliseconds and the pid — which can never equal a kernel-made id (top bit clear) and are
//! the same on every agent start for the same process.

use std::collections::HashSet;
use std::hash::Hash;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shrike_event::text::{lossless_utf8, split_nul_separated};
use shrike_event::{Container, ExecId, Process, Timestamp};

use crate::container;

/// What the scan needs to know besides /proc itself.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Where procfs is mounted (`/proc`).
    pub proc_root: PathBuf,
    /// Where cgroup v2 is mounted, to turn cgroup paths into ids; `None` leaves ids 0.
    pub cgroup2_root: Option<PathBuf>,
    /// argv bytes kept, as for exec records.
    pub args_max: usize,
    /// Environment variables kept (e.g. `LD_PRELOAD`).
    pub keep_env: Vec<String>,
    /// Wall-clock time of boot, in ns since the epoch: start times are boot-relative.
    pub boot_wall_ns: u64,
}

/// The exec_id of a process seen in /proc, from its pid and start time.
pub fn seeded_exec_id(pid: u32, start_boottime_ns: u64) -> ExecId {
    let start_ms = (start_boottime_ns / 1_000_000) & ((1 << 41) - 1);
    ExecId((1 << 63) | (start_ms << 22) | u64::from(pid & 0x3f_ffff))
}

/// A process read from /proc, with the boot-relative start time its exec_id is made from.
#[derive(Debug, Clone)]
pub struct Seed {
    pub process: Process,
    pub start_boottime_ns: u64,
    /// It holds a listening TCP socket (never for PID 1; see [`crate::listeners`]).
    pub listened: bool,
}

/// Reads every process in /proc. Processes that exit during the scan are left out.
pub fn scan(opts: &ScanOptions) -> Vec<Seed> {
    let Ok(dir) = std::fs::read_dir(&opts.proc_root) else {
        return Vec::new();
    };
    let pids: Vec<u32> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    let listeners = crate::listeners::tcp_listeners(&opts.proc_root, &pids);
    let mut shared = Shared::default();
    let mut seeds: Vec<Seed> = pids
        .into_iter()
        .filter_map(|pid| read_process(opts, pid).ok())
        .map(|mut seed| {
            shared.share(&mut seed.process);
            seed
        })
        .collect();
    // Parents' ids are made from their own pid and start time.
    let ids: std::collections::HashMap<u32, ExecId> = seeds
        .iter()
        .map(|s| (s.process.pid, s.process.exec_id))
        .collect();
    let parents: std::collections::HashMap<u32, u32> = seeds
        .iter()
        .map(|s| (s.process.pid, s.process.ppid))
        .collect();
    let binaries: std::collections::HashMap<u32, std::sync::Arc<str>> = seeds
        .iter()
        .map(|s| (s.process.pid, s.process.binary.clone()))
        .collect();
    for seed in &mut seeds {
        let pid = seed.process.pid;
        seed.process.parent_exec_id = ids.get(&seed.process.ppid).copied();
        seed.listened = listeners.contains(&pid);
        let server = crate::listeners::listener_above(pid, &parents, &listeners);
        seed.process.under_server = server.is_some();
        seed.process.server_binary =
            server.and_then(|s| binaries.get(&s).cloned().map(std::sync::Arc::new));
    }
    seeds
}

/// One allocation per distinct value among the processes of a scan.
#[derive(Default)]
struct Shared {
    strings: HashSet<Arc<str>>,
    args: HashSet<Arc<[String]>>,
    containers: HashSet<Arc<Container>>,
}

impl Shared {
    /// Points `process`'s binary, argv, cwd, comm and container at the copies an earlier
    /// process of the scan holds, where one has them.
    fn share(&mut self, process: &mut Process) {
        for field in [&mut process.binary, &mut process.cwd, &mut process.comm] {
            *field = one_of(&mut self.strings, field);
        }
        process.args = one_of(&mut self.args, &process.args);
        if let Some(container) = &process.container {
            process.container = Some(one_of(&mut self.containers, container));
        }
    }
}

/// The copy of `value` in `set`, after putting `value` there if it had none.
fn one_of<T: ?Sized + Eq + Hash>(set: &mut HashSet<Arc<T>>, value: &Arc<T>) -> Arc<T> {
    if let Some(kept) = set.get(value) {
        return kept.clone();
    }
    set.insert(value.clone());
    value.clone()
}

/// Reads one process from /proc.
pub fn read_process(opts: &ScanOptions, pid: u32) -> io::Result<Seed> {
    let dir = opts.proc_root.join(pid.to_string());
    let stat = std::fs::read(dir.join("stat"))?;
    let stat = parse_stat(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"))?;
    let status = std::fs::read_to_string(dir.join("status"))?;
    let (uid, euid) = ids_line(&status, "Uid:");
    let (gid, egid) = ids_line(&status, "Gid:");
    let start_boottime_ns = stat.start_ticks.saturating_mul(1_000_000_000) / clock_ticks_per_sec();
    let start_time = Timestamp(opts.boot_wall_ns + start_boottime_ns);

    // Kernel threads have no exe; their binary stays empty. A path longer than the kernel
    // will print (ENAMETOOLONG) is unknown, and flagged as cut.
    let too_long = |e: &io::Error| e.raw_os_error() == Some(libc::ENAMETOOLONG);
    let exe = std::fs::read_link(dir.join("exe"));
    let binary_truncated = exe.as_ref().is_err_and(too_long);
    let (binary, deleted) = match &exe {
        Ok(path) => strip_deleted(path.as_os_str().as_bytes()),
        Err(_) => (String::new(), false),
    };
    let mut cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let args_truncated = cmdline.len() > opts.args_max;
    cmdline.truncate(opts.args_max);
    let cwd_link = std::fs::read_link(dir.join("cwd"));
    let cwd_truncated = cwd_link.as_ref().is_err_and(too_long);
    let cwd = cwd_link
        .map(|p| lossless_utf8(p.as_os_str().as_bytes()))
        .unwrap_or_default();
    let loginuid = std::fs::read_to_string(dir.join("loginuid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&id| id != u32::MAX);
    let cgroup_path = std::fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|s| cgroup_v2_path(&s));
    let cgroup_id = match (&opts.cgroup2_root, &cgroup_path) {
        (Some(root), Some(path)) => cgroup_id(root, path).unwrap_or(0),
        _ => 0,
    };
    let env = if opts.keep_env.is_empty() {
        Default::default()
    } else {
        std::fs::read(dir.join("environ"))
            .map(|block| keep_env(&block, &opts.keep_env))
            .unwrap_or_default()
    };

    let process = Process {
        pid,
        tid: pid,
        ppid: stat.ppid,
        exec_id: seeded_exec_id(pid, start_boottime_ns),
        parent_exec_id: None,
        binary_memfd: binary.starts_with("/memfd:"),
        binary: binary.into(),
        args: split_nul_separated(&cmdline).into(),
        args_truncated,
        script: None,
        binary_deleted: deleted,
        binary_truncated,
        under_server: false,
        server_binary: None,
        cwd: cwd.into(),
        cwd_truncated,
        comm: lossless_utf8(&stat.comm).into(),
        uid,
        euid,
        gid,
        egid,
        loginuid: loginuid.into(),
        cgroup_id,
        start_time,
        exec_time: start_time,
        container: cgroup_path
            .as_deref()
            .and_then(container::from_cgroup_path)
            .map(std::sync::Arc::new),
        env: Process::env_field(env),
        links: None,
    };
    Ok(Seed {
        process,
        start_boottime_ns,
        listened: false,
    })
}

/// `NAME=value` entries of a NUL-separated environment block whose name is in `keep`.
pub fn keep_env(block: &[u8], keep: &[String]) -> std::collections::BTreeMap<String, String> {
    block
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let eq = entry.iter().position(|&b| b == b'=')?;
            let name = std::str::from_utf8(&entry[..eq]).ok()?;
            keep.iter()
                .any(|k| k == name)
                .then(|| (name.to_string(), lossless_utf8(&entry[eq + 1..])))
        })
        .collect()
}

struct Stat {
    comm: Vec<u8>,
    ppid: u32,
    start_ticks: u64,
}

/// Fields of /proc/PID/stat. The comm is in parentheses and may itself contain ") ", so the
/// fields start after the *last* ')'.
fn parse_stat(stat: &[u8]) -> Option<Stat> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = stat.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); ppid is field 4, starttime field 22.
    Some(Stat {
        comm,
        ppid: fields.get(1)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// (real, effective) from a `Uid:` or `Gid:` line of /proc/PID/status.
fn ids_line(status: &str, key: &str) -> (u32, u32) {
    let ids: Vec<u32> = status
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| {
            l[key.len()..]
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    (
        ids.first().copied().unwrap_or(0),
        ids.get(1).copied().unwrap_or(0),
    )
}

/// A readlink of /proc/PID/exe: the path, and whether the kernel marked it " (deleted)".
fn strip_deleted(link: &[u8]) -> (String, bool) {
    match link.strip_suffix(b" (deleted)") {
        Some(path) => (lossless_utf8(path), true),
        None => (lossless_utf8(link), false),
    }
}

/// The cgroup v2 path from /proc/PID/cgroup (the `0::` line).
fn cgroup_v2_path(cgroup: &str) -> Option<String> {
    cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// A cgroup's id is the inode number of its directory in the cgroup2 file system.
pub fn cgroup_id(root: &Path, path: &str) -> Option<u64> {
    let dir = root.join(path.trim_start_matches('/'));
    std::fs::metadata(dir).ok().map(|m| m.ino())
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// Wall-clock time of boot: now (realtime) minus now (boottime), in ns since the epoch.
pub fn boot_wall_ns() -> u64 {
    let real = clock_ns(libc::CLOCK_REALTIME);
    let boot = clock_ns(libc::CLOCK_BOOTTIME);
    real.saturating_sub(boot)
}

/// A clock's current value in nanoseconds.
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_parentheses_and_spaces_in_comm() {
        let line =
            b"1234 (a) b (c) S 77 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5555 1000 10 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, b"a) b (c");
        assert_eq!((s.ppid, s.start_ticks), (77, 5555));
    }

    #[test]
    fn seeded_ids_have_the_top_bit_and_differ_by_pid_and_start() {
        let a = seeded_exec_id(100, 5_000_000_000);
        assert_ne!(a.0 & (1 << 63), 0);
        assert_ne!(a, seeded_exec_id(101, 5_000_000_000));
        assert_ne!(a, seeded_exec_id(100, 5_010_000_000));
        assert_eq!(
            a,
            seeded_exec_id(100, 5_000_000_000),
            "stable across agent starts"
        );
    }

    #[test]
    fn deleted_suffix_and_env_allowlist() {
        assert_eq!(strip_deleted(b"/tmp/x (deleted)"), ("/tmp/x".into(), true));
        assert_eq!(strip_deleted(b"/usr/bin/x"), ("/usr/bin/x".into(), false));
        let env = keep_env(
            b"HOME=/root\0LD_PRELOAD=/tmp/a.so\0SECRET=x\0",
            &["LD_PRELOAD".into()],
        );
        assert_eq!(
            env.into_iter().collect::<Vec<_>>(),
            [("LD_PRELOAD".to_string(), "/tmp/a.so".to_string())]
        );
    }

    #[test]
    fn ids_and_cgroup_lines() {
        let status = "Name:\tx\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\t6\t7\t8\n";
        assert_eq!(ids_line(status, "Uid:"), (1000, 1001));
        assert_eq!(ids_line(status, "Gid:"), (5, 6));
        assert_eq!(
            cgroup_v2_path("12:pids:/x\n0::/user.slice\n"),
            Some("/user.slice".into())
        );
    }

    /// Options for scanning this machine's /proc.
    fn this_machine() -> ScanOptions {
        ScanOptions {
            proc_root: "/proc".into(),
            cgroup2_root: None,
            args_max: 32768,
            keep_env: vec![],
            boot_wall_ns: boot_wall_ns(),
        }
    }

    #[test]
    fn scanning_this_machine_finds_this_process_with_its_parent() {
        let opts = this_machine();
        let seeds = scan(&opts);
        let me = std::process::id();
        let mine = seeds
            .iter()
            .find(|s| s.process.pid == me)
            .expect("this process is in /proc");
        assert_eq!(
            *mine.process.binary,
            *std::env::current_exe().unwrap().to_string_lossy()
        );
        let parent = mine
            .process
            .parent_exec_id
            .expect("the parent is in /proc too");
        assert!(seeds.iter().any(|s| s.process.exec_id == parent));
    }

    /// Two processes of one image found by a scan share its binary, argv, cwd and name: one
    /// allocation each, as for images forked after start.
    #[test]
    fn processes_of_one_image_share_its_strings() {
        let spawn = || {
            std::process::Command::new("/bin/sleep")
                .arg("30")
                .current_dir("/")
                .spawn()
                .unwrap()
        };
        let mut children = [spawn(), spawn()];
        let opts = this_machine();
        let seeds = scan(&opts);
        for child in &mut children {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let found: Vec<&Process> = children
            .iter()
            .map(|c| {
                &seeds
                    .iter()
                    .find(|s| s.process.pid == c.id())
                    .expect("the child is in /proc")
                    .process
            })
            .collect();
        let [a, b] = [found[0], found[1]];
        assert_eq!(&*a.args, ["/bin/sleep".to_string(), "30".to_string()]);
        assert!(Arc::ptr_eq(&a.binary, &b.binary));
        assert!(Arc::ptr_eq(&a.args, &b.args));
        assert!(Arc::ptr_eq(&a.cwd, &b.cwd));
        assert!(Arc::ptr_eq(&a.comm, &b.comm));
    }
}
