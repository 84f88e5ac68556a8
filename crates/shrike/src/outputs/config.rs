//! One output's configuration (`outputs:` in the configuration file): which events it takes
//! ([`Select`]), how each is written ([`Format`]), its queue, batching and retry settings,
//! and its destination's own settings. One flat struct with `type:` naming the destination,
//! so every unknown key is refused with its line and column; [`OutputConfig::check`] then
//! refuses settings that the output's type does not use.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use shrike_event::{Event, EventKind};

use super::tls::TlsConfig;

/// The destination (`type:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// The agent's standard output (what `shrike run` always wrote).
    Stdout,
    /// A file, rotated by size and age, old files compressed.
    File,
    /// RFC 5424 syslog over /dev/log, UDP, TCP, TCP+TLS or RELP (acknowledged).
    Syslog,
    /// HTTP POST of JSON arrays.
    Webhook,
    /// Loki's push API.
    Loki,
    /// NATS JetStream.
    Nats,
    /// OTLP logs over HTTP.
    Otlp,
}

impl OutputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Stdout => "stdout",
            OutputKind::File => "file",
            OutputKind::Syslog => "syslog",
            OutputKind::Webhook => "webhook",
            OutputKind::Loki => "loki",
            OutputKind::Nats => "nats",
            OutputKind::Otlp => "otlp",
        }
    }
}

/// How each event becomes a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The event contract: one JSON object.
    #[default]
    Json,
    /// The one-line human-readable text (`--output compact`).
    Compact,
}

/// Which events an output takes; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Select {
    /// `all` (the default) or `alerts`: only events that raised an alert, incidents and the
    /// agent's own reports (`agent_health`, `events_lost`, `alerts_suppressed`).
    #[serde(default)]
    pub events: Selection,
    /// Only alerts and incidents of at least this severity (`low`, `medium`, `high`,
    /// `critical`); the agent's own reports still pass.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Only these event kinds (contract names, e.g. `process_exec`, `incident`).
    #[serde(default)]
    pub kinds: Option<Vec<EventKind>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    #[default]
    All,
    Alerts,
}

/// A rule's severity, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Severity> {
        Some(match text {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// The agent's reports about itself: they pass every severity and alert selection, so an
/// output filtered to alerts still hears about loss and health.
fn is_agent_report(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::AgentHealth | EventKind::EventsLost | EventKind::AlertsSuppressed
    )
}

/// The highest severity an event carries: its alerts', or its incident's.
pub fn event_severity(event: &Event) -> Option<&str> {
    let alerts = event
        .alerts
        .iter()
        .map(|a| a.severity.as_str())
        .max_by_key(|s| Severity::parse(s));
    alerts.or(event.incident().map(|i| i.severity.as_str()))
}

impl Select {
    /// Whether `event` goes to this output.
    pub fn matches(&self, event: &Event) -> bool {
        if let Some(kinds) = &self.kinds {
            if !kinds.contains(&event.kind) {
                return false;
            }
        }
        let report = is_agent_report(event.kind);
        let alerting = !event.alerts.is_empty() || event.kind == EventKind::Incident;
        if self.events == Selection::Alerts && !alerting && !report {
            return false;
        }
        if let Some(min) = self.min_severity {
            if report {
                return true;
            }
            return event_severity(event)
                .and_then(Severity::parse)
                .is_some_and(|s| s >= min);
        }
        true
    }
}

/// Batching: a batch is sent when it holds `max_events` or its first event waited
/// `max_delay_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "default_batch_events")]
    pub max_events: usize,
    #[serde(default = "default_batch_delay")]
    pub max_delay_ms: u64,
}

fn default_batch_events() -> usize {
    100
}
fn default_batch_delay() -> u64 {
    1000
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: default_batch_events(),
            max_delay_ms: default_batch_delay(),
        }
    }
}

/// Exponential backoff between deliveries of a batch that failed with a retryable error:
/// `initial_ms`, doubled each time, at most `max_ms`; the batch is kept until it arrives
/// (at-least-once) while new events queue behind it (and are dropped, counted, once the
/// queue is full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "default_retry_initial")]
    pub initial_ms: u64,
    #[serde(default = "default_retry_max")]
    pub max_ms: u64,
}

fn default_retry_initial() -> u64 {
    200
}
fn default_retry_max() -> u64 {
    30_000
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_ms: default_retry_initial(),
            max_ms: default_retry_max(),
        }
    }
}

fn default_queue() -> usize {
    10_000
}
fn default_timeout() -> u64 {
    10_000
}

/// One entry of `outputs:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The output's name in metrics, logs and `events_lost` reports; defaults to its type
    /// (then `type-2`, … when several share one).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: OutputKind,
    #[serde(default)]
    pub select: Select,
    #[serde(default)]
    pub format: Format,
    /// Events waiting for this output at most; when full the newest is dropped (counted).
    #[serde(default = "default_queue")]
    pub queue: usize,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Longest one delivery (connect, send, acknowledgement) may take.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,

    // file
    /// file: the file written (its directory must exist).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// file: rotate when the file reaches this many bytes (e.g. 104857600); nats: the most
    /// bytes the stream the output creates holds before it drops the oldest (default: no limit).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// file: rotate when the file is this many seconds old; nats: the stream the output
    /// creates drops messages older than this (default: kept until `max_bytes`).
    #[serde(default)]
    pub max_age_secs: Option<u64>,
    /// file: rotated files kept (`PATH.1.gz` newest); older ones are deleted.
    #[serde(default)]
    pub keep: Option<usize>,
    /// file: gzip rotated files (default true).
    #[serde(default)]
    pub compress: Option<bool>,

    // syslog, nats
    /// syslog: `unix:///dev/log` (default), `udp://HOST:PORT`, `tcp://HOST:PORT`,
    /// `tls://HOST:PORT`, `relp://HOST:PORT` or `relps://HOST:PORT`; nats: the server URL.
    #[serde(default)]
    pub address: Option<String>,
    /// syslog: the facility name (default `authpriv`).
    #[serde(default)]
    pub facility: Option<String>,
    /// syslog: APP-NAME (default `shrike`).
    #[serde(default)]
    pub app_name: Option<String>,

    // webhook, loki, otlp
    /// webhook, loki, otlp: the endpoint URL.
    #[serde(default)]
    pub url: Option<String>,
    /// webhook, loki, otlp: extra HTTP headers (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Trust roots and client certificate for TLS (syslog `tls://`, `https://` URLs, nats).
    #[serde(default)]
    pub tls: Option<TlsConfig>,

    // loki, nats, otlp (read by their transports)
    /// loki: static labels on every stream; otlp: resource attributes.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// loki: tenant (`X-Scope-OrgID`).
    #[serde(default)]
    pub tenant: Option<String>,
    /// nats: the JetStream stream (created when missing).
    #[serde(default)]
    pub stream: Option<String>,
    /// nats: the subject events are published on.
    #[serde(default)]
    pub subject: Option<String>,
    /// nats: a credentials file.
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// nats: create the stream when it is missing (default true); with false, a missing
    /// stream is an error the output retries until someone creates it.
    #[serde(default)]
    pub create_stream: Option<bool>,
    /// nats: for the stream the output creates, how long the server remembers message ids to
    /// drop redelivered copies, in seconds (default 120). A batch redelivered later than this
    /// is stored twice.
    #[serde(default)]
    pub duplicate_window_secs: Option<u64>,
}

impl OutputConfig {
    /// A stdout output with default settings.
    pub fn stdout(format: Format) -> Self {
        serde_yaml::from_str::<OutputConfig>("type: stdout")
            .map(|mut c| {
                c.format = format;
                c
            })
            .unwrap_or_else(|_| unreachable!("a literal configuration parses"))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }

    /// The settings this output's type does not read, or a required one missing: every
    /// problem, each naming the key.
    pub fn check(&self) -> Vec<String> {
        use OutputKind::*;
        let mut problems = Vec::new();
        let kind = self.kind;
        let mut unused = |set: bool, key: &str, users: &[OutputKind]| {
            if set && !users.contains(&kind) {
                let users: Vec<_> = users.iter().map(|k| k.as_str()).collect();
                problems.push(format!(
                    "`{key}` is not a {} setting (it is for: {})",
                    kind.as_str(),
                    users.join(", ")
                ));
            }
        };
        unused(self.path.is_some(), "path", &[File]);
        unused(self.max_bytes.is_some(), "max_bytes", &[File, Nats]);
        unused(self.max_age_secs.is_some(), "max_age_secs", &[File, Nats]);
        unused(self.keep.is_some(), "keep", &[File]);
        unused(self.compress.is_some(), "compress", &[File]);
        unused(self.address.is_some(), "address", &[Syslog, Nats]);
        unused(self.facility.is_some(), "facility", &[Syslog]);
        unused(self.app_name.is_some(), "app_name", &[Syslog]);
        unused(self.url.is_some(), "url", &[Webhook, Loki, Otlp]);
        unused(!self.headers.is_empty(), "headers", &[Webhook, Loki, Otlp]);
        unused(
            self.tls.is_some(),
            "tls",
            &[Syslog, Webhook, Loki, Otlp, Nats],
        );
        unused(!self.labels.is_empty(), "labels", &[Loki, Otlp]);
        unused(self.tenant.is_some(), "tenant", &[Loki]);
        unused(self.stream.is_some(), "stream", &[Nats]);
        unused(self.subject.is_some(), "subject", &[Nats]);
        unused(self.credentials.is_some(), "credentials", &[Nats]);
        unused(self.create_stream.is_some(), "create_stream", &[Nats]);
        unused(
            self.duplicate_window_secs.is_some(),
            "duplicate_window_secs",
            &[Nats],
        );
        if kind == Nats && self.create_stream == Some(false) {
            for (set, key) in [
                (self.max_bytes.is_some(), "max_bytes"),
                (self.max_age_secs.is_some(), "max_age_secs"),
                (
                    self.duplicate_window_secs.is_some(),
                    "duplicate_window_secs",
                ),
            ] {
                if set {
                    problems.push(format!(
                        "`{key}` shapes the stream the output creates, and `create_stream: false` creates none: set it on the stream itself (nats stream edit) or drop `create_stream: false`"
                    ));
                }
            }
        }
        if self.duplicate_window_secs == Some(0) {
            problems.push(
                "`duplicate_window_secs` must be at least 1 (JetStream reads 0 as its own default)"
                    .into(),
            );
        }
        if kind == Nats && self.max_bytes.is_some_and(|b| b > i64::MAX as u64) {
            problems.push(format!(
                "`max_bytes` is at most {} for a nats stream",
                i64::MAX
            ));
        }
        match kind {
            File if self.path.is_none() => problems.push("a file output needs `path`".into()),
            Webhook | Loki | Otlp if self.url.is_none() => {
                problems.push(format!("a {} output needs `url`", kind.as_str()))
            }
            Nats if self.address.is_none() => problems.push("a nats output needs `address`".into()),
            _ => {}
        }
        if self.queue == 0 {
            problems.push("`queue` must be at least 1".into());
        }
        if self.batch.max_events == 0 {
            problems.push("`batch.max_events` must be at least 1".into());
        }
        if self.retry.initial_ms == 0 || self.retry.max_ms < self.retry.initial_ms {
            problems.push("`retry`: need 0 < initial_ms <= max_ms".into());
        }
        if self.keep == Some(0) {
            problems.push("`keep` must be at least 1".into());
        }
        if self.max_bytes == Some(0) || self.max_age_secs == Some(0) {
            problems.push("`max_bytes` and `max_age_secs` must be at least 1".into());
        }
        problems
    }
}
