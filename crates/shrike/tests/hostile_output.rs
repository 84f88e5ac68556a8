//! Hostile text and hostile readers against the agent's outputs (issue 19): what an attacker
//! puts in argv or a directory name reaches the terminal escaped, in compact and JSON output
//! alike, one event per line.

mod common;

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use common::raw::RawAgent;
use common::*;

/// Whether `c` is a character a terminal acts on (C0, DEL, C1, bidi controls, U+2028/9).
fn acts_on_terminal(c: char) -> bool {
    shrike_event::text::is_unsafe_char(c) && c != '\n'
}

/// Runs `/usr/bin/env true MARKER <hostile args>` in a directory whose name holds an escape
/// sequence and a newline, under an agent writing `format`, and returns all of its stdout.
fn hostile_exec_output(format: &str, m: &str) -> String {
    let mut agent = RawAgent::start(&["--output", format]);
    let mut stdout = agent.stdout();
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
    let (status, log) = agent.stop();
    assert!(
        status.success(),
        "{status:?}; the agent's log:\n{}",
        log.join("\n")
    );
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
    let agent = RawAgent::start(&["--policy", policy.to_str().unwrap()]);
    let (_, log) = agent.stop();
    let log = log.join("\n");
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

/// Runs `n` processes (`/usr/bin/true MARKER`) from two parallel shell loops.
fn burst(n: usize, m: &str) {
    let script = format!(
        "burst() {{ i=0; while [ $i -lt {half} ]; do /usr/bin/true {m}; i=$((i+1)); done; }}; burst & burst & wait",
        half = n / 2
    );
    assert!(Command::new("bash")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap()
        .success());
}

/// Issue 19, case 4: two agents whose stdout is held by a reader that never reads, during a
/// 5,000-process burst: each logs the events it drops while blocked as it happens, and each
/// exits within a second of SIGTERM (one) and SIGINT (the other), successfully.
#[test]
fn signals_are_honoured_within_a_second_while_stdout_is_blocked() {
    if !require_root("signals_are_honoured_within_a_second_while_stdout_is_blocked") {
        return;
    }
    let m = marker("blocked");
    let mut agents = Vec::new();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut agent = RawAgent::start(&[]);
        // The pipe's read end stays open and is never read.
        let held = agent.stdout();
        agents.push((signal, agent, held));
    }
    burst(5_000, &m);
    for (_, agent, _) in &mut agents {
        assert!(
            agent.wait_log("the output is not taking events", Duration::from_secs(10)),
            "no loss logged while the output was blocked:\n{}",
            agent.log().join("\n")
        );
    }
    for (signal, mut agent, held) in agents {
        let sent = Instant::now();
        agent.signal(signal);
        let status = loop {
            if let Some(status) = agent.try_wait() {
                break status;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(10),
                "signal {signal} ignored while stdout was blocked"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = sent.elapsed();
        agent.wait_log("final counters", Duration::from_secs(2));
        let seen = agent.log();
        eprintln!("signal {signal} with stdout blocked: exited in {took:?}");
        assert!(status.success(), "{status:?}:\n{}", seen.join("\n"));
        assert!(
            took < Duration::from_secs(1),
            "signal {signal}: exit took {took:?}:\n{}",
            seen.join("\n")
        );
        assert!(
            seen.iter()
                .any(|l| l.contains("output_dropped=") && !l.contains("output_dropped=0")),
            "the final counters count what the output dropped:\n{}",
            seen.join("\n")
        );
        drop(held);
    }
}

/// Issue 19, case 4: behind a reader that holds stdout during a burst and then drains it, the
/// stall is logged while it lasts, the records dropped meanwhile (by the kernel once the ring
/// buffer is full, `ringbuf_full`, or by the agent, `pipeline_full`) are reported in the stream
/// as `events_lost` once the output reads again, and what was delivered plus what was reported
/// lost covers the burst.
#[test]
fn loss_while_the_output_is_blocked_is_reported_in_the_stream_once_it_drains() {
    if !require_root("loss_while_the_output_is_blocked_is_reported_in_the_stream_once_it_drains") {
        return;
    }
    const N: usize = 5_000;
    let gate = Gate::default();
    // A 1 MiB ring buffer, so that the burst overflows it behind the held output.
    let agent = Agent::start_gated(
        &["--no-file-sensor", "--no-net", "--ring-buffer-mb", "1"],
        Some(gate.clone()),
    );
    let m = marker("drain");
    burst(N, &m);
    let logged = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        agent.stderr().contains("the output is not taking events")
    });
    assert!(logged, "no loss logged while blocked:\n{}", agent.stderr());
    gate.open();
    let lost = |evs: &[serde_json::Value]| -> u64 {
        evs.iter()
            .filter(|e| kind_is(e, "events_lost"))
            .map(|e| {
                e["lost"]["pipeline_full"].as_u64().unwrap_or(0)
                    + e["lost"]["ringbuf_full"].as_u64().unwrap_or(0)
            })
            .sum()
    };
    assert!(
        agent.wait_all(Duration::from_secs(30), |evs| lost(evs) > 0),
        "no events_lost once the output drained:\n{}",
        agent.stderr()
    );
    let (status, stderr, all) = agent.stop_and_collect();
    assert!(status.success(), "{stderr}");
    let execs = all
        .iter()
        .filter(|e| kind_is(e, "process_exec") && has_arg(e, &m))
        .count();
    let exits = all
        .iter()
        .filter(|e| kind_is(e, "process_exit") && e["process"]["binary"] == "/usr/bin/true")
        .count();
    let lost = lost(&all);
    eprintln!("burst of {N} behind a held stdout: {execs} execs and {exits} exits delivered, {lost} events reported lost");
    assert!(execs < N, "a held stdout must make the agent drop events");
    assert!(
        stderr.contains("the kernel dropped records") || stderr.contains("events dropped"),
        "the loss was logged: {stderr}"
    );
    assert!(
        (execs + exits) as u64 + lost >= 2 * N as u64,
        "{execs} execs + {exits} exits + {lost} lost < {}",
        2 * N
    );
}
