//! The syslog and webhook outputs against real receivers: Debian's rsyslogd, started by the test on
//! loopback with its own configuration ([`rsyslog::Rsyslog`]: imuxsock, imudp, imtcp, imrelp,
//! omfile writing each message's parsed RFC 5424 fields as JSON), killed and restarted
//! mid-stream for the RELP drill, and rustls servers with a certificate the test generates,
//! for syslog over TLS and the webhook over HTTPS.
//! No BPF: the output framework is driven with synthetic events.

mod outputs_support;
#[path = "outputs_support/restarts.rs"]
mod restarts;
#[path = "outputs_support/rsyslog.rs"]
mod rsyslog;
#[path = "outputs_support/syslog_drill.rs"]
mod syslog_drill;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use outputs_support::*;
use rsyslog::Rsyslog;
use shrike::outputs::Outputs;
use shrike_event::EventKind;

/// rsyslog receives shrike's events over the local socket, UDP, TCP (octet counting, a
/// 20 KB event in one frame) and RELP and parses every RFC 5424 field as shrike meant it: PRI from the
/// facility and the alert's severity, version 1, the event's time with microseconds, the
/// host, `shrike`, the agent's pid, the event kind as MSGID, the rule and severity as
/// structured data, and the event JSON, whole, as MSG.
#[test]
fn rsyslog_parses_rfc5424_from_the_local_socket_udp_tcp_and_relp() {
    let rsyslog = Rsyslog::start();
    let outputs_yaml = [
        format!("unix://{}", rsyslog.socket().display()),
        format!("udp://127.0.0.1:{}", rsyslog.udp),
        format!("tcp://127.0.0.1:{}", rsyslog.tcp),
        format!("relp://127.0.0.1:{}", rsyslog.relp),
    ]
    .map(|address| {
        config(&format!(
            "type: syslog\naddress: {address}\nfacility: local4\nbatch: {{max_delay_ms: 10}}"
        ))
    });
    let mut outputs = Outputs::start(&outputs_yaml).unwrap();
    let mut big = event(3, EventKind::ProcessExec);
    let mut process = (*big.process).clone();
    process.args = vec!["x".repeat(20_000)].into();
    big.process = Arc::new(process);
    outputs.send(&alert(1, "R-1", "high"));
    outputs.flush();
    outputs.send(&event(2, EventKind::Dns));
    outputs.flush();
    outputs.send(&big);
    outputs.flush();
    assert!(
        wait_for(Duration::from_secs(10), || rsyslog.messages().len() >= 12),
        "rsyslog wrote {:#?}",
        rsyslog.messages()
    );
    let stats = outputs.stats();
    outputs.finish(Duration::from_secs(2));
    for s in &stats {
        assert_eq!((s.sent(), s.dropped()), (3, 0), "{}", s.name);
    }

    let host = shrike::agent::node_name();
    let pid = std::process::id().to_string();
    let messages = rsyslog.messages();
    assert_eq!(messages.len(), 12, "{messages:#?}");
    for input in ["imuxsock", "imudp", "imtcp", "imrelp"] {
        let got: Vec<_> = messages.iter().filter(|m| m["input"] == input).collect();
        assert_eq!(got.len(), 3, "{input}: {messages:#?}");
        for m in &got {
            let event: serde_json::Value = serde_json::from_str(m["msg"].as_str().unwrap().trim())
                .unwrap_or_else(|e| panic!("{input}: MSG is not the event JSON ({e}): {m}"));
            let id = pid_of(&event);
            assert_eq!(m["version"], "1", "{m}");
            assert_eq!(m["host"], *host, "{m}");
            assert_eq!(m["app"], "shrike", "{m}");
            assert_eq!(m["procid"], pid, "{m}");
            assert_eq!(m["msgid"], event["kind"], "{m}");
            let time = m["time"].as_str().unwrap();
            assert!(
                time.starts_with(&format!("2023-11-14T22:13:20.00000{id}")),
                "{input}: time {time}"
            );
            match id {
                1 => {
                    // local4 (20) * 8 + err (3)
                    assert_eq!(m["pri"], "163", "{m}");
                    assert_eq!(
                        m["sd"], r#"[shrike@32473 rule="R-1" severity="high"]"#,
                        "{m}"
                    );
                    assert_eq!(event["alerts"][0]["rule_id"], "R-1");
                }
                2 | 3 => {
                    assert_eq!(m["pri"], "166", "{m}");
                    assert_eq!(m["sd"], "-", "{m}");
                }
                _ => panic!("unexpected event {id}"),
            }
            if id == 3 {
                assert_eq!(event["process"]["args"][0].as_str().unwrap().len(), 20_000);
            }
        }
    }
}

/// Reads octet-counted frames (`LEN SP MSG`) from `r`.
fn frames(r: &mut impl BufRead, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        // A client that gave up in the handshake (the untrusted one) ends its stream here.
        let mut len = Vec::new();
        if r.read_until(b' ', &mut len).unwrap_or(0) == 0 {
            break;
        }
        let len: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
        let mut msg = vec![0; len];
        if r.read_exact(&mut msg).is_err() {
            break;
        }
        out.push(String::from_utf8(msg).unwrap());
    }
    out
}

/// Syslog over TLS (`tls://`) to a server whose self-signed certificate the test generates:
/// trusted through `tls.ca_file`, the messages arrive octet-counted inside the TLS stream;
/// with the built-in roots instead, the handshake fails, nothing is counted as sent and the
/// failures are counted as errors (the batch waits for a retry).
#[test]
fn syslog_over_tls_verifies_the_server_and_frames_messages() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(server_config.clone()).unwrap();
            let mut tls = BufReader::new(rustls::StreamOwned::new(conn, stream));
            let got = frames(&mut tls, 2);
            if !got.is_empty() {
                let _ = tx.send(got);
            }
        }
    });

    let trusted = config(&format!(
        "type: syslog\nname: trusted\naddress: tls://localhost:{port}\ntls: {{ca_file: {}}}\nbatch: {{max_delay_ms: 10}}",
        ca.display()
    ));
    let untrusted = config(&format!(
        "type: syslog\nname: untrusted\naddress: tls://localhost:{port}\nbatch: {{max_delay_ms: 10}}\nretry: {{initial_ms: 100, max_ms: 100}}"
    ));
    let mut outputs = Outputs::start(&[trusted, untrusted]).unwrap();
    outputs.send(&alert(7, "R-7", "critical"));
    outputs.flush();
    outputs.send(&event(8, EventKind::NetConnect));
    outputs.flush();
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("TLS frames");
    let stats = outputs.stats();
    assert!(wait_for(Duration::from_secs(5), || stats[1]
        .errors
        .load(Ordering::Relaxed)
        >= 2));
    outputs.finish(Duration::from_millis(500));

    assert_eq!(got.len(), 2, "{got:#?}");
    // authpriv (10) * 8 + crit (2) = 82; + info (6) = 86.
    assert!(
        got[0].starts_with("<82>1 2023-11-14T22:13:20.000007Z "),
        "{}",
        got[0]
    );
    assert!(
        got[0].contains(r#" [shrike@32473 rule="R-7" severity="critical"] {"#),
        "{}",
        got[0]
    );
    assert!(got[1].starts_with("<86>1 "), "{}", got[1]);
    let json = &got[1][got[1].find('{').unwrap()..];
    assert_eq!(pid_of(&serde_json::from_str(json).unwrap()), 8);
    assert_eq!(stats[0].sent(), 2);
    assert_eq!(stats[1].sent(), 0, "an unverified server gets nothing");
}

/// The webhook over HTTPS to a server with a generated certificate, trusted through
/// `tls.ca_file`: the batch arrives as one JSON array with the configured header.
#[test]
fn a_webhook_over_https_trusts_the_configured_ca() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(server_config).unwrap();
        let mut tls = BufReader::new(rustls::StreamOwned::new(conn, stream));
        let (mut len, mut auth) = (0usize, String::new());
        loop {
            let mut h = String::new();
            tls.read_line(&mut h).unwrap();
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if lower.starts_with("x-token:") {
                auth = h.trim_end().to_owned();
            }
            if h.trim().is_empty() {
                break;
            }
        }
        let mut body = vec![0; len];
        std::io::Read::read_exact(&mut tls, &mut body).unwrap();
        tls.get_mut()
            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap();
        let _ = tls.get_mut().flush();
        tx.send((auth, body)).unwrap();
    });
    let mut outputs = Outputs::start(&[config(&format!(
        "type: webhook\nurl: https://localhost:{port}/in\nheaders: {{X-Token: abc}}\ntls: {{ca_file: {}}}\nbatch: {{max_events: 2, max_delay_ms: 1000}}",
        ca.display()
    ))])
    .unwrap();
    let stats = outputs.stats()[0].clone();
    outputs.send(&alert(11, "R-11", "medium"));
    outputs.flush();
    outputs.send(&event(12, EventKind::Dns));
    outputs.flush();
    let (auth, body) = rx.recv_timeout(Duration::from_secs(10)).expect("the POST");
    assert!(wait_for(Duration::from_secs(5), || stats.sent() == 2));
    outputs.finish(Duration::from_secs(1));
    assert_eq!(auth, "X-Token: abc");
    let batch: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(batch.iter().map(pid_of).collect::<Vec<_>>(), [11, 12]);
    assert_eq!(batch[0]["alerts"][0]["severity"], "medium");
}

/// The syslog output over RELP through the kill drill ([`syslog_drill`]: rsyslogd paused,
/// SIGKILLed and restarted twice mid-stream, the queue overflowing meanwhile). Afterwards:
/// sent + dropped is every record offered, and dropped is exactly the records the queue
/// refused; every record not dropped is in the file, at least once; no dropped record is. At
/// each kill rsyslogd had unread bytes of the output's in its socket (checked), so a sink that
/// counted a message as sent when written would have lost those and failed here. A record is
/// in the file twice only if rsyslogd wrote it and died before its acknowledgement left: at
/// most the in-flight window (128) per kill; the number is printed.
#[test]
fn relp_output_counts_every_loss_across_rsyslog_kills() {
    let drill = syslog_drill::kill_drill("relp");
    drill.report("relp");
    let (stats, offered) = (&drill.stats, drill.offered);
    let (sent, dropped) = (stats.sent(), stats.dropped());
    assert!(
        stats.errors.load(Ordering::Relaxed) >= 2,
        "the kills did not interrupt any delivery"
    );
    assert!(
        drill.unread.iter().all(|&b| b > 0),
        "at a kill nothing written was unread: the drill proved nothing about acknowledgements"
    );
    assert_eq!(sent + dropped, offered);
    assert_eq!(stats.dropped_rejected.load(Ordering::Relaxed), 0);
    assert_eq!(dropped, drill.refused.len() as u64);
    assert!(
        dropped > 0,
        "the queue never overflowed: the drill proved nothing about drops"
    );
    let missing = drill.missing();
    assert!(
        missing.is_empty(),
        "{} records counted as sent are not in the file, from {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    let ghosts: Vec<&u64> = drill
        .copies
        .keys()
        .filter(|n| drill.refused.contains(n))
        .collect();
    assert!(
        ghosts.is_empty(),
        "dropped records reached the file: {ghosts:?}"
    );
    assert_eq!(drill.copies.len() as u64, sent);
    assert!(
        drill.duplicates() <= 2 * 128,
        "{} duplicates",
        drill.duplicates()
    );
}

/// The same drill over plain TCP shows why RELP exists: the output counts a batch as sent once
/// written, and what rsyslogd had not read when it was killed is lost without being counted —
/// sent + dropped still adds up to what was offered, but records counted as sent are missing
/// from the file (what the README and the syslog module say of tcp:// and tls://).
#[test]
fn tcp_output_loses_unread_records_it_counted_as_sent() {
    let drill = syslog_drill::kill_drill("tcp");
    drill.report("tcp");
    let stats = &drill.stats;
    assert!(drill.unread.iter().all(|&b| b > 0), "{:?}", drill.unread);
    assert_eq!(stats.sent() + stats.dropped(), drill.offered);
    let missing = drill.missing();
    eprintln!(
        "tcp: {} records counted as sent are not in the file",
        missing.len()
    );
    assert!(
        !missing.is_empty(),
        "a kill with unread records lost nothing over TCP"
    );
}

/// Syslog over RELP inside TLS (`relps://`) to rsyslogd's imrelp with TLS, which checks the
/// client's certificate (rsyslog's `tls.authmode="certvalid"`, GnuTLS): with the test CA and
/// a client certificate the records arrive; without a client certificate rsyslog ends the
/// handshake ("peer did not provide a certificate") and nothing is counted as sent.
#[test]
fn relps_reaches_rsyslog_with_mutual_tls() {
    let rsyslog = Rsyslog::start_tls();
    let port = rsyslog.relps.unwrap();
    let d = rsyslog.dir().display();
    let mut outputs = Outputs::start(&[
        config(&format!(
            "type: syslog\nname: relps\naddress: relps://localhost:{port}\n\
             tls: {{ca_file: {d}/ca.pem, cert_file: {d}/client.pem, key_file: {d}/client.key}}\n\
             batch: {{max_delay_ms: 10}}"
        )),
        config(&format!(
            "type: syslog\nname: anonymous\naddress: relps://localhost:{port}\n\
             tls: {{ca_file: {d}/ca.pem}}\nbatch: {{max_delay_ms: 10}}\n\
             retry: {{initial_ms: 100, max_ms: 100}}"
        )),
    ])
    .unwrap();
    outputs.send(&alert(21, "R-21", "critical"));
    outputs.flush();
    outputs.send(&event(22, EventKind::Dns));
    outputs.flush();
    let stats = outputs.stats();
    assert!(
        wait_for(Duration::from_secs(10), || stats[0].sent() == 2),
        "relps sent {}, rsyslog: {}",
        stats[0].sent(),
        std::fs::read_to_string(rsyslog.dir().join("rsyslogd.err")).unwrap_or_default()
    );
    assert!(wait_for(Duration::from_secs(5), || stats[1]
        .errors
        .load(Ordering::Relaxed)
        >= 2));
    outputs.finish(Duration::from_millis(500));
    let got: Vec<u32> = rsyslog
        .messages()
        .iter()
        .map(|m| pid_of(&serde_json::from_str(m["msg"].as_str().unwrap().trim()).unwrap()))
        .collect();
    assert_eq!(got, [21, 22]);
    assert_eq!(
        stats[1].sent(),
        0,
        "a client without a certificate gets nothing through"
    );
}
