//! A 10,000-process fork burst, in a test binary of its own so the burst does not flood the
//! agents of other tests: every exec is delivered, or the shortfall is reported as lost in the
//! stream, and the agent keeps working afterwards.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const BURST: usize = 10_000;

#[test]
fn fork_burst_of_ten_thousand_is_delivered_or_counted_and_the_agent_recovers() {
    if !require_root("fork_burst_of_ten_thousand_is_delivered_or_counted_and_the_agent_recovers") {
        return;
    }
    let agent = Agent::start(&[]);
    let m = marker("burst");
    // Two parallel loops of 5,000 forks each, every child exec'ing true with the marker.
    let script = format!(
        "burst() {{ i=0; while [ $i -lt {half} ]; do /usr/bin/true {m}; i=$((i+1)); done; }}; burst & burst & wait",
        half = BURST / 2
    );
    let started = std::time::Instant::now();
    assert!(Command::new("bash")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap()
        .success());
    let burst_secs = started.elapsed().as_secs_f64();

    let count = |evs: &[serde_json::Value]| {
        evs.iter()
            .filter(|e| kind_is(e, "process_exec") && has_arg(e, &m))
            .count()
    };
    let lost = |evs: &[serde_json::Value]| -> u64 {
        evs.iter()
            .filter(|e| kind_is(e, "events_lost"))
            .map(|e| e["lost"]["ringbuf_full"].as_u64().unwrap_or(0))
            .sum()
    };
    agent.wait_all(Duration::from_secs(60), |evs| {
        count(evs) as u64 + lost(evs) >= BURST as u64
    });
    let execs = agent.events(|e| kind_is(e, "process_exec") && has_arg(e, &m));
    let lost_events = agent.events(|e| kind_is(e, "events_lost"));
    let lost: u64 = lost_events
        .iter()
        .map(|e| e["lost"]["ringbuf_full"].as_u64().unwrap_or(0))
        .sum();
    eprintln!("burst of {BURST} in {burst_secs:.1} s: {} exec events delivered, {lost} records reported lost", execs.len());
    assert!(
        execs.len() == BURST || (execs.len() as u64) + lost >= BURST as u64,
        "{} of {BURST} execs delivered and only {lost} reported lost",
        execs.len()
    );
    // Every delivered exec has its full context.
    for e in &execs {
        assert_eq!(e["process"]["binary"], "/usr/bin/true");
        assert_eq!(e["parent"]["binary"], "/usr/bin/bash", "{e}");
    }

    // The agent still works: a new process after the burst is seen with its ancestry.
    let after = marker("after-burst");
    assert!(Command::new("/usr/bin/env")
        .arg("true")
        .arg(&after)
        .status()
        .unwrap()
        .success());
    let e = agent.wait_for("exec after the burst", WAIT, |e| {
        kind_is(e, "process_exec") && has_arg(e, &after)
    });
    assert_eq!(e["ancestors"][0]["pid"], std::process::id());
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{stderr}");
}

/// Behind a consumer that stops reading, events are dropped — by the agent once its output
/// queue is full (`pipeline_full`), or by the kernel if the ring fills first (`ringbuf_full`):
/// every drop is counted, logged, and reported in the stream as `events_lost`, and what was
/// delivered plus what was reported lost covers the burst.
#[test]
fn a_stalled_consumer_makes_loss_that_is_counted_and_reported() {
    if !require_root("a_stalled_consumer_makes_loss_that_is_counted_and_reported") {
        return;
    }
    const N: usize = 3000;
    let gate = Gate::default();
    let agent = Agent::start_gated(&["--ring-buffer-mb", "1"], Some(gate.clone()));
    let m = marker("stall");
    let script = format!("i=0; while [ $i -lt {N} ]; do /usr/bin/true {m}; i=$((i+1)); done");
    assert!(Command::new("bash")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap()
        .success());
    gate.open();

    let count = |evs: &[serde_json::Value]| {
        evs.iter()
            .filter(|e| kind_is(e, "process_exec") && has_arg(e, &m))
            .count()
    };
    let lost = |evs: &[serde_json::Value]| -> u64 {
        evs.iter()
            .filter(|e| kind_is(e, "events_lost"))
            .map(|e| {
                e["lost"]["ringbuf_full"].as_u64().unwrap_or(0)
                    + e["lost"]["pipeline_full"].as_u64().unwrap_or(0)
            })
            .sum()
    };
    // The loss is reported within the agent's loss-check period once it can write again.
    agent.wait_all(Duration::from_secs(60), |evs| lost(evs) > 0);
    // Stopping drains everything the ring and the pipeline still hold.
    let (status, stderr, all) = agent.stop_and_collect();
    assert!(status.success(), "{stderr}");
    let (delivered, lost) = (count(&all), lost(&all));
    eprintln!("stalled consumer, {N} execs into a 1 MiB ring: {delivered} delivered, {lost} records reported lost");
    assert!(
        lost > 0,
        "a stalled consumer must make the agent drop some of {N} execs"
    );
    assert!(delivered < N, "some execs were lost");
    assert!(
        delivered as u64 + lost >= N as u64,
        "{delivered} delivered + {lost} lost < {N}"
    );
    assert!(
        stderr.contains("ring buffer full") || stderr.contains("the output is not taking events"),
        "the loss is also logged: {stderr}"
    );
}
