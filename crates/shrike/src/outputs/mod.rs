//! Outputs: where events go. Each output is a selection ([`config::Select`]), a format (the
//! JSON contract or compact text) and a [`transport::Transport`] running on its own thread
//! behind a bounded queue ([`worker`]); the pipeline hands every event to [`Outputs::send`],
//! which formats it once per format into the batch's text, and at the end of each batch
//! [`Outputs::flush`] offers each output the records it selects, never blocking: an output's
//! records of a batch share one buffer ([`transport::Line`]). stdout is not one of these threads: the agent writes it itself (`crate::output`),
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
pub mod relp;
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
    /// The batch's formatted events (kept for the next batch: its capacity is reused), and
    /// the records that point into it, until the flush.
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

    /// Offers every output the records sent since the last flush, never blocking. An output's
    /// records of the batch get one buffer of their own, holding only those its queue has room
    /// for (the others are dropped, counted): a record keeps its buffer alive until it is
    /// delivered, so a buffer holding more than queued records would let a slow output keep
    /// whole batches of other outputs' events alive.
    pub fn flush(&mut self) {
        for (i, sink) in self.sinks.iter().enumerate() {
            let mine = || self.pending.iter().filter(|p| p.sink == i);
            let taken: Vec<&Pending> = mine().take(sink.worker.room()).collect();
            sink.worker.drop_full((mine().count() - taken.len()) as u64);
            if taken.is_empty() {
                continue;
            }
            let mut buf = String::with_capacity(taken.iter().map(|p| p.end - p.start).sum());
            let spans: Vec<(usize, usize)> = taken
                .iter()
                .map(|p| {
                    let start = buf.len();
                    buf.push_str(&self.text[p.start..p.end]);
                    (start, buf.len())
                })
                .collect();
            let buf = Arc::new(buf);
            for (p, (start, end)) in taken.into_iter().zip(spans) {
                sink.worker.offer(Record {
                    line: Line::new(buf.clone(), start, end),
                    time_unix_ns: p.time_unix_ns,
                    kind: p.kind,
                    severity: p.severity.clone(),
                    rule: p.rule.clone(),
                });
            }
        }
        self.pending.clear();
        self.text.clear();
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

    /// A transport that keeps what it is given; with a gate, each delivery first waits for a
    /// message on it.
    struct Keep {
        kept: Arc<Mutex<Vec<Record>>>,
        gate: Option<std::sync::mpsc::Receiver<()>>,
    }

    impl Transport for Keep {
        fn deliver(&mut self, batch: &[Record]) -> Result<(), TransportError> {
            if let Some(gate) = &self.gate {
                let _ = gate.recv();
            }
            self.kept.lock().unwrap().extend_from_slice(batch);
            Ok(())
        }
    }

    fn keeping(
        kept: &Arc<Mutex<Vec<Record>>>,
        gate: Option<std::sync::mpsc::Receiver<()>>,
        queue: usize,
        max_events: usize,
    ) -> Sink {
        Sink {
            select: Select::default(),
            format: Format::Json,
            worker: Worker::start(
                Box::new(Keep {
                    kept: kept.clone(),
                    gate,
                }),
                WorkerOptions {
                    queue,
                    batch: config::BatchConfig {
                        max_events,
                        max_delay_ms: 5,
                    },
                    retry: config::RetryConfig::default(),
                },
                Arc::new(OutputStats::new("keep", "file")),
            )
            .unwrap(),
        }
    }

    fn exec(pid: u32) -> Event {
        Event::new(
            Timestamp(u64::from(pid)),
            EventKind::ProcessExec,
            "node".into(),
            Arc::new(Process {
                pid,
                ..Process::default()
            }),
        )
    }

    fn pid_of(record: &Record) -> u64 {
        let v: serde_json::Value = serde_json::from_str(&record.line).unwrap();
        v["process"]["pid"].as_u64().unwrap()
    }

    /// A batch's records go out at the flush, not before, each its event's JSON; an output's
    /// records of one batch are pieces of one buffer, not an allocation each.
    #[test]
    fn a_batchs_records_go_out_at_the_flush_and_share_a_buffer_per_output() {
        let kept: Vec<Arc<Mutex<Vec<Record>>>> = (0..2).map(|_| Default::default()).collect();
        let mut outputs =
            Outputs::with_sinks(kept.iter().map(|k| keeping(k, None, 100, 1000)).collect());
        for pid in 100..103 {
            outputs.send(&exec(pid));
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            kept.iter().all(|k| k.lock().unwrap().is_empty()),
            "nothing is offered before the flush"
        );
        outputs.flush();
        outputs.finish(Duration::from_secs(5));
        let per_output: Vec<Vec<Record>> = kept.iter().map(|k| k.lock().unwrap().clone()).collect();
        for records in &per_output {
            assert_eq!(
                records.iter().map(pid_of).collect::<Vec<_>>(),
                [100, 101, 102]
            );
            assert!(
                records
                    .windows(2)
                    .all(|w| w[0].line.shares_buffer(&w[1].line)),
                "one buffer per batch and output"
            );
        }
        assert!(!per_output[0][0].line.shares_buffer(&per_output[1][0].line));
    }

    /// An output whose queue has room for two of a batch's five records gets those two, in a
    /// buffer that holds only them (a slow output keeps nothing else alive), and the other
    /// three are counted as dropped.
    #[test]
    fn a_full_queue_takes_what_fits_and_its_buffer_holds_nothing_else() {
        let kept: Arc<Mutex<Vec<Record>>> = Default::default();
        let (open, gate) = std::sync::mpsc::channel();
        let mut outputs = Outputs::with_sinks(vec![keeping(&kept, Some(gate), 2, 1)]);
        // The first record is taken by the output's thread, whose delivery then waits.
        outputs.send(&exec(1));
        outputs.flush();
        let worker = &outputs.sinks[0].worker;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while worker.room() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the record was never taken"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        for pid in 2..7 {
            outputs.send(&exec(pid));
        }
        outputs.flush();
        let stats = outputs.sinks[0].worker.stats().clone();
        assert_eq!(stats.dropped_queue_full.load(Ordering::Relaxed), 3);
        for _ in 0..3 {
            open.send(()).unwrap();
        }
        outputs.finish(Duration::from_secs(5));
        let got = kept.lock().unwrap().clone();
        assert_eq!(got.iter().map(pid_of).collect::<Vec<_>>(), [1, 2, 3]);
        let (a, b) = (&got[1].line, &got[2].line);
        assert!(a.shares_buffer(b));
        assert_eq!(
            a.buffer_len(),
            a.len() + b.len(),
            "the buffer holds the two queued records only"
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
