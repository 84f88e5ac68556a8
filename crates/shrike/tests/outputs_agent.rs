//! The outputs in the running agent (BPF: run under `flock /tmp/shrike-bpf.lock`): a
//! configuration file with stdout, a file and a webhook whose server never answers. The agent
//! keeps writing stdout and the file while the webhook's queue overflows, and reports the
//! webhook's drops in an `events_lost` event on the outputs that still work and in the
//! metrics.

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
