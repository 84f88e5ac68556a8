//! The NATS JetStream transport against Debian's real `nats-server -js`, started by each test
//! on loopback with its own store directory: what the transport said it delivered is exactly
//! what the stream holds, read back through the server's JetStream API and its monitoring
//! endpoint; redelivered batches are deduplicated; a server killed mid-stream and restarted on
//! the same store loses nothing that was acknowledged.
//!
//! Needs `nats-server` (Debian package `nats-server`, installed by `./dev deps`); under
//! `CI=true` a missing server fails the tests, elsewhere they say why and skip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shrike::outputs::nats::{NatsConfig, NatsTransport};
use shrike::outputs::transport::{Record, Transport, TransportError};

/// A `nats-server -js` on loopback with its own store, killed when dropped.
struct Server {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    monitor: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts a server, or `None` (skip) when nats-server is not installed outside CI.
    fn start(name: &str) -> Option<Server> {
        if Command::new("nats-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "nats-server is not installed: run ./dev deps (Debian package nats-server)"
            );
            eprintln!("skipping: nats-server is not installed (Debian package nats-server)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("shrike-nats-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Server {
            child: None,
            dir,
            port: free_port(),
            monitor: free_port(),
        };
        server.run();
        Some(server)
    }

    fn run(&mut self) {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-m",
                &self.monitor.to_string(),
            ])
            .arg("-sd")
            .arg(self.dir.join("store"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("server.log")).unwrap())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = ureq::get(&format!(
                "http://127.0.0.1:{}/healthz?js-enabled-only=true",
                self.monitor
            ))
            .timeout(Duration::from_secs(1))
            .call()
            .is_ok();
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not become healthy: see {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: no clean shutdown, whatever was not yet stored is gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The stream's message count as the server's monitoring endpoint reports it (`/jsz`),
    /// independently of the transport's own client.
    fn stored(&self, stream: &str) -> u64 {
        let body = ureq::get(&format!(
            "http://127.0.0.1:{}/jsz?streams=true",
            self.monitor
        ))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
        let jsz: serde_json::Value = serde_json::from_str(&body).unwrap();
        let streams = jsz["account_details"][0]["stream_detail"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let s = streams
            .iter()
            .find(|s| s["name"] == stream)
            .unwrap_or_else(|| panic!("no stream {stream} in {jsz}"));
        s["state"]["messages"].as_u64().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(server: &Server, stream: &str) -> NatsConfig {
    NatsConfig {
        url: server.url(),
        stream: stream.into(),
        subject: format!("shrike.{}", stream.to_lowercase()),
        create_stream: true,
        duplicate_window_secs: 120,
        max_age_secs: None,
        max_bytes: None,
        user: None,
        password: None,
        token: None,
        timeout_ms: 2000,
        tls: None,
    }
}

fn record(n: u64) -> Record {
    let alert = n.is_multiple_of(3);
    Record {
        line: format!(
            "{{\"kind\":\"{}\",\"n\":{n},\"text\":\"ü \\\"q\\\"\"}}",
            if alert { "alert" } else { "process_exec" }
        ),
        time_unix_ns: 1_700_000_000_000_000_000 + n * 1000,
        kind: if alert { "alert" } else { "process_exec" },
        severity: alert.then(|| Arc::from("high")),
        rule: alert.then(|| Arc::from("reverse-shell")),
    }
}

fn batch(from: u64, len: u64) -> Vec<Record> {
    (from..from + len).map(record).collect()
}

fn b64(text: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= u32::from(val(c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Three batches into a stream the transport creates: the stream holds exactly those 150
/// records, in order, on the configured subject, each with its message id and kind headers.
#[test]
fn delivered_batches_are_stored_exactly_in_a_created_stream() {
    let Some(server) = Server::start("exact") else {
        return;
    };
    let mut t = NatsTransport::new(config(&server, "EXACT")).unwrap();
    for i in 0..3 {
        t.deliver(&batch(i * 50, 50)).unwrap();
    }
    assert_eq!(server.stored("EXACT"), 150);
    let info = t.stream_info().unwrap();
    assert_eq!(info["state"]["messages"], 150, "{info}");
    assert_eq!(info["config"]["storage"], "file", "{info}");
    assert_eq!(info["config"]["subjects"][0], "shrike.exact", "{info}");
    for seq in 1..=150u64 {
        let got = t.get_message(seq).unwrap();
        let msg = &got["message"];
        let want = record(seq - 1);
        assert_eq!(msg["subject"], "shrike.exact");
        assert_eq!(
            String::from_utf8(b64(msg["data"].as_str().unwrap())).unwrap(),
            want.line
        );
        let headers = String::from_utf8(b64(msg["hdrs"].as_str().unwrap())).unwrap();
        assert!(
            headers.contains(&format!(
                "Nats-Msg-Id: {}\r\n",
                shrike::outputs::nats::msg_id(&want)
            )),
            "{headers}"
        );
        assert!(
            headers.contains(&format!("Shrike-Kind: {}\r\n", want.kind)),
            "{headers}"
        );
        if want.kind == "alert" {
            assert!(
                headers.contains("Shrike-Severity: high\r\nShrike-Rule: reverse-shell\r\n"),
                "{headers}"
            );
        }
    }
}

/// The framework redelivers a batch whose acknowledgement it did not see: the server drops
/// the copies by message id, so the stream still holds each record once.
#[test]
fn redelivered_batch_is_deduplicated_by_message_id() {
    let Some(server) = Server::start("dedup") else {
        return;
    };
    let mut t = NatsTransport::new(config(&server, "DEDUP")).unwrap();
    t.deliver(&batch(0, 40)).unwrap();
    t.deliver(&batch(0, 40)).unwrap();
    t.deliver(&batch(20, 40)).unwrap();
    assert_eq!(server.stored("DEDUP"), 60);
}

/// A stream that exists but does not capture the subject is an error that says so; a stream
/// created beforehand with a wildcard that does capture it is used as it is.
#[test]
fn existing_stream_is_checked_against_the_subject() {
    let Some(server) = Server::start("verify") else {
        return;
    };
    let mut creator = NatsTransport::new(NatsConfig {
        subject: "other.events".into(),
        ..config(&server, "VERIFY")
    })
    .unwrap();
    creator.deliver(&batch(0, 1)).unwrap();
    let mut wrong = NatsTransport::new(NatsConfig {
        create_stream: false,
        ..config(&server, "VERIFY")
    })
    .unwrap();
    match wrong.deliver(&batch(1, 1)) {
        Err(TransportError::Retry(e)) => {
            assert!(e.contains("captures") && e.contains("shrike.verify"), "{e}")
        }
        other => panic!("expected a subject mismatch, got {other:?}"),
    }
    let mut missing = NatsTransport::new(NatsConfig {
        create_stream: false,
        ..config(&server, "ABSENT")
    })
    .unwrap();
    match missing.deliver(&batch(1, 1)) {
        Err(TransportError::Retry(e)) => assert!(e.contains("does not exist"), "{e}"),
        other => panic!("expected a missing stream error, got {other:?}"),
    }
    assert_eq!(server.stored("VERIFY"), 1);
}

/// A record larger than the server's max_payload (1 MiB) is rejected, not retried forever,
/// and the connection stays usable for the next batch.
#[test]
fn oversized_record_is_rejected() {
    let Some(server) = Server::start("big") else {
        return;
    };
    let mut t = NatsTransport::new(config(&server, "BIG")).unwrap();
    let big = Record {
        line: "x".repeat(2 * 1024 * 1024),
        ..record(1)
    };
    assert!(matches!(
        t.deliver(&[big]),
        Err(TransportError::Rejected(_))
    ));
    t.deliver(&batch(0, 5)).unwrap();
    assert_eq!(server.stored("BIG"), 5);
}

/// The server is killed (SIGKILL) twice by another thread while batches stream in (at
/// whatever point of a batch it is) and restarted on the same store: deliveries fail with Retry
/// meanwhile, the transport reconnects, and the stream ends up holding exactly the records
/// delivered Ok — none lost after Ok, none stored twice.
#[test]
fn server_killed_mid_stream_loses_nothing_acknowledged() {
    let Some(server) = Server::start("kill") else {
        return;
    };
    let mut t = NatsTransport::new(NatsConfig {
        timeout_ms: 1000,
        ..config(&server, "KILL")
    })
    .unwrap();
    let server = Arc::new(std::sync::Mutex::new(server));
    let killer = {
        let server = server.clone();
        std::thread::spawn(move || {
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(400));
                server.lock().unwrap().kill();
                std::thread::sleep(Duration::from_millis(700));
                server.lock().unwrap().run();
            }
        })
    };
    let (mut next, mut retries) = (0u64, 0u32);
    while !killer.is_finished() || next < 2000 {
        let b = batch(next, 20);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match t.deliver(&b) {
                Ok(()) => break,
                Err(TransportError::Retry(e)) => {
                    retries += 1;
                    assert!(Instant::now() < deadline, "never recovered: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("{e}"),
            }
        }
        next += 20;
    }
    killer.join().unwrap();
    eprintln!("delivered {next} records Ok with {retries} retries across two kills");
    assert!(retries >= 2, "the kills did not interrupt any delivery");
    let server = server.lock().unwrap();
    assert_eq!(server.stored("KILL"), next);
    assert_eq!(t.stream_info().unwrap()["state"]["last_seq"], next);
}
