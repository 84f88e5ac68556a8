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
#[path = "outputs_support/restarts.rs"]
mod restarts;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use receiver::{Receiver, Request};
use shrike::outputs::otlp::proto::collector::logs::v1::ExportLogsServiceRequest;
use shrike::outputs::otlp::proto::common::v1::{any_value, KeyValue};
use shrike::outputs::otlp::OtlpTransport;
use shrike::outputs::transport::{Record, Transport, TransportError};
use shrike::outputs::OutputConfig;

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

fn config(rx: &Receiver) -> OutputConfig {
    config_for(&rx.url(), 2000)
}

fn config_for(url: &str, timeout_ms: u64) -> OutputConfig {
    serde_yaml::from_str(&format!(
        "type: otlp\nurl: {url}\nlabels: {{deployment.environment: test}}\ntimeout_ms: {timeout_ms}"
    ))
    .unwrap()
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
        line: format!("{{\"kind\":\"{kind}\",\"n\":{n}}}").into(),
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
        r.line.to_string(),
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
    let mut t = OtlpTransport::new(&config(&rx)).unwrap();
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
    let mut t = OtlpTransport::new(&config(&rx)).unwrap();
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
    let mut t = OtlpTransport::new(&config(&rx)).unwrap();
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
    let mut dead = OtlpTransport::new(&config(&rx)).unwrap();
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
    let mut t = OtlpTransport::new(&config_for(&rx.lock().unwrap().url(), 1000)).unwrap();
    let drill = restarts::deliver_across_two_restarts(
        &rx,
        &mut t,
        (Duration::from_millis(300), Duration::from_millis(500)),
        |from, len| (from..from + len).map(record).collect(),
    );
    let delivered: BTreeSet<_> = (0..drill.delivered).map(|n| expected(&record(n))).collect();
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

impl restarts::Restartable for Receiver {
    fn kill(&mut self) {
        Receiver::kill(self)
    }
    fn run(&mut self) {
        Receiver::run(self)
    }
}
