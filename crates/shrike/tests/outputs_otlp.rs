//! The OTLP/HTTP logs transport against a receiver that decodes each export with the official
//! opentelemetry-proto schema: with the prost types generated from it, and independently with
//! `protoc --decode` over the vendored .proto files (Debian package `protobuf-compiler`).
//!
//! Proves: the request is a protobuf `ExportLogsServiceRequest` on `/v1/logs` whose resource,
//! scope and log records carry exactly the records' times, severities, bodies and attributes;
//! statuses are classified; a receiver killed mid-stream and restarted ends up holding exactly
//! the records delivered Ok.

#[path = "outputs_support/receiver.rs"]
mod receiver;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use receiver::{Receiver, Request};
use shrike::outputs::otlp::proto::collector::logs::v1::ExportLogsServiceRequest;
use shrike::outputs::otlp::proto::common::v1::{any_value, KeyValue};
use shrike::outputs::otlp::{OtlpConfig, OtlpTransport};
use shrike::outputs::transport::{Record, Transport, TransportError};

fn decode(r: &Request) -> Result<ExportLogsServiceRequest, String> {
    if r.method != "POST" || r.path != "/v1/logs" {
        return Err(format!("404 {} {}", r.method, r.path));
    }
    if r.header("content-type") != Some("application/x-protobuf") {
        return Err("415 unsupported content type".into());
    }
    ExportLogsServiceRequest::decode(r.body.as_slice()).map_err(|e| e.to_string())
}

fn receiver() -> Receiver {
    Receiver::start(|r| decode(r).map(|_| ()))
}

fn config(rx: &Receiver) -> OtlpConfig {
    OtlpConfig {
        url: rx.url(),
        labels: BTreeMap::from([("deployment.environment".to_string(), "test".to_string())]),
        headers: BTreeMap::new(),
        timeout_ms: 2000,
        tls: None,
    }
}

fn record(n: u64) -> Record {
    let severity = ["low", "medium", "high", "critical"]
        .get((n % 6) as usize)
        .copied();
    let kind = if severity.is_some() {
        "alert"
    } else {
        "process_exec"
    };
    Record {
        line: format!("{{\"kind\":\"{kind}\",\"n\":{n}}}"),
        time_unix_ns: 1_700_000_000_000_000_000 + n,
        kind,
        severity: severity.map(Arc::from),
        rule: severity.map(|_| Arc::from("rule-y")),
    }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => panic!("attribute {} is not a string: {other:?}", kv.key),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

/// What the receiver holds of each log record: time, severity number and text, body, event
/// name and attributes.
type Entry = (u64, i32, String, String, String, BTreeMap<String, String>);

fn entries(rx: &Receiver) -> BTreeSet<Entry> {
    let mut out = BTreeSet::new();
    for r in rx.accepted() {
        for rl in decode(&r).unwrap().resource_logs {
            for sl in rl.scope_logs {
                for lr in sl.log_records {
                    let body = match lr.body.and_then(|b| b.value) {
                        Some(any_value::Value::StringValue(s)) => s,
                        other => panic!("body is not a string: {other:?}"),
                    };
                    out.insert((
                        lr.time_unix_nano,
                        lr.severity_number,
                        lr.severity_text,
                        body,
                        lr.event_name,
                        attrs(&lr.attributes),
                    ));
                }
            }
        }
    }
    out
}

fn expected(r: &Record) -> Entry {
    let number = match r.severity.as_deref() {
        None => 9,
        Some("low") => 12,
        Some("medium") => 13,
        Some("high") => 17,
        Some("critical") => 21,
        Some(s) => panic!("{s}"),
    };
    let mut attributes = BTreeMap::from([("shrike.kind".to_string(), r.kind.to_string())]);
    if let Some(rule) = &r.rule {
        attributes.insert("shrike.rule".into(), rule.to_string());
    }
    (
        r.time_unix_ns,
        number,
        r.severity.as_deref().unwrap_or("info").to_string(),
        r.line.clone(),
        r.kind.to_string(),
        attributes,
    )
}

/// One export per batch on /v1/logs; the resource says service.name=shrike with the host name
/// and the configured attribute, the scope is shrike, and the log records are exactly the
/// records with their times, mapped severities, JSON bodies and kind/rule attributes.
#[test]
fn exported_log_records_carry_the_records_exactly() {
    let rx = receiver();
    let mut t = OtlpTransport::new(config(&rx)).unwrap();
    let records: Vec<Record> = (0..30).map(record).collect();
    t.deliver(&records[..12]).unwrap();
    t.deliver(&records[12..]).unwrap();
    let accepted = rx.accepted();
    assert_eq!(accepted.len(), 2);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    for r in &accepted {
        let req = decode(r).unwrap();
        assert_eq!(req.resource_logs.len(), 1);
        let resource = attrs(&req.resource_logs[0].resource.as_ref().unwrap().attributes);
        assert_eq!(resource["service.name"], "shrike");
        assert_eq!(resource["host.name"], host);
        assert_eq!(resource["deployment.environment"], "test");
        let scope = req.resource_logs[0].scope_logs[0].scope.as_ref().unwrap();
        assert_eq!(scope.name, "shrike");
        for lr in &req.resource_logs[0].scope_logs[0].log_records {
            assert!(lr.observed_time_unix_nano > 1_700_000_000_000_000_000);
        }
    }
    assert_eq!(entries(&rx), records.iter().map(expected).collect());
}

/// The same export decoded by protoc from the vendored .proto files, with no shrike code in
/// the way: the field numbers and types the transport wrote are the schema's.
#[test]
fn protoc_decodes_the_export_with_the_official_schema() {
    if Command::new("protoc").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "protoc is not installed: run ./dev deps (protobuf-compiler)"
        );
        eprintln!("skipping: protoc is not installed (Debian package protobuf-compiler)");
        return;
    }
    let rx = receiver();
    let mut t = OtlpTransport::new(config(&rx)).unwrap();
    t.deliver(&[record(2), record(4)]).unwrap();
    let body = rx.accepted()[0].body.clone();
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let mut child = Command::new("protoc")
        .arg(format!("-I{proto_dir}"))
        .arg("--decode=opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest")
        .arg("opentelemetry/proto/collector/logs/v1/logs_service.proto")
        .current_dir(proto_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "key: \"service.name\"",
        "string_value: \"shrike\"",
        "time_unix_nano: 1700000000000000002",
        "severity_number: SEVERITY_NUMBER_ERROR",
        "severity_text: \"high\"",
        "time_unix_nano: 1700000000000000004",
        "severity_number: SEVERITY_NUMBER_INFO\n",
        "severity_text: \"info\"",
        "string_value: \"{\\\"kind\\\":\\\"alert\\\",\\\"n\\\":2}\"",
        "key: \"shrike.rule\"",
        "event_name: \"process_exec\"",
    ] {
        assert!(
            text.contains(want),
            "protoc's decoding lacks {want:?}:\n{text}"
        );
    }
}

/// 503 and 429 are retried, 400 rejects the batch, nothing listening is a retry.
#[test]
fn statuses_are_retried_or_rejected() {
    let rx = receiver();
    let mut t = OtlpTransport::new(config(&rx)).unwrap();
    rx.answer_next(503, 1);
    rx.answer_next(429, 1);
    rx.answer_next(400, 1);
    assert!(matches!(
        t.deliver(&[record(1)]),
        Err(TransportError::Retry(_))
    ));
    assert!(matches!(
        t.deliver(&[record(1)]),
        Err(TransportError::Retry(_))
    ));
    assert!(matches!(
        t.deliver(&[record(1)]),
        Err(TransportError::Rejected(_))
    ));
    t.deliver(&[record(1)]).unwrap();
    assert_eq!(entries(&rx), BTreeSet::from([expected(&record(1))]));
    let mut dead = OtlpTransport::new(config(&rx)).unwrap();
    drop(rx);
    assert!(matches!(
        dead.deliver(&[record(1)]),
        Err(TransportError::Retry(_))
    ));
}

/// The receiver is killed twice by another thread while batches stream in and restarted on
/// its port: the transport retries and delivers again; every record delivered Ok is held, and
/// nothing else.
#[test]
fn receiver_killed_mid_stream_loses_nothing_delivered() {
    let rx = Arc::new(std::sync::Mutex::new(receiver()));
    let mut t = OtlpTransport::new(OtlpConfig {
        timeout_ms: 1000,
        ..config(&rx.lock().unwrap())
    })
    .unwrap();
    let killer = {
        let rx = rx.clone();
        std::thread::spawn(move || {
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(300));
                rx.lock().unwrap().kill();
                std::thread::sleep(Duration::from_millis(500));
                rx.lock().unwrap().run();
            }
        })
    };
    let (mut next, mut retries, mut delivered) = (0u64, 0u32, BTreeSet::new());
    while !killer.is_finished() || next < 2000 {
        let batch: Vec<Record> = (next..next + 20).map(record).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match t.deliver(&batch) {
                Ok(()) => break,
                Err(TransportError::Retry(e)) => {
                    retries += 1;
                    assert!(Instant::now() < deadline, "never recovered: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("{e}"),
            }
        }
        delivered.extend(batch.iter().map(expected));
        next += 20;
    }
    killer.join().unwrap();
    eprintln!("delivered {next} records Ok with {retries} retries across two kills");
    assert!(retries >= 2, "the kills did not interrupt any delivery");
    assert_eq!(entries(&rx.lock().unwrap()), delivered);
}

/// A `type: otlp` output's YAML builds this transport through the framework's
/// `build_transport`, its labels becoming resource attributes.
#[test]
fn framework_builds_the_otlp_output_from_its_configuration() {
    let rx = receiver();
    let yaml = format!(
        "type: otlp\nurl: {}\nlabels: {{deployment.environment: test}}\nheaders: {{X-Extra: yes}}\n",
        rx.url()
    );
    let config: shrike::outputs::OutputConfig = serde_yaml::from_str(&yaml).unwrap();
    assert!(config.check().is_empty(), "{:?}", config.check());
    let mut t = shrike::outputs::build_transport(&config).unwrap();
    t.deliver(&[record(1), record(4)]).unwrap();
    assert_eq!(
        entries(&rx),
        [record(1), record(4)].iter().map(expected).collect()
    );
    assert_eq!(rx.accepted()[0].header("x-extra"), Some("yes"));
}
