//! The Prometheus endpoint against the real agent and a real Prometheus: Debian's
//! `prometheus`, started by the test on loopback with its own configuration and storage,
//! scrapes the agent every second; the test asks Prometheus's query API for the series and
//! checks their values against what it made happen (alerts of a marker rule, suppressed
//! repeats, policy reloads), not just that they exist.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A free loopback port (bound, read and released: good enough on loopback).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP GET on loopback; the body.
fn http_get(port: u16, target: &str) -> Option<String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(conn, "GET {target} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.")
        .then(|| body.to_string())
        .filter(|_| head.contains(" 200 "))
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server scraping one target, killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target: &str) -> Prometheus {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: shrike\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("running prometheus (Debian package `prometheus`; ./dev deps installs it)");
        let p = Prometheus {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(port, "/-/ready").is_none() {
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The instant vector for `query`: (labels, value) per series.
    fn query(&self, query: &str) -> Vec<(Value, f64)> {
        let body = http_get(
            self.port,
            &format!("/api/v1/query?query={}", url_encode(query)),
        )
        .unwrap_or_else(|| panic!("query {query} failed"));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{v}");
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let value = s["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                (s["metric"].clone(), value)
            })
            .collect()
    }

    /// Waits until `query` has one series whose value satisfies `ok`; returns the value.
    fn wait_value(&self, query: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(45);
        let mut last = Vec::new();
        while Instant::now() < deadline {
            last = self.query(query);
            if let [(_, v)] = last.as_slice() {
                if ok(*v) {
                    return *v;
                }
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "{query}: last answer {last:?}; prometheus log:\n{}",
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn marker_rule(id: &str, binary: &Path) -> String {
    format!(
        "- rule: Metrics marker {id}\n  id: {id}\n  severity: high\n  mitre: [T1059]\n  condition: kind = process_exec and process.binary = {}\n  action: alert\n  throttle: 5/min\n",
        binary.display()
    )
}

/// The issue's check: Prometheus scrapes the agent and its query API returns the series with
/// the values the test caused — 8 execs under a marker rule throttled to 5 a minute (and no
/// deduplication): 5 alerts and 3 suppressed by the throttle, an incident, policy generation 1 → 2 on a good reload
/// and a failure counted (generation unchanged) on a bad one — and the health series: the
/// process capability's state, RSS, the ring buffer's size, the kernel's exec counter.
#[test]
fn prometheus_scrapes_the_values_the_agent_produced() {
    if !require_root("prometheus_scrapes_the_values_the_agent_produced") {
        return;
    }
    let dir = std::env::temp_dir().join(marker("metrics"));
    std::fs::create_dir_all(&dir).unwrap();
    let marker_bin = dir.join("metrics-marker");
    std::fs::copy("/usr/bin/true", &marker_bin).unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, marker_rule("TEST-METRICS-1", &marker_bin)).unwrap();
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let socket = dir.join("api.sock");
    let agent = Agent::start_process_only(&[
        "--metrics",
        &metrics,
        "--api-socket",
        socket.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--incident-update",
        "1",
        "--dedup-window",
        "0",
    ]);
    let prom = Prometheus::start(&dir, &metrics);
    prom.wait_value(r#"up{job="shrike"}"#, |v| v == 1.0);

    for i in 0..8 {
        Command::new(&marker_bin)
            .arg(format!("m{i}"))
            .status()
            .unwrap();
    }
    let alerts = r#"shrike_alerts_total{rule="TEST-METRICS-1",severity="high"}"#;
    assert_eq!(prom.wait_value(alerts, |v| v >= 5.0), 5.0);
    let suppressed = r#"shrike_alerts_suppressed_total{rule="TEST-METRICS-1",reason="throttle"}"#;
    assert_eq!(prom.wait_value(suppressed, |v| v >= 3.0), 3.0);
    prom.wait_value("shrike_incidents_total", |v| v >= 1.0);
    // Every exec reached the pipeline: at least 8 of the marker's, counted by kind.
    prom.wait_value(r#"shrike_events_total{kind="process_exec"}"#, |v| v >= 8.0);
    prom.wait_value(r#"shrike_kernel_seen_total{kind="exec"}"#, |v| v >= 8.0);
    prom.wait_value(
        r#"shrike_capability_state{capability="process_events",state="ok"}"#,
        |v| v == 1.0,
    );
    let rss = prom.wait_value("process_resident_memory_bytes", |v| v > 0.0);
    prom.wait_value("shrike_ringbuf_size_bytes", |v| v == 16.0 * 1024.0 * 1024.0);
    prom.wait_value("shrike_ringbuf_used_bytes", |v| v >= 0.0);
    prom.wait_value("shrike_process_tree_processes{state=\"live\"}", |v| v > 1.0);
    prom.wait_value("shrike_kernel_records_lost_total", |v| v >= 0.0);
    prom.wait_value("shrike_policy_generation", |v| v == 1.0);

    // A good reload (SIGHUP): generation 2, one success.
    std::fs::write(
        &policy,
        format!(
            "{}{}",
            marker_rule("TEST-METRICS-1", &marker_bin),
            marker_rule("TEST-METRICS-2", Path::new("/nonexistent/x"))
        ),
    )
    .unwrap();
    // SAFETY: kill with the pid of the agent this test started.
    unsafe { libc::kill(agent.pid() as i32, libc::SIGHUP) };
    prom.wait_value("shrike_policy_generation", |v| v == 2.0);
    prom.wait_value(r#"shrike_policy_reloads_total{result="success"}"#, |v| {
        v == 1.0
    });
    // A bad one: refused, counted, generation unchanged.
    std::fs::write(&policy, "- rule: broken\n  condition: kind = \n").unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(agent.pid() as i32, libc::SIGHUP) };
    prom.wait_value(r#"shrike_policy_reloads_total{result="failure"}"#, |v| {
        v == 1.0
    });
    assert_eq!(prom.query("shrike_policy_generation")[0].1, 2.0);

    // The exposition itself: HELP and TYPE for every family, the format's content type.
    let text = http_get(port, "/metrics").unwrap();
    assert!(
        text.contains("# TYPE shrike_alerts_total counter\n"),
        "{text}"
    );
    assert!(text.contains("# HELP shrike_ringbuf_used_bytes "), "{text}");
    eprintln!(
        "prometheus saw: alerts 5, suppressed by throttle 3, rss {rss} bytes, {} series from the agent",
        prom.query(r#"{job="shrike"}"#).len()
    );
    drop(prom);
    drop(agent);
    std::fs::remove_dir_all(&dir).unwrap();
}
