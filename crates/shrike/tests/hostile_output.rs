//! Hostile text and hostile readers against the agent's outputs (issue 19): what an attacker
//! puts in argv or a directory name reaches the terminal escaped, in compact and JSON output
//! alike, one event per line.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// `shrike run` with `extra`, only the process sensor, stdout and stderr piped.
fn spawn_raw(extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shrike"))
        .args(["run", "--no-file-sensor", "--no-net"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning shrike")
}

/// Forwards stderr lines to a channel (and waits for "shrike ready").
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_ready(rx: &mpsc::Receiver<String>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let ready = line.contains("shrike ready");
        seen.push(line);
        if ready {
            return seen;
        }
    }
    panic!("shrike did not become ready:\n{}", seen.join("\n"));
}

fn terminate(child: &mut Child) {
    // SAFETY: kill(2) with the pid of a child this test spawned and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

/// Whether `c` is a character a terminal acts on (C0, DEL, C1, bidi controls, U+2028/9).
fn acts_on_terminal(c: char) -> bool {
    shrike_event::text::is_unsafe_char(c) && c != '\n'
}

/// Runs `/usr/bin/env true MARKER <hostile args>` in a directory whose name holds an escape
/// sequence and a newline, under an agent writing `format`, and returns all of its stdout.
fn hostile_exec_output(format: &str, m: &str) -> String {
    let mut agent = spawn_raw(&["--output", format]);
    let errs = stderr_lines(&mut agent);
    wait_ready(&errs);
    let mut stdout = agent.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        stdout.read_to_end(&mut all).unwrap();
        all
    });
    let dir = std::env::temp_dir().join(format!("{m}-\u{1b}[2J\nfake"));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(Command::new("/usr/bin/env")
        .args([
            "true",
            m,
            "\u{1b}]0;pwned\u{7}",
            "two\nlines",
            "\u{9b}31m",
            "evil\u{202e}txt.sh",
        ])
        .current_dir(&dir)
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_secs(2));
    terminate(&mut agent);
    let status = agent.wait().unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    String::from_utf8(reader.join().unwrap()).expect("stdout is UTF-8")
}

/// Issue 19, case 6: log lines carry paths from the command line and files: a policy file
/// whose name holds an escape sequence and a bidi override is named escaped in the agent's log.
#[test]
fn log_lines_escape_control_characters() {
    if !require_root("log_lines_escape_control_characters") {
        return;
    }
    let dir = std::env::temp_dir().join(marker("log-esc"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("p\u{1b}]0;pwned\u{7}\u{202e}.yaml");
    std::fs::write(&policy, "[]").unwrap();
    let mut agent = spawn_raw(&["--policy", policy.to_str().unwrap()]);
    let errs = stderr_lines(&mut agent);
    let seen = wait_ready(&errs);
    terminate(&mut agent);
    agent.wait().unwrap();
    let log = seen.join("\n");
    assert!(!log.chars().any(acts_on_terminal), "{log:?}");
    assert!(
        log.contains("p\\u001b]0;pwned\\u0007\\u202e.yaml"),
        "the policy file is named, escaped: {log}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 19, case 6: an argv with an OSC title sequence, a newline, a C1 CSI and a bidi
/// override, run in a directory whose name clears the screen and holds a newline: the compact
/// line shows them escaped as JSON escapes them, on one line; nothing in stdout acts on a
/// terminal.
#[test]
fn compact_output_escapes_control_characters_from_args_and_paths() {
    if !require_root("compact_output_escapes_control_characters_from_args_and_paths") {
        return;
    }
    let m = marker("compact-esc");
    let out = hostile_exec_output("compact", &m);
    assert!(
        !out.chars().any(acts_on_terminal),
        "raw control characters in compact output: {out:?}"
    );
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(&m)).collect();
    let exec = lines
        .iter()
        .find(|l| l.contains("process_exec"))
        .unwrap_or_else(|| panic!("no exec line for {m}:\n{out}"));
    assert!(
        exec.contains(&format!(
            "{m} \\u001b]0;pwned\\u0007 \"two\\nlines\" \\u009b31m evil\\u202etxt.sh"
        )),
        "{exec}"
    );
    assert!(exec.contains("-\\u001b[2J\\nfake"), "cwd escaped: {exec}");
    assert!(
        !out.lines()
            .any(|l| l.starts_with("lines") || l.starts_with("fake")),
        "an event was split over two lines:\n{out}"
    );
}

/// The JSON output reads back the same strings and writes nothing a terminal acts on: JSON
/// escapes C0 controls itself, the agent also escapes DEL, C1 and the bidi controls.
#[test]
fn json_output_is_terminal_safe_and_reads_back_the_same_strings() {
    if !require_root("json_output_is_terminal_safe_and_reads_back_the_same_strings") {
        return;
    }
    let m = marker("json-esc");
    let out = hostile_exec_output("json", &m);
    assert!(
        !out.chars().any(acts_on_terminal),
        "raw control characters in JSON output: {out:?}"
    );
    let exec = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| kind_is(e, "process_exec") && has_arg(e, &m))
        .unwrap_or_else(|| panic!("no exec event for {m}:\n{out}"));
    assert_eq!(
        args(&exec)[3..],
        [
            "\u{1b}]0;pwned\u{7}",
            "two\nlines",
            "\u{9b}31m",
            "evil\u{202e}txt.sh"
        ]
    );
    assert!(exec["process"]["cwd"]
        .as_str()
        .unwrap()
        .ends_with("-\u{1b}[2J\nfake"));
}
