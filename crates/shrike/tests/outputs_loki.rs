//! The Loki transport against a receiver that parses each push the way Loki's push handler
//! does (JSON `streams`, each with a `stream` label map and `values` of
//! `["<unix ns>", "<line>"]`) and, like Loki's ingester, keeps an entry once per stream, time
//! and line. Debian's archive has no Grafana Loki (its `loki` package is a genetics tool), so
//! the server side is this receiver, not the real one.
//!
//! Proves: the pushed streams carry exactly the records, labelled by the fixed labels, kind
//! and severity only; statuses are classified (5xx/429 retried, 400 rejected); tenant and
//! headers are sent; a receiver killed mid-stream and restarted ends up holding exactly the
//! records delivered Ok.

#[path = "outputs_support/receiver.rs"]
mod receiver;
#[path = "outputs_support/restarts.rs"]
mod restarts;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use receiver::{Receiver, Request};
use shrike::outputs::loki::LokiTransport;
use shrike::outputs::transport::{Record, Transport, TransportError};
use shrike::outputs::OutputConfig;

/// One stored Loki entry: the stream's labels, the timestamp, the line.
type Entry = (BTreeMap<String, String>, u64, String);

/// Parses a push body as Loki does; an error is what Loki would answer 400 with.
fn parse_push(r: &Request) -> Result<Vec<Entry>, String> {
    if r.method != "POST" || r.path != "/loki/api/v1/push" {
        return Err(format!("404 {} {}", r.method, r.path));
    }
    if r.header("content-type") != Some("application/json") {
        return Err("unsupported content type".into());
    }
    let body: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for stream in body["streams"].as_array().ok_or("no streams")? {
        let labels: BTreeMap<String, String> = stream["stream"]
            .as_object()
            .ok_or("stream is not a label map")?
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_str().ok_or("label value is not a string")?.to_string(),
                ))
            })
            .collect::<Result<_, String>>()?;
        if labels.is_empty() {
            return Err("error at least one label pair is required per stream".into());
        }
        for value in stream["values"].as_array().ok_or("no values")? {
            let ts = value[0].as_str().ok_or("timestamp is not a string")?;
            let ts: u64 = ts
                .parse()
                .map_err(|_| format!("timestamp {ts:?} is not decimal nanoseconds"))?;
            let line = value[1].as_str().ok_or("line is not a string")?;
            out.push((labels.clone(), ts, line.to_string()));
        }
    }
    Ok(out)
}

/// Every entry the receiver stored, once each (Loki drops an identical entry in a stream).
fn stored(rx: &Receiver) -> BTreeSet<Entry> {
    rx.accepted()
        .iter()
        .flat_map(|r| parse_push(r).unwrap())
        .collect()
}

fn receiver() -> Receiver {
    Receiver::start(|r| parse_push(r).map(|_| ()))
}

fn config(rx: &Receiver) -> OutputConfig {
    config_for(&rx.url(), 2000)
}

fn config_for(url: &str, timeout_ms: u64) -> OutputConfig {
    serde_yaml::from_str(&format!(
        "type: loki\nurl: {url}\nlabels: {{env: test}}\ntimeout_ms: {timeout_ms}"
    ))
    .unwrap()
}

fn record(n: u64) -> Record {
    let (kind, severity) = match n % 4 {
        0 => ("alert", Some("high")),
        1 => ("alert", Some("low")),
        _ => ("process_exec", None),
    };
    Record {
        line: format!("{{\"kind\":\"{kind}\",\"n\":{n},\"pid\":{}}}", 1000 + n).into(),
        time_unix_ns: 1_700_000_000_000_000_000 + n,
        kind,
        severity: severity.map(Arc::from),
        rule: severity.map(|_| Arc::from("rule-x")),
    }
}

fn expected(r: &Record) -> Entry {
    let mut labels = BTreeMap::from([
        ("env".to_string(), "test".to_string()),
        ("job".to_string(), "shrike".to_string()),
        ("kind".to_string(), r.kind.to_string()),
    ]);
    if let Some(s) = &r.severity {
        labels.insert("severity".into(), s.to_string());
    }
    (labels, r.time_unix_ns, r.line.to_string())
}

/// Two batches of mixed kinds: the receiver holds exactly those records, each in the stream
/// of its kind and severity, nothing per-event among the labels, timestamps to the nanosecond.
#[test]
fn pushed_entries_arrive_exactly_with_low_cardinality_labels() {
    let rx = receiver();
    let mut t = LokiTransport::new(&config(&rx)).unwrap();
    let records: Vec<Record> = (0..40).map(record).collect();
    t.deliver(&records[..25]).unwrap();
    t.deliver(&records[25..]).unwrap();
    let want: BTreeSet<Entry> = records.iter().map(expected).collect();
    assert_eq!(stored(&rx), want);
    let label_sets: BTreeSet<_> = stored(&rx).into_iter().map(|(l, _, _)| l).collect();
    assert_eq!(
        label_sets.len(),
        3,
        "one stream per kind and severity: {label_sets:?}"
    );
    assert_eq!(rx.accepted().len(), 2, "one push per batch");
}

/// The tenant goes out as X-Scope-OrgID and configured headers as they are.
#[test]
fn tenant_and_headers_are_sent() {
    let rx = receiver();
    let mut c = config(&rx);
    c.tenant = Some("team-a".into());
    c.headers
        .insert("Authorization".into(), "Bearer s3cret".into());
    let mut t = LokiTransport::new(&c).unwrap();
    t.deliver(&[record(2)]).unwrap();
    let got = &rx.accepted()[0];
    assert_eq!(got.header("x-scope-orgid"), Some("team-a"));
    assert_eq!(got.header("authorization"), Some("Bearer s3cret"));
}

/// 503 and 429 are retried (the batch then arrives); a 400 rejects the batch; nothing
/// listening is a retry.
#[test]
fn statuses_are_retried_or_rejected() {
    let rx = receiver();
    let mut t = LokiTransport::new(&config(&rx)).unwrap();
    rx.answer_next(503, 1);
    rx.answer_next(429, 1);
    rx.answer_next(400, 1);
    assert!(matches!(
        t.deliver(&[record(2)]),
        Err(TransportError::Retry(_))
    ));
    assert!(matches!(
        t.deliver(&[record(2)]),
        Err(TransportError::Retry(_))
    ));
    match t.deliver(&[record(3)]) {
        Err(TransportError::Rejected(e)) => assert!(e.contains("400"), "{e}"),
        other => panic!("expected rejection, got {other:?}"),
    }
    t.deliver(&[record(2)]).unwrap();
    assert_eq!(stored(&rx), BTreeSet::from([expected(&record(2))]));
    let port = rx.port;
    drop(rx);
    let mut t = LokiTransport::new(&config_for(&format!("http://127.0.0.1:{port}"), 2000)).unwrap();
    assert!(matches!(
        t.deliver(&[record(2)]),
        Err(TransportError::Retry(_))
    ));
}

/// The receiver is killed twice by another thread while batches stream in (connections cut,
/// at whatever point of a request) and restarted on its port: deliveries fail with Retry
/// meanwhile and the transport delivers again; the receiver ends up holding exactly the
/// records delivered Ok.
#[test]
fn receiver_killed_mid_stream_loses_nothing_delivered() {
    let rx = Arc::new(std::sync::Mutex::new(receiver()));
    let mut t = LokiTransport::new(&config_for(&rx.lock().unwrap().url(), 1000)).unwrap();
    let drill = restarts::deliver_across_two_restarts(
        &rx,
        &mut t,
        (Duration::from_millis(300), Duration::from_millis(500)),
        |from, len| (from..from + len).map(record).collect(),
    );
    let delivered: BTreeSet<Entry> = (0..drill.delivered).map(|n| expected(&record(n))).collect();
    assert_eq!(stored(&rx.lock().unwrap()), delivered);
}

/// A `type: loki` output's YAML builds this transport through the framework's
/// `build_transport`, with its labels, tenant and headers.
#[test]
fn framework_builds_the_loki_output_from_its_configuration() {
    let rx = receiver();
    let yaml = format!(
        "type: loki\nurl: {}\nlabels: {{env: test}}\ntenant: t1\nheaders: {{X-Extra: yes}}\n",
        rx.url()
    );
    let config: shrike::outputs::OutputConfig = serde_yaml::from_str(&yaml).unwrap();
    assert!(config.check().is_empty(), "{:?}", config.check());
    let mut t = shrike::outputs::build_transport(&config).unwrap();
    t.deliver(&[record(0), record(2)]).unwrap();
    assert_eq!(
        stored(&rx),
        [record(0), record(2)].iter().map(expected).collect()
    );
    let got = &rx.accepted()[0];
    assert_eq!(got.header("x-scope-orgid"), Some("t1"));
    assert_eq!(got.header("x-extra"), Some("yes"));
}

impl restarts::Restartable for Receiver {
    fn kill(&mut self) {
        Receiver::kill(self)
    }
    fn run(&mut self) {
        Receiver::run(self)
    }
}
