//! The wire half of an output: one destination's protocol, behind [`Transport`].
//!
//! An output is a selection (which events), a format (how each becomes a line) and a
//! transport (how lines reach the destination). The output framework owns the first two, a
//! bounded queue and a thread per output, batching, retries with backoff and the per-output
//! counters; a transport only delivers one batch of already-formatted [`Record`]s and says
//! whether the batch arrived. It runs on its output's own thread, so it may block on the
//! network — never for longer than its configured timeout — without stalling the pipeline or
//! another output.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// One event, formatted for one output, with the fields protocols put in their own headers
/// (syslog's severity and timestamp, Loki's labels and nanosecond timestamp, OTLP's
/// `timeUnixNano` and `severityNumber`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The event in the output's format: one JSON object (the event contract) or one compact
    /// line; never a trailing newline.
    pub line: Line,
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

/// An event's formatted text: a piece of the buffer an output's records of one batch share.
/// One allocation per batch and output instead of one per event and output: at tens of thousands of events a
/// second, the small blocks that each record's own string was, freed by another thread in
/// another order, fragmented the heap and kept the agent's resident memory creeping up.
#[derive(Clone)]
pub struct Line {
    buf: Arc<String>,
    start: usize,
    end: usize,
}

impl Line {
    /// The text `buf[start..end]` (on character boundaries).
    pub fn new(buf: Arc<String>, start: usize, end: usize) -> Self {
        debug_assert!(buf.is_char_boundary(start) && buf.is_char_boundary(end) && start <= end);
        Line { buf, start, end }
    }
}

#[cfg(test)]
impl Line {
    /// Whether `self` and `other` are pieces of one buffer.
    pub fn shares_buffer(&self, other: &Line) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }

    /// The length of the whole buffer this is a piece of.
    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }
}

impl Deref for Line {
    type Target = str;

    fn deref(&self) -> &str {
        &self.buf[self.start..self.end]
    }
}

impl From<String> for Line {
    fn from(text: String) -> Self {
        let end = text.len();
        Line::new(Arc::new(text), 0, end)
    }
}

impl From<&str> for Line {
    fn from(text: &str) -> Self {
        Line::from(text.to_string())
    }
}

impl PartialEq for Line {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Line {}

impl PartialEq<Line> for String {
    fn eq(&self, other: &Line) -> bool {
        self.as_str() == &**other
    }
}

impl PartialEq<&str> for Line {
    fn eq(&self, other: &&str) -> bool {
        &**self == *other
    }
}

impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
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
