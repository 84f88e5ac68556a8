//! The local API and the CLI on it, against the real agent: the socket is root-only, `status`,
//! `ps` and `policy` answer from the running pipeline, `events` filters on the agent's side,
//! and a client that stops reading is cut off with a final line saying why while another
//! client and the agent's own output keep every event, at the same pace.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn shrike() -> Command {
    Command::new(common::agent_binary())
}

/// A fresh directory whose `api/` subdirectory the agent creates for its socket.
fn socket_path(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(marker(name));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("api").join("api.sock");
    (dir, socket)
}

/// One request, its replies until an `end`, `result` or `error` line.
fn ask(socket: &Path, request: &str) -> Vec<Value> {
    let mut conn = UnixStream::connect(socket).unwrap();
    conn.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut out = Vec::new();
    for line in BufReader::new(conn).lines() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let done = v["type"] != "event";
        out.push(v);
        if done {
            break;
        }
    }
    out
}

fn status(socket: &Path) -> Value {
    ask(socket, r#"{"op":"status"}"#).pop().unwrap()["result"].clone()
}

/// A copy of /usr/bin/true under a marker name, so its events are this test's alone.
fn marker_binary(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy("/usr/bin/true", &path).unwrap();
    path
}

/// The socket and its new directory are root-only; `status`, `ps`, `ps --pid` and `policy`
/// answer with what the running agent holds; a user other than root is refused with a clear
/// message; once the agent stops, the CLI says no agent is there.
#[test]
fn api_is_root_only_and_answers_from_the_running_agent() {
    if !require_root("api_is_root_only_and_answers_from_the_running_agent") {
        return;
    }
    let (dir, socket) = socket_path("api-query");
    let agent = Agent::start_process_only(&["--api-socket", socket.to_str().unwrap()]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);

    let s = status(&socket);
    assert_eq!(s["pid"], agent.pid());
    assert_eq!(s["policy"]["generation"], 1);
    let caps: Vec<&str> = s["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(caps.contains(&"process_events"), "{s}");
    assert!(s["process_tree"]["live"].as_u64().unwrap() > 1, "{s}");

    // ps: this test process is in the tree, and its ancestry leads to pid 1.
    let me = std::process::id();
    let out = shrike()
        .args(["ps", "--json", "--api-socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ps: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        ps["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == me),
        "pid {me} not listed"
    );
    let one = ask(&socket, &format!(r#"{{"op":"ps","pid":{me}}}"#))
        .pop()
        .unwrap();
    assert_eq!(one["result"]["process"]["pid"], me, "{one}");
    let ancestry = one["result"]["ancestry"].as_array().unwrap();
    assert_eq!(
        ancestry[0]["pid"],
        std::os::unix::process::parent_id(),
        "{one}"
    );
    assert_eq!(ancestry.last().unwrap()["pid"], 1, "{one}");
    let tree = shrike()
        .args(["ps", "--tree", "--api-socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(
        tree.contains(&format!(" {me} ")) && tree.contains("└─ "),
        "{tree}"
    );
    let missing = ask(&socket, r#"{"op":"ps","pid":4194304}"#).pop().unwrap();
    assert_eq!(missing["type"], "error", "{missing}");

    let policy = ask(&socket, r#"{"op":"policy"}"#).pop().unwrap();
    let rules = policy["result"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["id"] == "SHR-EVA-006"), "{policy}");
    assert_eq!(policy["result"]["source"], "the default pack");

    // A second agent on the same socket runs (detection first) without the API, and says why;
    // the first keeps its socket.
    let second = Agent::start_process_only(&["--api-socket", socket.to_str().unwrap()]);
    let (_, stderr) = second.stop();
    assert!(
        stderr.contains("the local API is off")
            && stderr.contains("another shrike agent is serving it"),
        "{stderr}"
    );
    assert_eq!(status(&socket)["pid"], agent.pid());

    let bad = ask(&socket, r#"{"op":"events","filter":{"kinds":["nope"]}}"#)
        .pop()
        .unwrap();
    assert_eq!(bad["type"], "error");
    assert!(bad["message"]
        .as_str()
        .unwrap()
        .contains("unknown event kind"));

    // Another user: the 0700 directory refuses the connect; the CLI says what it means.
    // SAFETY: setuid in the forked child before exec touches no memory of the parent.
    let out = unsafe {
        shrike()
            .args(["status", "--api-socket"])
            .arg(&socket)
            .pre_exec(|| {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
            .output()
            .unwrap()
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("permission denied on {}", socket.display())),
        "{stderr}"
    );

    drop(agent);
    assert!(
        !socket.exists(),
        "the agent removes its socket on the way out"
    );
    let out = shrike()
        .args(["status", "--api-socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "no agent at {}: is `shrike run` running? (--api-socket)",
            socket.display()
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `shrike events --follow --filter` receives exactly the events passing the filter (the
/// agent filters), and `shrike events` without --follow returns them from the recent ring.
#[test]
fn events_are_filtered_by_the_agent_live_and_from_the_recent_ring() {
    if !require_root("events_are_filtered_by_the_agent_live_and_from_the_recent_ring") {
        return;
    }
    let (dir, socket) = socket_path("api-events");
    let agent = Agent::start_process_only(&["--api-socket", socket.to_str().unwrap()]);
    let marker = marker_binary(&dir, "api-marker");
    let filter = format!("kind=process_exec,binary={}", marker.display());
    let mut follower = shrike()
        .args(["events", "--follow", "--filter", &filter, "--api-socket"])
        .arg(&socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<Value>::new()));
    {
        let lines = lines.clone();
        let stdout = follower.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
            }
        });
    }
    // The follower is subscribed once the agent counts it as a client.
    let deadline = Instant::now() + WAIT;
    while status(&socket)["api"]["clients"].as_u64().unwrap() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..5 {
        assert!(Command::new(&marker)
            .arg(format!("n{i}"))
            .status()
            .unwrap()
            .success());
        assert!(Command::new("/usr/bin/true").status().unwrap().success());
    }
    agent.wait_all(WAIT, |events| {
        events
            .iter()
            .filter(|e| {
                kind_is(e, "process_exec") && e["process"]["binary"] == marker.to_str().unwrap()
            })
            .count()
            == 5
    });
    let deadline = Instant::now() + WAIT;
    while lines.lock().unwrap().len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let got = lines.lock().unwrap().clone();
    let args: Vec<String> = got.iter().map(|e| args(e)[1].clone()).collect();
    assert_eq!(args, ["n0", "n1", "n2", "n3", "n4"], "{got:?}");
    assert!(got.iter().all(|e| kind_is(e, "process_exec")));
    // SAFETY: kill with a pid we spawned.
    unsafe { libc::kill(follower.id() as i32, libc::SIGTERM) };
    let _ = follower.wait();

    let out = shrike()
        .args(["events", "--filter", &filter, "--api-socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recent: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recent.len(), 5, "{recent:?}");
    let out = shrike()
        .args([
            "events",
            "-o",
            "compact",
            "--limit",
            "2",
            "--filter",
            &filter,
            "--api-socket",
        ])
        .arg(&socket)
        .output()
        .unwrap();
    let compact = String::from_utf8_lossy(&out.stdout);
    assert_eq!(compact.lines().count(), 2, "{compact}");
    let compact: Vec<&str> = compact.lines().collect();
    assert!(
        compact[0].contains("process_exec") && compact[0].contains(" n3"),
        "{compact:?}"
    );
    assert!(
        compact[1].contains("process_exec") && compact[1].contains(" n4"),
        "{compact:?}"
    );
    drop(agent);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `n` execs of `marker` (distinct arguments) and returns how long after the last one
/// the agent's own output held all of them.
fn burst(agent: &Agent, marker: &Path, tag: &str, n: usize) -> Duration {
    for i in 0..n {
        Command::new(marker)
            .arg(format!("{tag}-{i}"))
            .status()
            .unwrap();
    }
    let last = Instant::now();
    let prefix = format!("{tag}-");
    let ok = agent.wait_all(Duration::from_secs(60), |events| {
        events
            .iter()
            .filter(|e| {
                kind_is(e, "process_exec")
                    && e["process"]["args"][1]
                        .as_str()
                        .is_some_and(|a| a.starts_with(&prefix))
            })
            .count()
            == n
    });
    assert!(ok, "the agent's output lacks execs of burst {tag}");
    last.elapsed()
}

/// The issue's check: a client that never reads is cut off with a final `end` line saying
/// why, while another client keeps receiving every event and the agent's own output keeps
/// its pace (no event lost, the same lag as without the stalled client).
#[test]
fn a_client_that_never_reads_is_cut_off_without_slowing_anyone() {
    if !require_root("a_client_that_never_reads_is_cut_off_without_slowing_anyone") {
        return;
    }
    let (dir, socket) = socket_path("api-slow");
    let agent = Agent::start_process_only(&[
        "--api-socket",
        socket.to_str().unwrap(),
        // Small enough that the stalled client is cut off within a few bursts, large enough
        // that a reading client on a loaded two-core machine never fills it (64 did, in CI:
        // the fast client was cut off after 517 events while its reader thread waited for
        // the CPU).
        "--api-client-queue",
        "512",
    ]);
    let marker = marker_binary(&dir, "api-slow-marker");
    const N: usize = 400;

    // The fast client: counts marker execs as they arrive.
    let mut fast = UnixStream::connect(&socket).unwrap();
    let request = format!(
        "{{\"op\":\"events\",\"follow\":true,\"filter\":{{\"kinds\":[\"process_exec\"],\"binary\":\"{}\"}}}}\n",
        marker.display()
    );
    fast.write_all(request.as_bytes()).unwrap();
    let fast_seen = Arc::new(Mutex::new(0usize));
    let fast_end = Arc::new(Mutex::new(None::<Value>));
    {
        let fast_seen = fast_seen.clone();
        let fast_end = fast_end.clone();
        let reader = BufReader::new(fast.try_clone().unwrap());
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).unwrap();
                if v["type"] == "event" {
                    *fast_seen.lock().unwrap() += 1;
                } else if v["type"] == "end" {
                    *fast_end.lock().unwrap() = Some(v);
                }
            }
        });
    }
    let wait_clients = |n: u64| {
        let deadline = Instant::now() + WAIT;
        while status(&socket)["api"]["clients"].as_u64().unwrap() < n {
            assert!(Instant::now() < deadline, "clients never reached {n}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_clients(1);
    let baseline = burst(&agent, &marker, "before", N);

    // The slow client: asks for everything, then never reads.
    let mut slow = UnixStream::connect(&socket).unwrap();
    slow.write_all(b"{\"op\":\"events\",\"follow\":true}\n")
        .unwrap();
    wait_clients(2);
    let stalled = burst(&agent, &marker, "during", N);
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&socket)["api"]["cut_off"].as_u64().unwrap() < 1 {
        assert!(
            Instant::now() < deadline,
            "the slow client was never cut off"
        );
        burst(
            &agent,
            &marker,
            &format!("more{}", deadline.elapsed().as_millis()),
            20,
        );
    }
    let deadline = Instant::now() + WAIT;
    while *fast_seen.lock().unwrap() < 2 * N && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let fast_count = *fast_seen.lock().unwrap();
    assert!(
        fast_count >= 2 * N,
        "the fast client got {fast_count} of {} events; its stream ended with {:?}; status {}",
        2 * N,
        fast_end.lock().unwrap(),
        status(&socket)["api"]
    );

    // What the slow client finds when it finally reads: events, then the reason, then EOF.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = String::new();
    slow.read_to_string(&mut text).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "end", "{last}");
    assert_eq!(last["reason"], "slow_client", "{last}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("read too slowly"),
        "{last}"
    );
    assert!(lines[..lines.len() - 1]
        .iter()
        .all(|l| l["type"] == "event"));
    let s = status(&socket);
    assert_eq!(s["api"]["events_dropped"], 0, "{s}");
    eprintln!(
        "slow client: {} events before the cut; fast client: {fast_count} events; agent lag after {N} execs: {:?} without, {:?} with the stalled client",
        lines.len() - 1,
        baseline,
        stalled
    );
    assert!(
        stalled < baseline + Duration::from_secs(2),
        "the stalled client slowed the agent: {stalled:?} vs {baseline:?}"
    );
    drop(agent);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The CLI's errors when no agent listens, without BPF: the message names the socket and
/// the way out.
#[test]
fn the_cli_says_when_no_agent_is_running() {
    let socket = std::env::temp_dir()
        .join(marker("no-agent"))
        .join("api.sock");
    for cmd in [&["status"][..], &["ps", "--tree"], &["events", "--follow"]] {
        let out = shrike()
            .args(cmd)
            .arg("--api-socket")
            .arg(&socket)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "no agent at {}: is `shrike run` running?",
                socket.display()
            )),
            "{cmd:?}: {stderr}"
        );
    }
    let out = shrike()
        .args(["events", "--filter", "severity=high", "--api-socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("severity>=high"));
}
