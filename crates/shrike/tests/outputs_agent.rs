//! The outputs in the running agent (BPF: run under `flock /tmp/shrike-bpf.lock`): a
//! configuration file with stdout, a file and a webhook whose server never answers. The agent
//! keeps writing stdout and the file while the webhook's queue overflows, and reports the
//! webhook's drops in an `events_lost` event on the outputs that still work and in the
//! metrics. A held stdout beside a file output drops instead of holding the file back.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// A dead webhook neither stalls the agent nor the other outputs: every marker exec reaches
/// stdout and the file, and the webhook's drops arrive, counted by name, as
/// `lost.outputs.deadhook` in an `events_lost` event on both.
#[test]
fn a_dead_webhook_output_is_reported_on_the_outputs_that_work() {
    if !require_root("a_dead_webhook_output_is_reported_on_the_outputs_that_work") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.json");
    // Connections complete in the backlog; nothing is ever answered.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = dir.path().join("shrike.yaml");
    std::fs::write(
        &config,
        format!(
            "outputs:\n  - type: stdout\n  - type: file\n    path: {}\n    batch: {{max_delay_ms: 50}}\n  - type: webhook\n    name: deadhook\n    url: http://{}/hook\n    queue: 5\n    timeout_ms: 500\n    batch: {{max_events: 5, max_delay_ms: 10}}\n",
            file.display(),
            black_hole.local_addr().unwrap()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let agent =
        Agent::start_process_only(&["--config", config.to_str().unwrap(), "--metrics", &metrics]);
    let mark = marker("dead-webhook");
    for i in 0..40 {
        let ok = Command::new("/bin/sh")
            .args(["-c", &format!("/usr/bin/true {mark}-{i}")])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
    let report = agent.wait_for("events_lost for deadhook", Duration::from_secs(20), |e| {
        kind_is(e, "events_lost")
            && e["lost"]["outputs"]["deadhook"]
                .as_u64()
                .is_some_and(|n| n > 0)
    });
    let execs = |events: &[serde_json::Value]| {
        events
            .iter()
            .filter(|e| kind_is(e, "process_exec") && args(e).iter().any(|a| a.starts_with(&mark)))
            .count()
    };
    assert!(agent.wait_all(Duration::from_secs(10), |events| execs(events) == 40));
    // The same drops in the metrics, per output and reason.
    let scrape = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&metrics).unwrap();
        c.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        text
    };
    let value = |prefix: &str| -> f64 {
        scrape
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in:\n{scrape}"))
    };
    assert!(value("shrike_output_dropped_total{output=\"deadhook\",type=\"webhook\",reason=\"queue_full\"}") > 0.0);
    assert!(value("shrike_output_sent_total{output=\"file\",type=\"file\"}") >= 40.0);
    assert!(value("shrike_output_sent_total{output=\"stdout\",type=\"stdout\"}") >= 40.0);
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("outputs dropped events"), "{stderr}");

    let written: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(execs(&written), 40, "the file output got every marker exec");
    assert!(
        written
            .iter()
            .any(|e| kind_is(e, "events_lost") && e["lost"]["outputs"] == report["lost"]["outputs"]),
        "the file output got the drop report {report}"
    );
    drop(black_hole);
}

/// Beside another output, a stdout nobody reads is one output among others: it drops what it
/// has no room for (reported as `pipeline_full`) instead of holding the pipeline back, so the
/// file output receives every exec of a 4,000-process burst while stdout is held.
#[test]
fn a_held_stdout_does_not_starve_the_file_output() {
    if !require_root("a_held_stdout_does_not_starve_the_file_output") {
        return;
    }
    const N: usize = 4000;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.json");
    let config = dir.path().join("shrike.yaml");
    std::fs::write(
        &config,
        format!(
            "outputs:\n  - type: stdout\n  - type: file\n    path: {}\n    queue: 100000\n    batch: {{max_events: 1000, max_delay_ms: 50}}\n",
            file.display()
        ),
    )
    .unwrap();
    let gate = Gate::default();
    let agent = Agent::start_gated(
        &[
            "--no-file-sensor",
            "--no-net",
            "--config",
            config.to_str().unwrap(),
        ],
        Some(gate.clone()),
    );
    let mark = marker("held-stdout");
    let ok = Command::new("/bin/sh")
        .args([
            "-c",
            &format!("i=0; while [ $i -lt {N} ]; do /usr/bin/true {mark}; i=$((i+1)); done"),
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let in_file = || -> (usize, u64) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let events: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let execs = events
            .iter()
            .filter(|e| kind_is(e, "process_exec") && has_arg(e, &mark))
            .count();
        let stdout_lost = events
            .iter()
            .filter(|e| kind_is(e, "events_lost"))
            .map(|e| e["lost"]["pipeline_full"].as_u64().unwrap_or(0))
            .sum();
        (execs, stdout_lost)
    };
    let mut got = (0, 0);
    for _ in 0..300 {
        got = in_file();
        if got.0 == N && got.1 > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    gate.open();
    let (status, stderr) = agent.stop();
    eprintln!(
        "stdout held: the file got {} of {N} execs; stdout dropped {}",
        got.0, got.1
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(got.0, N, "the file output got every exec:\n{stderr}");
    assert!(got.1 > 0, "stdout's drops are reported on the file output");
}
