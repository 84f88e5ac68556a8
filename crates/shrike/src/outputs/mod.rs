//! Outputs: where events go. Each output is a selection ([`config::Select`]), a format (the
//! JSON contract or compact text) and a [`transport::Transport`] running on its own thread
//! behind a bounded queue ([`worker`]); the pipeline hands every event to [`Outputs::send`],
//! which formats it once per format into the batch's buffer, and at the end of each batch
//! [`Outputs::flush`] offers each output the records it selects, never blocking: the records
//! of a batch share its buffer ([`transport::Line`]). stdout is not one of these threads: the agent writes it itself (`crate::output`),
//! with the selection and format of the configuration's `stdout` entry.
//!
//! A transport is built from its configuration by [`build_transport`], one arm per type.

pub mod config;
pub mod fanout;
pub mod file;
pub mod http;
pub mod loki;
pub mod metrics;
pub mod nats;
pub mod otlp;
pub mod syslog;
pub mod tls;
pub mod transport;
pub mod webhook;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use shrike_event::json::ContextCache;
use shrike_event::{compact, Event};

pub use config::{Format, OutputConfig, OutputKind, Select};
pub use fanout::Fanout;
pub use transport::{Line, Record, Transport, TransportError};
pub use worker::{OutputStats, Worker, WorkerOptions};

/// The transport an output's configuration describes. Every type but `stdout` (which the
/// agent writes itself) has an arm here.
pub fn build_transport(config: &OutputConfig) -> Result<Box<dyn Transport>> {
    Ok(match config.kind {
        OutputKind::File => Box::new(file::FileTransport::open(config)?),
        OutputKind::Syslog => Box::new(syslog::SyslogTransport::new(config)?),
        OutputKind::Webhook => Box::new(webhook::WebhookTransport::new(config)?),
        OutputKind::Stdout => bail!("stdout is written by the agent itself, not a transport"),
        OutputKind::Loki => Box::new(loki::LokiTransport::new(config)?),
        OutputKind::Nats => Box::new(nats::NatsTransport::new(nats::NatsConfig::from_output(
            config,
        )?)?),
        OutputKind::Otlp => Box::new(otlp::OtlpTransport::new(config)?),
    })
}

/// The names outputs go by: `name:`, else the type (`webhook`, then `webhook-2`, … for
/// more of one type, skipping names taken). Two outputs given the same name are an error.
pub fn names(configs: &[OutputConfig]) -> Result<Vec<String>> {
    let mut taken = std::collections::BTreeSet::new();
    for name in configs.iter().filter_map(|c| c.name.as_ref()) {
        if !taken.insert(name.clone()) {
            bail!("two outputs are named {name:?}: give each its own `name:`");
        }
    }
    let mut out = Vec::with_capacity(configs.len());
    for c in configs {
        let name = match &c.name {
            Some(name) => name.clone(),
            None => {
                let base = c.kind.as_str();
                let name = std::iter::once(base.to_owned())
                    .chain((2..).map(|n| format!("{base}-{n}")))
                    .find(|n| !taken.contains(n))
                    .unwrap_or_else(|| unreachable!("an unbounded sequence has a free name"));
                taken.insert(name.clone());
                name
            }
        };
        out.push(name);
    }
    Ok(out)
}

struct Sink {
    select: Select,
    format: Format,
    worker: Worker,
}

/// An event formatted for one output, waiting for its batch's buffer to be shared.
struct Pending {
    sink: usize,
    start: usize,
    end: usize,
    time_unix_ns: u64,
    kind: &'static str,
    severity: Option<Arc<str>>,
    rule: Option<Arc<str>>,
}

/// Every output but stdout, running.
pub struct Outputs {
    sinks: Vec<Sink>,
    contexts: ContextCache,
    json: Vec<u8>,
    /// The batch's formatted events, and the records that point into it, until the flush.
    text: String,
    pending: Vec<Pending>,
    /// Drops already reported in the stream, per output.
    reported: Vec<u64>,
}

impl Outputs {
    /// Starts a thread per output of `configs` other than stdout. An output whose transport
    /// cannot be built (a bad URL, an unreadable CA file) is an error naming it.
    pub fn start(configs: &[OutputConfig]) -> Result<Outputs> {
        let names = names(configs)?;
        let mut sinks = Vec::new();
        for (config, name) in configs.iter().zip(names) {
            if config.kind == OutputKind::Stdout {
                continue;
            }
            let problems = config.check();
            if !problems.is_empty() {
                bail!("output {name:?}: {}", problems.join("; "));
            }
            let transport = build_transport(config).with_context(|| format!("output {name:?}"))?;
            let stats = Arc::new(OutputStats::new(&name, config.kind.as_str()));
            let options = WorkerOptions {
                queue: config.queue,
                batch: config.batch,
                retry: config.retry,
            };
            let worker = Worker::start(transport, options, stats)
                .with_context(|| format!("output {name:?}: starting its thread"))?;
            sinks.push(Sink {
                select: config.select.clone(),
                format: config.format,
                worker,
            });
        }
        Ok(Outputs::with_sinks(sinks))
    }

    /// No output besides stdout.
    pub fn none() -> Outputs {
        Outputs::with_sinks(Vec::new())
    }

    fn with_sinks(sinks: Vec<Sink>) -> Outputs {
        Outputs {
            reported: vec![0; sinks.len()],
            sinks,
            contexts: ContextCache::default(),
            json: Vec::new(),
            text: String::new(),
            pending: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Every output's counters, in configuration order (for metrics and the API).
    pub fn stats(&self) -> Vec<Arc<OutputStats>> {
        self.sinks
            .iter()
            .map(|s| s.worker.stats().clone())
            .collect()
    }

    /// Formats `event` (once per format) for every output that selects it; the records go
    /// out at the next [`Outputs::flush`].
    pub fn send(&mut self, event: &Event) {
        if self.sinks.is_empty() {
            return;
        }
        let mut json: Option<(usize, usize)> = None;
        let mut compact: Option<(usize, usize)> = None;
        let mut severity: Option<Option<Arc<str>>> = None;
        for (i, sink) in self.sinks.iter().enumerate() {
            if !sink.select.matches(event) {
                continue;
            }
            let text = &mut self.text;
            let (start, end) = match sink.format {
                Format::Json => *json.get_or_insert_with(|| {
                    let start = text.len();
                    self.json.clear();
                    if self.contexts.write(event, &mut self.json).is_ok() {
                        text.push_str(&String::from_utf8_lossy(&self.json));
                    }
                    (start, text.len())
                }),
                Format::Compact => *compact.get_or_insert_with(|| {
                    let start = text.len();
                    text.push_str(&compact::render(event));
                    (start, text.len())
                }),
            };
            if start == end {
                continue;
            }
            let severity = severity
                .get_or_insert_with(|| config::event_severity(event).map(Arc::from))
                .clone();
            self.pending.push(Pending {
                sink: i,
                start,
                end,
                time_unix_ns: event.time.0,
                kind: event.kind.as_str(),
                severity,
                rule: event.alerts.first().map(|a| Arc::from(a.rule_id.as_str())),
            });
        }
    }

    /// Offers every output the records sent since the last flush, never blocking (a full
    /// queue drops, counted). They share one buffer, freed once the last of them is delivered
    /// or dropped.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            self.text.clear();
            return;
        }
        let next = String::with_capacity(self.text.len());
        let buf = Arc::new(std::mem::replace(&mut self.text, next));
        for p in self.pending.drain(..) {
            self.sinks[p.sink].worker.offer(Record {
                line: Line::new(buf.clone(), p.start, p.end),
                time_unix_ns: p.time_unix_ns,
                kind: p.kind,
                severity: p.severity,
                rule: p.rule,
            });
        }
    }

    /// What each output dropped since the last call, by name (only outputs that dropped):
    /// the agent reports it in an `events_lost` event on every output.
    pub fn new_drops(&mut self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (sink, reported) in self.sinks.iter().zip(self.reported.iter_mut()) {
            let stats = sink.worker.stats();
            let dropped = stats.dropped();
            if dropped > *reported {
                out.insert(stats.name.clone(), dropped - *reported);
                *reported = dropped;
            }
        }
        out
    }

    /// Closes every queue and gives the outputs `grace` (together) to deliver what they
    /// hold — except outputs already failing, which drop it at once — so exit is never held
    /// up by a dead destination for longer than ~50 ms; logs each output's totals.
    pub fn finish(mut self, grace: Duration) {
        self.flush();
        let deadline = std::time::Instant::now() + grace;
        for sink in &mut self.sinks {
            sink.worker.close();
        }
        let all_done = |sinks: &[Sink]| sinks.iter().all(|s| s.worker.is_finished());
        while !all_done(&self.sinks) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for sink in &self.sinks {
            sink.worker.stop();
        }
        let give_up = std::time::Instant::now() + Duration::from_millis(50);
        while !all_done(&self.sinks) && std::time::Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(5));
        }
        for sink in self.sinks {
            let s = sink.worker.stats().clone();
            sink.worker.join_or_leave();
            tracing::info!(
                output = %s.name,
                sent = s.sent(),
                dropped = s.dropped(),
                errors = s.errors.load(Ordering::Relaxed),
                "output totals"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use shrike_event::{EventKind, Process, Timestamp};

    /// A transport that keeps what it is given.
    struct Keep(Arc<Mutex<Vec<Record>>>);

    impl Transport for Keep {
        fn deliver(&mut self, batch: &[Record]) -> Result<(), TransportError> {
            self.0.lock().unwrap().extend_from_slice(batch);
            Ok(())
        }
    }

    /// A batch's records go out at the flush, not before, each its event's JSON; and every
    /// output's records of one batch are pieces of one buffer, not an allocation per event
    /// and output.
    #[test]
    fn a_batchs_records_go_out_at_the_flush_and_share_one_buffer() {
        let kept: Vec<Arc<Mutex<Vec<Record>>>> = (0..2).map(|_| Default::default()).collect();
        let sinks = kept
            .iter()
            .map(|k| Sink {
                select: Select::default(),
                format: Format::Json,
                worker: Worker::start(
                    Box::new(Keep(k.clone())),
                    WorkerOptions {
                        queue: 100,
                        batch: config::BatchConfig {
                            max_events: 1000,
                            max_delay_ms: 5,
                        },
                        retry: config::RetryConfig::default(),
                    },
                    Arc::new(OutputStats::new("keep", "file")),
                )
                .unwrap(),
            })
            .collect();
        let mut outputs = Outputs::with_sinks(sinks);
        let events: Vec<Event> = (0..3u32)
            .map(|i| {
                Event::new(
                    Timestamp(u64::from(i)),
                    EventKind::ProcessExec,
                    "node".into(),
                    Arc::new(Process {
                        pid: 100 + i,
                        ..Process::default()
                    }),
                )
            })
            .collect();
        for event in &events {
            outputs.send(event);
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            kept.iter().all(|k| k.lock().unwrap().is_empty()),
            "nothing is offered before the flush"
        );
        outputs.flush();
        outputs.finish(Duration::from_secs(5));
        let all: Vec<Record> = kept
            .iter()
            .flat_map(|k| k.lock().unwrap().clone())
            .collect();
        assert_eq!(all.len(), 6, "each output got every event");
        for (n, record) in all.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(&record.line).unwrap();
            assert_eq!(v["process"]["pid"], 100 + n % 3, "{}", &*record.line);
        }
        assert!(
            all.windows(2).all(|w| w[0].line.shares_buffer(&w[1].line)),
            "one buffer per batch"
        );
    }

    fn kinds(yaml: &str) -> Vec<OutputConfig> {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// Unnamed outputs are named by type and numbered past names already taken; a name
    /// given twice is refused.
    #[test]
    fn outputs_get_unique_names() {
        let c = kinds("[{type: webhook, url: x}, {type: webhook, url: y, name: webhook-2}, {type: webhook, url: z}, {type: file, path: p}]");
        assert_eq!(
            names(&c).unwrap(),
            ["webhook", "webhook-2", "webhook-3", "file"]
        );
        let c = kinds("[{type: file, path: a, name: x}, {type: file, path: b, name: x}]");
        assert!(names(&c).unwrap_err().to_string().contains("\"x\""));
    }
}
