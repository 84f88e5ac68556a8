//! Hangs become failures that say where things stood.
//!
//! A test that waits on a process with no deadline turns one stuck process into a CI run that
//! only ends at its global timeout, with nothing printed about what was stuck. The harness
//! bounds its waits instead ([`wait_bounded`]), and every test binary that starts an agent also
//! starts a [`watchdog`] that, if the binary is still running after [`WATCHDOG`], prints every
//! process the test started — state, the kernel function it sleeps in, each thread's kernel
//! stack — kills them and aborts the binary, so the suite fails at once with that picture.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long one test binary may run before the watchdog fires (`SHRIKE_TEST_WATCHDOG_SECS`
/// overrides). The slowest binary takes about 4 minutes on a busy machine and 5 under qemu
/// (net_sensor in a 5.10 guest beside another one: 248-305 s).
pub const WATCHDOG: Duration = Duration::from_secs(20 * 60);

/// Starts the watchdog of this test binary, once.
pub fn watchdog() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let limit = std::env::var("SHRIKE_TEST_WATCHDOG_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(WATCHDOG);
        std::thread::Builder::new()
            .name("test-watchdog".into())
            .spawn(move || {
                std::thread::sleep(limit);
                let me = std::process::id();
                // Straight to fd 2: `eprintln!` in a thread spawned from a test goes to that
                // test's output capture, which the abort below throws away unprinted.
                let _ = write!(
                    std::io::stderr(),
                    "\ntest watchdog: this test binary has run for {limit:?}; it and what it started:\n{}{}",
                    describe(me),
                    describe_descendants(me)
                );
                // What the tests started would outlive the abort, holding the output pipe
                // open, so that whoever reads the binary's output would wait for ever.
                kill_descendants(me);
                std::process::abort();
            })
            .expect("spawning the test watchdog");
    });
}

/// Waits for `child` until `limit`; then describes it and its descendants, kills them and
/// returns the description as the error. A child found stopped (a ptrace stop: the test
/// itself may be its tracer, and then it is reported as a wait result) is treated the same
/// at once: it would never end, and whoever reads its pipes would wait for ever.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + limit;
    let give_up = |child: &mut Child, why: String| {
        let pid = child.id();
        let picture = format!("{why}\n{}{}", describe(pid), describe_descendants(pid));
        kill_tree(pid);
        let _ = child.wait();
        Err(picture)
    };
    loop {
        match child.try_wait().expect("waiting for a child") {
            Some(status) => match status.stopped_signal() {
                Some(signal) => return give_up(child, format!("stopped by signal {signal}")),
                None => return Ok(status),
            },
            None if Instant::now() >= deadline => {
                return give_up(child, format!("still running after {limit:?}"))
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Every descendant of `root`, described (not `root` itself).
pub fn describe_descendants(root: u32) -> String {
    descendants(root).into_iter().map(describe).collect()
}

/// One process: its command line, and for each thread its state, wait channel and kernel
/// stack (readable by root).
pub fn describe(pid: u32) -> String {
    let read = |p: String| std::fs::read_to_string(p).unwrap_or_default();
    let cmdline = read(format!("/proc/{pid}/cmdline")).replace('\0', " ");
    let mut out = format!("== pid {pid}: {}\n", cmdline.trim_end());
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        .unwrap_or_default();
    for tid in tasks {
        let tid = tid.to_string_lossy();
        let base = format!("/proc/{pid}/task/{tid}");
        let comm = read(format!("{base}/comm"));
        let state = stat_field(&format!("{base}/stat"), 0).unwrap_or_default();
        let wchan = read(format!("{base}/wchan"));
        let _ = writeln!(
            out,
            "   thread {tid} ({}) state {state} wchan {wchan}",
            comm.trim()
        );
        for frame in read(format!("{base}/stack")).lines() {
            let _ = writeln!(out, "      {frame}");
        }
    }
    out
}

/// The processes below `root`, parents before children.
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let ppid = stat_field(&format!("/proc/{pid}/stat"), 1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Field `n` of a `stat` file counted from the one after the command name (which may hold
/// spaces and parentheses): 0 is the state, 1 the parent's pid.
fn stat_field(path: &str, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(n).map(str::to_string)
}

/// SIGKILLs `root` and every descendant.
fn kill_tree(root: u32) {
    kill_descendants(root);
    // SAFETY: kill takes no memory; a pid that has gone meanwhile gets ESRCH.
    unsafe { libc::kill(root as i32, libc::SIGKILL) };
}

/// SIGKILLs every descendant of `root`, children after their own children.
fn kill_descendants(root: u32) {
    for pid in descendants(root).into_iter().rev() {
        // SAFETY: kill takes no memory; a pid that has gone meanwhile gets ESRCH.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}
