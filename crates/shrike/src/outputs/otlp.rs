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
use std::time::Duration;

use anyhow::{bail, Context};
use prost::Message;
use serde::Deserialize;

use super::config::OutputConfig;
use super::http::HttpClient;
use super::tls::TlsConfig;
use super::transport::{Record, Transport, TransportError};
use proto::collector::logs::v1::ExportLogsServiceRequest;
use proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use proto::resource::v1::Resource;

/// An output's OTLP settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's OTLP/HTTP address, `http://host:4318` (`/v1/logs` is added) or the full
    /// logs URL.
    pub url: String,
    /// Extra resource attributes, e.g. `{deployment.environment: prod}`; they may replace the
    /// defaults (`service.name`, `host.name`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Extra HTTP headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long one export may take before it is retried, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Trust roots and client certificate for an `https://` URL.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

impl OtlpConfig {
    /// The settings of a `type: otlp` entry of `outputs:`: `url`, `labels` (resource
    /// attributes), `headers`, `tls`, `timeout_ms`.
    pub fn from_output(c: &OutputConfig) -> anyhow::Result<Self> {
        let Some(url) = c.url.clone() else {
            bail!("an otlp output needs `url` (http://HOST:4318)");
        };
        Ok(OtlpConfig {
            url,
            labels: c.labels.clone(),
            headers: c.headers.clone(),
            timeout_ms: c.timeout_ms,
            tls: c.tls.clone(),
        })
    }
}

fn default_timeout_ms() -> u64 {
    5000
}

/// Exports batches to one OTLP/HTTP logs endpoint.
pub struct OtlpTransport {
    url: String,
    headers: Vec<(String, String)>,
    resource: Resource,
    client: HttpClient,
}

impl OtlpTransport {
    /// Checks the URL, reads the host name and builds the HTTP client (with its TLS settings).
    pub fn new(config: OtlpConfig) -> anyhow::Result<Self> {
        let url = logs_url(&config.url)?;
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
        let client = HttpClient::new(
            Duration::from_millis(config.timeout_ms.max(1)),
            config.tls.as_ref(),
        )
        .context("otlp tls")?;
        Ok(OtlpTransport {
            url,
            headers: config.headers.into_iter().collect(),
            resource,
            client,
        })
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
                        value: Some(any_value::Value::StringValue(r.line.clone())),
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
        self.client
            .post(&self.url, "application/x-protobuf", &self.headers, &body)
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

/// `http://host:4318` becomes `http://host:4318/v1/logs`; a URL with a path is kept.
fn logs_url(url: &str) -> anyhow::Result<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("otlp url {url:?}: give http://host:4318 or https://…");
    };
    if scheme != "http" && scheme != "https" {
        bail!("otlp url {url:?}: the scheme must be http or https (OTLP over HTTP)");
    }
    if rest.is_empty() || rest.starts_with('/') {
        bail!("otlp url {url:?} names no host");
    }
    Ok(match rest.split_once('/') {
        Some((_, path)) if !path.trim_matches('/').is_empty() => url.to_string(),
        _ => format!("{}/v1/logs", url.trim_end_matches('/')),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
