//! The NATS JetStream transport against Debian's real `nats-server -js`, started by each test
//! on loopback with its own store directory: what the transport said it delivered is exactly
//! what the stream holds, read back through the server's JetStream API and its monitoring
//! endpoint; redelivered batches are deduplicated; a server killed mid-stream and restarted on
//! the same store loses nothing that was acknowledged.
//!
//! Needs `nats-server` (Debian package `nats-server`, installed by `./dev deps`); under
//! `CI=true` a missing server fails the tests, elsewhere they say why and skip.

#[path = "outputs_support/restarts.rs"]
mod restarts;

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
    /// Extra nats-server configuration (TLS, authorization), written to `server.conf`.
    conf: String,
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
        Server::start_with(name, |_| String::new())
    }

    /// Starts a server whose configuration file is what `conf` writes for its directory.
    fn start_with(name: &str, conf: impl FnOnce(&std::path::Path) -> String) -> Option<Server> {
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
        let conf = conf(&dir);
        let mut server = Server {
            child: None,
            dir,
            port: free_port(),
            monitor: free_port(),
            conf,
        };
        server.run();
        Some(server)
    }

    fn run(&mut self) {
        let conf = self.dir.join("server.conf");
        std::fs::write(&conf, &self.conf).unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
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
        credentials: None,
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
        )
        .into(),
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

/// The stream limits a user writes under `outputs:` reach the stream the transport creates:
/// the configuration file's entry, read as `run` reads it, becomes the stream's
/// `max_bytes`, `max_age` and `duplicate_window`.
#[test]
fn stream_settings_from_the_configuration_file_shape_the_created_stream() {
    let Some(server) = Server::start("limits") else {
        return;
    };
    let yaml = format!(
        "outputs:\n  - type: nats\n    address: {}\n    stream: LIMITS\n    subject: shrike.limits\n    max_bytes: 1048576\n    max_age_secs: 3600\n    duplicate_window_secs: 7\n",
        server.url()
    );
    let path = std::path::Path::new("shrike.yaml");
    let file = shrike::config_file::parse(path, &yaml).unwrap();
    shrike::config_file::check_outputs(path, &file).unwrap();
    let output = &file.outputs.as_ref().unwrap()[0];
    let mut t = NatsTransport::new(NatsConfig::from_output(output).unwrap()).unwrap();
    t.deliver(&batch(0, 3)).unwrap();
    let info = t.stream_info().unwrap();
    assert_eq!(info["config"]["max_bytes"], 1_048_576, "{info}");
    assert_eq!(info["config"]["max_age"], 3_600_000_000_000u64, "{info}");
    assert_eq!(
        info["config"]["duplicate_window"], 7_000_000_000u64,
        "{info}"
    );
    assert_eq!(info["state"]["messages"], 3, "{info}");

    // `create_stream: false` against a missing stream: the delivery fails, naming the fix.
    let yaml = format!(
        "outputs:\n  - type: nats\n    address: {}\n    stream: ABSENT\n    subject: shrike.absent\n    create_stream: false\n",
        server.url()
    );
    let file = shrike::config_file::parse(path, &yaml).unwrap();
    let output = &file.outputs.as_ref().unwrap()[0];
    let mut t = NatsTransport::new(NatsConfig::from_output(output).unwrap()).unwrap();
    let err = format!("{:?}", t.deliver(&batch(0, 1)).unwrap_err());
    assert!(
        err.contains("stream ABSENT does not exist and create_stream is off"),
        "{err}"
    );
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
        line: "x".repeat(2 * 1024 * 1024).into(),
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
    let drill = restarts::deliver_across_two_restarts(
        &server,
        &mut t,
        (Duration::from_millis(400), Duration::from_millis(700)),
        batch,
    );
    let next = drill.delivered;
    let server = server.lock().unwrap();
    assert_eq!(server.stored("KILL"), next);
    assert_eq!(t.stream_info().unwrap()["state"]["last_seq"], next);
}

/// A loopback TCP proxy in front of the server that, when armed, cuts the connection as the
/// first JetStream acknowledgement passes: the server stored records whose acks never arrive.
struct AckCutter {
    port: u16,
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl AckCutter {
    fn start(upstream: u16) -> AckCutter {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let flag = armed.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let server = std::net::TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                });
                let flag = flag.clone();
                std::thread::spawn(move || {
                    let (mut s_in, mut c_out) = (server, client);
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = match s_in.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let chunk = &buf[..n];
                        if flag.load(Ordering::SeqCst) && chunk.windows(6).any(|w| w == b"\"seq\":")
                        {
                            flag.store(false, Ordering::SeqCst);
                            let _ = s_in.shutdown(std::net::Shutdown::Both);
                            let _ = c_out.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        if c_out.write_all(chunk).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        AckCutter { port, armed }
    }
}

/// The connection is cut as the acknowledgements come back, after the server stored records
/// of the batch: the delivery is a Retry, and redelivering the whole batch leaves each record
/// stored once (the server recognises the message ids), with no sequence numbers spent on
/// copies.
#[test]
fn lost_acknowledgements_redelivered_are_stored_once() {
    let Some(server) = Server::start("lostack") else {
        return;
    };
    let cutter = AckCutter::start(server.port);
    let mut t = NatsTransport::new(NatsConfig {
        url: format!("nats://127.0.0.1:{}", cutter.port),
        ..config(&server, "LOSTACK")
    })
    .unwrap();
    t.deliver(&batch(0, 10)).unwrap();
    cutter
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let b = batch(10, 200);
    match t.deliver(&b) {
        Err(TransportError::Retry(_)) => {}
        other => panic!("a cut connection must be a retry, got {other:?}"),
    }
    let before = server.stored("LOSTACK");
    assert!(
        before > 10,
        "the server stored none of the batch before the cut ({before})"
    );
    t.deliver(&b).unwrap();
    assert_eq!(server.stored("LOSTACK"), 210);
    assert_eq!(t.stream_info().unwrap()["state"]["last_seq"], 210);
}

/// Writes a CA and a server certificate for 127.0.0.1 signed by it (openssl), returning the
/// paths of the CA certificate, the server certificate and its key.
fn make_certs(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=shrike test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// A server that requires TLS: with `tls://` or plain `nats://` (upgraded because the server
/// asks for it) and the test CA as `tls.ca_file`, records arrive; without the CA the server's
/// certificate is refused (a retry that names the problem) and nothing is sent.
#[test]
fn tls_server_is_reached_with_its_ca_and_refused_without() {
    let certs = std::env::temp_dir().join(format!("shrike-nats-tls-certs-{}", std::process::id()));
    let (ca, cert, key) = make_certs(&certs);
    let Some(server) = Server::start_with("tls", |_| {
        format!("tls {{\n  cert_file: {cert:?}\n  key_file: {key:?}\n}}\n")
    }) else {
        return;
    };
    let tls = Some(shrike::outputs::tls::TlsConfig {
        ca_file: Some(ca.clone()),
        cert_file: None,
        key_file: None,
    });
    let mut t = NatsTransport::new(NatsConfig {
        url: format!("tls://127.0.0.1:{}", server.port),
        tls: tls.clone(),
        ..config(&server, "TLS")
    })
    .unwrap();
    t.deliver(&batch(0, 30)).unwrap();
    let mut upgraded = NatsTransport::new(NatsConfig {
        tls,
        ..config(&server, "TLS")
    })
    .unwrap();
    upgraded.deliver(&batch(30, 30)).unwrap();
    assert_eq!(server.stored("TLS"), 60);
    let mut untrusting = NatsTransport::new(NatsConfig {
        url: format!("tls://127.0.0.1:{}", server.port),
        ..config(&server, "TLS")
    })
    .unwrap();
    match untrusting.deliver(&batch(60, 1)) {
        Err(TransportError::Retry(e)) => assert!(e.to_lowercase().contains("certificate"), "{e}"),
        other => panic!("expected a certificate error, got {other:?}"),
    }
    assert_eq!(server.stored("TLS"), 60);
    let _ = std::fs::remove_dir_all(&certs);
}

/// Encodes a user nkey seed the way nkeys does (base32 of prefix, seed and CRC-16/XMODEM),
/// independently of the transport's decoder.
fn user_seed(raw: [u8; 32]) -> String {
    // The seed marker (18 << 3) and the user type (20 << 3) split over two bytes.
    let mut bytes = vec![(18u8 << 3) | ((20u8 << 3) >> 5), ((20u8 << 3) & 31) << 3];
    bytes.extend_from_slice(&raw);
    let mut crc = 0u16;
    for &b in &bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    bytes.extend_from_slice(&crc.to_le_bytes());
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut acc, mut bits) = (String::new(), 0u32, 0);
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(A[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(A[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A server that admits one nkey user: the transport signs the server's nonce with the seed
/// from `credentials` and delivers; a seed the server does not know is refused.
#[test]
fn nkey_credentials_sign_the_server_nonce() {
    let dir = std::env::temp_dir().join(format!("shrike-nkeys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (good, bad) = (dir.join("good.nk"), dir.join("bad.nk"));
    std::fs::write(&good, user_seed([0x5a; 32])).unwrap();
    std::fs::write(&bad, user_seed([0xa5; 32])).unwrap();
    let public = shrike::outputs::nats::nkey::Credentials::load(&good)
        .unwrap()
        .public_key();
    assert!(public.starts_with('U') && public.len() == 56, "{public}");
    let Some(server) = Server::start_with("nkey", |_| {
        format!("authorization {{\n  users = [ {{ nkey: {public} }} ]\n}}\n")
    }) else {
        return;
    };
    let mut t = NatsTransport::new(NatsConfig {
        credentials: Some(good),
        ..config(&server, "NKEY")
    })
    .unwrap();
    t.deliver(&batch(0, 7)).unwrap();
    assert_eq!(t.stream_info().unwrap()["state"]["messages"], 7);
    let mut stranger = NatsTransport::new(NatsConfig {
        credentials: Some(bad),
        ..config(&server, "NKEY")
    })
    .unwrap();
    match stranger.deliver(&batch(7, 1)) {
        Err(TransportError::Retry(e)) => assert!(e.contains("Authorization Violation"), "{e}"),
        other => panic!("expected an authorization error, got {other:?}"),
    }
    let mut anonymous = NatsTransport::new(config(&server, "NKEY")).unwrap();
    assert!(matches!(
        anonymous.deliver(&batch(7, 1)),
        Err(TransportError::Retry(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Through the output framework: a `type: nats` output built from its YAML by
/// `build_transport`, run by a worker (queue, batches, backoff) while the server is killed
/// and restarted; after the worker finishes, the stream holds exactly what the worker counts
/// as sent, and sent plus dropped is every record offered.
#[test]
fn framework_output_counts_match_the_stream_across_a_restart() {
    use shrike::outputs::{build_transport, OutputConfig, OutputStats, Worker, WorkerOptions};
    let Some(server) = Server::start("framework") else {
        return;
    };
    let yaml = format!(
        "type: nats\naddress: nats://127.0.0.1:{}\nstream: FRAMEWORK\nsubject: shrike.framework\n\
         timeout_ms: 1000\nqueue: 100000\nbatch: {{max_events: 50, max_delay_ms: 20}}\n\
         retry: {{initial_ms: 50, max_ms: 200}}\n",
        server.port
    );
    let config: OutputConfig = serde_yaml::from_str(&yaml).unwrap();
    assert!(config.check().is_empty(), "{:?}", config.check());
    let transport = build_transport(&config).unwrap();
    let stats = Arc::new(OutputStats::new("nats", "nats"));
    let options = WorkerOptions {
        queue: config.queue,
        batch: config.batch,
        retry: config.retry,
    };
    let worker = Worker::start(transport, options, stats.clone()).unwrap();
    let server = Arc::new(std::sync::Mutex::new(server));
    let killer = {
        let server = server.clone();
        std::thread::spawn(move || {
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(600));
                server.lock().unwrap().kill();
                std::thread::sleep(Duration::from_millis(400));
                server.lock().unwrap().run();
            }
        })
    };
    let mut offered = 0u64;
    while !killer.is_finished() || offered < 3000 {
        worker.offer(record(offered));
        offered += 1;
        if offered.is_multiple_of(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    killer.join().unwrap();
    restarts::drain(worker, &stats, offered);
    let server = server.lock().unwrap();
    let (sent, dropped) = (stats.sent(), stats.dropped());
    let errors = stats.errors.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("offered {offered}, sent {sent}, dropped {dropped}, failed deliveries {errors}");
    assert!(errors > 0, "the kills did not interrupt any delivery");
    assert_eq!(sent + dropped, offered);
    assert_eq!(dropped, 0, "a large queue and a 20 s grace lose nothing");
    assert_eq!(server.stored("FRAMEWORK"), sent);
}

/// One batch far larger than the transport's window of unacknowledged records (5000 against
/// 512) is published in windows and acknowledged whole.
#[test]
fn large_batch_is_published_in_windows() {
    let Some(server) = Server::start("large") else {
        return;
    };
    let mut t = NatsTransport::new(config(&server, "LARGE")).unwrap();
    t.deliver(&batch(0, 5000)).unwrap();
    assert_eq!(server.stored("LARGE"), 5000);
    let last = t.get_message(5000).unwrap();
    assert_eq!(
        String::from_utf8(b64(last["message"]["data"].as_str().unwrap())).unwrap(),
        record(4999).line
    );
}

/// Servers with user/password and with token authorization: the credentials ride in the
/// address (`nats://user:password@…`, `nats://token@…`) and are sent in CONNECT; wrong ones
/// are refused with the server's own words.
#[test]
fn password_and_token_in_the_address_authenticate() {
    let Some(users) = Server::start_with("userpass", |_| {
        "authorization {\n  user: shrike\n  password: \"pa55\"\n}\n".into()
    }) else {
        return;
    };
    let with = |server: &Server, creds: &str| NatsConfig {
        url: format!("nats://{creds}@127.0.0.1:{}", server.port),
        ..config(server, "AUTH")
    };
    let mut t = NatsTransport::new(with(&users, "shrike:pa55")).unwrap();
    t.deliver(&batch(0, 3)).unwrap();
    assert_eq!(users.stored("AUTH"), 3);
    let mut wrong = NatsTransport::new(with(&users, "shrike:nope")).unwrap();
    match wrong.deliver(&batch(3, 1)) {
        Err(TransportError::Retry(e)) => assert!(e.contains("Authorization Violation"), "{e}"),
        other => panic!("expected an authorization error, got {other:?}"),
    }
    let Some(tokens) = Server::start_with("token", |_| {
        "authorization {\n  token: \"t0ken\"\n}\n".into()
    }) else {
        return;
    };
    let mut t = NatsTransport::new(with(&tokens, "t0ken")).unwrap();
    t.deliver(&batch(0, 4)).unwrap();
    assert_eq!(tokens.stored("AUTH"), 4);
    let mut wrong = NatsTransport::new(with(&tokens, "other")).unwrap();
    assert!(matches!(
        wrong.deliver(&batch(4, 1)),
        Err(TransportError::Retry(_))
    ));
}

impl restarts::Restartable for Server {
    fn kill(&mut self) {
        Server::kill(self)
    }
    fn run(&mut self) {
        Server::run(self)
    }
}
