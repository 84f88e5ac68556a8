//! OTLP logs over HTTP: each batch is one `POST /v1/logs` of a protobuf
//! `ExportLogsServiceRequest` (`application/x-protobuf`), the message types generated from the
//! official opentelemetry-proto schema ([`proto`], see `proto/generate.sh`).
//!
//! One resource (`service.name=shrike`, `service.version`, `host.name`, plus the configured
//! attributes) and one instrumentation scope (`shrike`) carry every record of the batch. A
//! record becomes a `LogRecord` whose `time_unix_nano` is the event's time, whose body is the
//! record's line (the event JSON, or the compact line) as a string, whose `event_name` and
//! `shrike.kind` attribute are the event kind, with `shrike.rule` for alerts, and whose
//! severity is mapped from the rule's (see [`severity_number`]; `severity_text` keeps the
//! policy's word). A 2xx is `Ok` (a partial-success answer is not read); 408, 429, 5xx and
//! connection errors are retried; any other status rejects the batch.

#[rustfmt::skip]
pub mod proto;

use std::collections::BTreeMap;

use anyhow::bail;
use prost::Message;

use super::config::OutputConfig;
use super::http::Endpoint;
use super::transport::{Record, Transport, TransportError};
use proto::collector::logs::v1::ExportLogsServiceRequest;
use proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use proto::resource::v1::Resource;

/// Exports batches to one OTLP/HTTP logs endpoint.
pub struct OtlpTransport {
    endpoint: Endpoint,
    resource: Resource,
}

impl OtlpTransport {
    /// Reads a `type: otlp` entry of `outputs:` (`url`, `labels` as resource attributes,
    /// `headers`, `tls`, `timeout_ms`): checks the URL, reads the host name and builds the
    /// HTTP client.
    pub fn new(config: &OutputConfig) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_output(config, "otlp", "http://HOST:4318", Some(LOGS_PATH))?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let mut attributes = BTreeMap::from([
            ("service.name".to_string(), "shrike".to_string()),
            (
                "service.version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
        ]);
        if !host.is_empty() {
            attributes.insert("host.name".into(), host);
        }
        for (key, value) in &config.labels {
            if key.is_empty() {
                bail!("otlp labels: an attribute key cannot be empty");
            }
            attributes.insert(key.clone(), value.clone());
        }
        let resource = Resource {
            attributes: attributes
                .into_iter()
                .map(|(k, v)| string_attribute(k, v))
                .collect(),
            ..Default::default()
        };
        Ok(OtlpTransport { endpoint, resource })
    }

    /// The export request for `batch`.
    pub fn request(&self, batch: &[Record]) -> ExportLogsServiceRequest {
        let observed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let log_records = batch
            .iter()
            .map(|r| {
                let mut attributes = vec![string_attribute("shrike.kind".into(), r.kind.into())];
                if let Some(rule) = &r.rule {
                    attributes.push(string_attribute("shrike.rule".into(), rule.to_string()));
                }
                LogRecord {
                    time_unix_nano: r.time_unix_ns,
                    observed_time_unix_nano: observed,
                    severity_number: severity_number(r.severity.as_deref()) as i32,
                    severity_text: r.severity.as_deref().unwrap_or("info").to_string(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(r.line.to_string())),
                    }),
                    attributes,
                    event_name: r.kind.to_string(),
                    ..Default::default()
                }
            })
            .collect();
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "shrike".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }
}

impl Transport for OtlpTransport {
    fn deliver(&mut self, batch: &[Record]) -> Result<(), TransportError> {
        let body = self.request(batch).encode_to_vec();
        self.endpoint
            .post("application/x-protobuf", &body)
            .map(|_| ())
    }
}

/// OpenTelemetry's severity for a record: plain events are INFO; an alert's or incident's
/// rule severity `low` is INFO4 (above plain events, below warnings), `medium` WARN, `high`
/// ERROR, `critical` FATAL; an unknown word is WARN.
pub fn severity_number(severity: Option<&str>) -> SeverityNumber {
    match severity {
        None => SeverityNumber::Info,
        Some("low") => SeverityNumber::Info4,
        Some("medium") => SeverityNumber::Warn,
        Some("high") => SeverityNumber::Error,
        Some("critical") => SeverityNumber::Fatal,
        Some(_) => SeverityNumber::Warn,
    }
}

fn string_attribute(key: String, value: String) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// Appended to an OTLP URL given without a path.
const LOGS_PATH: &str = "/v1/logs";

#[cfg(test)]
mod tests {
    use super::*;

    fn logs_url(url: &str) -> anyhow::Result<String> {
        let config = serde_yaml::from_str(&format!("type: otlp\nurl: {url}")).unwrap();
        OtlpTransport::new(&config).map(|t| t.endpoint.url)
    }

    /// The OTLP/HTTP logs path is added to a bare collector address, kept when given.
    #[test]
    fn logs_path_is_added_to_a_bare_address() {
        assert_eq!(logs_url("http://c:4318").unwrap(), "http://c:4318/v1/logs");
        assert_eq!(
            logs_url("https://c:4318/").unwrap(),
            "https://c:4318/v1/logs"
        );
        assert_eq!(
            logs_url("https://gw/otlp/v1/logs").unwrap(),
            "https://gw/otlp/v1/logs"
        );
        assert!(logs_url("grpc://c:4317").is_err());
        assert!(logs_url("c:4318").is_err());
    }

    /// Rule severities map onto OpenTelemetry's ranges in order, above plain events.
    #[test]
    fn severities_map_in_order() {
        let order: Vec<i32> = [
            None,
            Some("low"),
            Some("medium"),
            Some("high"),
            Some("critical"),
        ]
        .into_iter()
        .map(|s| severity_number(s) as i32)
        .collect();
        assert_eq!(order, vec![9, 12, 13, 17, 21]);
    }
}
