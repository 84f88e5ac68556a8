//! Loki transport: each batch is one `POST /loki/api/v1/push` in Loki's JSON form, records
//! grouped into streams by a few labels, each entry a nanosecond timestamp (a decimal string)
//! and the record's line.
//!
//! A stream's labels are the configured fixed ones (`job="shrike"` unless the configuration
//! names its own `job`), the record's `kind` and, for alerts and incidents, its `severity`.
//! Nothing per-event (pid, path, rule id) becomes a label: Loki indexes every distinct label
//! set as its own stream, so those stay in the line, where LogQL's `| json` finds them.
//! A 2xx is `Ok`; 408, 429, 5xx and connection errors are retried; any other 4xx (Loki's
//! "entry too far behind", "line too long", a refused tenant) rejects the batch.

use std::collections::BTreeMap;

use anyhow::bail;

use super::config::OutputConfig;
use super::http::Endpoint;
use super::transport::{Record, Transport, TransportError};

/// The labels Loki's push path sets per record; a configured label may not take these names.
const RECORD_LABELS: [&str; 2] = ["kind", "severity"];

/// Pushes batches to one Loki.
pub struct LokiTransport {
    endpoint: Endpoint,
    labels: BTreeMap<String, String>,
}

impl LokiTransport {
    /// Reads a `type: loki` entry of `outputs:` (`url`, `labels`, `tenant`, `headers`,
    /// `tls`, `timeout_ms`): checks the URL and label names and builds the HTTP client.
    pub fn new(config: &OutputConfig) -> anyhow::Result<Self> {
        let mut endpoint =
            Endpoint::from_output(config, "loki", "http://HOST:3100", Some(PUSH_PATH))?;
        let mut labels = BTreeMap::from([("job".to_string(), "shrike".to_string())]);
        for (name, value) in &config.labels {
            if !valid_label_name(name) {
                bail!("loki label {name:?}: a label name is letters, digits and '_', not starting with a digit");
            }
            if RECORD_LABELS.contains(&name.as_str()) {
                bail!("loki label {name:?} is set from each record: choose another name");
            }
            labels.insert(name.clone(), value.clone());
        }
        if let Some(tenant) = &config.tenant {
            endpoint
                .headers
                .push(("X-Scope-OrgID".into(), tenant.clone()));
        }
        Ok(LokiTransport { endpoint, labels })
    }

    /// The push request's JSON body for `batch`: one stream per label set, entries in time
    /// order within each.
    pub fn body(&self, batch: &[Record]) -> serde_json::Value {
        let mut streams: BTreeMap<(&str, Option<&str>), Vec<&Record>> = BTreeMap::new();
        for record in batch {
            streams
                .entry((record.kind, record.severity.as_deref()))
                .or_default()
                .push(record);
        }
        let streams: Vec<serde_json::Value> = streams
            .into_iter()
            .map(|((kind, severity), mut records)| {
                records.sort_by_key(|r| r.time_unix_ns);
                let mut labels = self.labels.clone();
                labels.insert("kind".into(), kind.into());
                if let Some(severity) = severity {
                    labels.insert("severity".into(), severity.into());
                }
                let values: Vec<_> = records
                    .iter()
                    .map(|r| serde_json::json!([r.time_unix_ns.to_string(), &*r.line]))
                    .collect();
                serde_json::json!({ "stream": labels, "values": values })
            })
            .collect();
        serde_json::json!({ "streams": streams })
    }
}

impl Transport for LokiTransport {
    fn deliver(&mut self, batch: &[Record]) -> Result<(), TransportError> {
        let body = self.body(batch).to_string();
        self.endpoint
            .post("application/json", body.as_bytes())
            .map(|_| ())
    }
}

/// Appended to a Loki URL given without a path.
const PUSH_PATH: &str = "/loki/api/v1/push";

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn config(url: &str) -> OutputConfig {
        serde_yaml::from_str(&format!("type: loki\nurl: {url}\ntimeout_ms: 1000")).unwrap()
    }

    fn push_url(url: &str) -> anyhow::Result<String> {
        LokiTransport::new(&config(url)).map(|t| t.endpoint.url)
    }

    /// The push path is added to a bare address and kept when the URL already has one.
    #[test]
    fn push_path_is_added_to_a_bare_address() {
        assert_eq!(
            push_url("http://l:3100").unwrap(),
            "http://l:3100/loki/api/v1/push"
        );
        assert_eq!(
            push_url("http://l:3100/").unwrap(),
            "http://l:3100/loki/api/v1/push"
        );
        assert_eq!(
            push_url("https://gw/custom/push").unwrap(),
            "https://gw/custom/push"
        );
        assert!(push_url("l:3100").is_err());
        assert!(push_url("ftp://l").is_err());
    }

    /// Label names Loki would refuse, and the per-record names, are configuration errors.
    #[test]
    fn bad_or_reserved_label_names_are_refused() {
        for name in ["1x", "a-b", "", "kind", "severity"] {
            let mut c = config("http://l:3100");
            c.labels.insert(name.into(), "v".into());
            assert!(LokiTransport::new(&c).is_err(), "{name:?} accepted");
        }
    }

    /// Records split into streams by kind and severity only; pid and rule stay in the line;
    /// entries are time-ordered with nanosecond string timestamps.
    #[test]
    fn streams_are_labelled_by_kind_and_severity_only() {
        let mut c = config("http://l:3100");
        c.labels.insert("env".into(), "prod".into());
        let t = LokiTransport::new(&c).unwrap();
        let rec = |ns: u64, kind: &'static str, sev: Option<&str>| Record {
            line: format!("{{\"t\":{ns},\"pid\":{ns}}}").into(),
            time_unix_ns: ns,
            kind,
            severity: sev.map(Arc::from),
            rule: sev.map(|_| Arc::from("r1")),
        };
        let body = t.body(&[
            rec(30, "process_exec", None),
            rec(10, "process_exec", None),
            rec(20, "alert", Some("high")),
        ]);
        let streams = body["streams"].as_array().unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(
            streams[0]["stream"],
            serde_json::json!({"env": "prod", "job": "shrike", "kind": "alert", "severity": "high"})
        );
        assert_eq!(
            streams[1]["stream"],
            serde_json::json!({"env": "prod", "job": "shrike", "kind": "process_exec"})
        );
        assert_eq!(
            streams[1]["values"],
            serde_json::json!([
                ["10", "{\"t\":10,\"pid\":10}"],
                ["30", "{\"t\":30,\"pid\":30}"]
            ])
        );
    }
}
