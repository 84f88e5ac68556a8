//! The wire half of an output: one destination's protocol, behind [`Transport`].
//!
//! An output is a selection (which events), a format (how each becomes a line) and a
//! transport (how lines reach the destination). The output framework owns the first two, a
//! bounded queue and a thread per output, batching, retries with backoff and the per-output
//! counters; a transport only delivers one batch of already-formatted [`Record`]s and says
//! whether the batch arrived. It runs on its output's own thread, so it may block on the
//! network — never for longer than its configured timeout — without stalling the pipeline or
//! another output.

use std::sync::Arc;

/// One event, formatted for one output, with the fields protocols put in their own headers
/// (syslog's severity and timestamp, Loki's labels and nanosecond timestamp, OTLP's
/// `timeUnixNano` and `severityNumber`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The event in the output's format: one JSON object (the event contract) or one compact
    /// line; never a trailing newline.
    pub line: String,
    /// When the event happened: nanoseconds since the Unix epoch, UTC.
    pub time_unix_ns: u64,
    /// The event kind's contract name (`process_exec`, `alert`, `incident`, …).
    pub kind: &'static str,
    /// For an alert or incident, the rule's severity as the policy spells it (`low`,
    /// `medium`, `high`, `critical`); `None` for a plain event.
    pub severity: Option<Arc<str>>,
    /// For an alert, the rule id; `None` otherwise.
    pub rule: Option<Arc<str>>,
}

/// Why a batch was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Nothing of the batch is known to have arrived and trying again may work (connection
    /// refused or lost, timeout, HTTP 429 or 5xx): the framework keeps the batch, backs off and
    /// delivers it again — so a transport must tolerate redelivery (at-least-once).
    #[error("{0} (will retry)")]
    Retry(String),
    /// The destination refused the batch itself (HTTP 4xx other than 408/429, a protocol
    /// error about the payload): retrying cannot help; the batch is counted as dropped.
    #[error("{0} (batch dropped)")]
    Rejected(String),
}

/// One destination's protocol. Implementations keep their own connection and reconnect
/// inside [`Transport::deliver`] when it was lost.
pub trait Transport: Send {
    /// Delivers `batch` (never empty). `Ok` means the destination acknowledged every record
    /// of it (for stream protocols without acknowledgements: every byte was written).
    fn deliver(&mut self, batch: &[Record]) -> Result<(), TransportError>;
}
