//! One output's thread: a bounded queue in front, batches by size and delay, delivery through
//! the output's [`Transport`] with exponential backoff on [`TransportError::Retry`] (the batch
//! is kept: at-least-once), and the output's counters ([`OutputStats`]).
//!
//! The pipeline only ever `try_send`s into the queue: when the queue is full the newest
//! event is dropped and counted, so a slow or dead destination never stalls the agent or
//! another output.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::config::{BatchConfig, RetryConfig};
use super::transport::{Record, Transport, TransportError};

/// One output's counters, shared with whoever reports them (the metrics endpoint reads them
/// with `Ordering::Relaxed`; every counter only grows except `queued`).
#[derive(Debug, Default)]
pub struct OutputStats {
    /// The output's name (`name:` in the configuration, else its type).
    pub name: String,
    /// Its type: `stdout`, `file`, `syslog`, `webhook`, `loki`, `nats`, `otlp`.
    pub kind: &'static str,
    /// Events the destination acknowledged.
    pub sent: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Events dropped because the destination refused their batch, or still undelivered when
    /// the agent stopped.
    pub dropped_rejected: AtomicU64,
    /// Failed delivery attempts (each retry counts once).
    pub errors: AtomicU64,
    /// Events accepted and not yet sent or dropped (queue plus the batch in flight).
    pub queued: AtomicU64,
    /// Whether the last delivery attempt failed.
    pub failing: AtomicBool,
}

impl OutputStats {
    pub fn new(name: &str, kind: &'static str) -> Self {
        OutputStats {
            name: name.to_owned(),
            kind,
            ..OutputStats::default()
        }
    }

    /// Every event this output lost, for whatever reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full.load(Ordering::Relaxed)
            + self.dropped_rejected.load(Ordering::Relaxed)
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// The settings a worker runs with.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    pub queue: usize,
    pub batch: BatchConfig,
    pub retry: RetryConfig,
}

/// The pipeline's end of one output.
pub struct Worker {
    tx: Option<SyncSender<Record>>,
    stats: Arc<OutputStats>,
    /// Set when the agent stops: a retrying batch is then given up after `stop_grace`.
    stopping: Arc<AtomicBool>,
    /// The queue's size, and how many records wait in it (taken by the thread: no longer).
    capacity: usize,
    waiting: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the output's thread.
    pub fn start(
        transport: Box<dyn Transport>,
        options: WorkerOptions,
        stats: Arc<OutputStats>,
    ) -> std::io::Result<Worker> {
        let capacity = options.queue.max(1);
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        let stopping = Arc::new(AtomicBool::new(false));
        let waiting = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::Builder::new()
            .name(format!("out-{}", stats.name))
            .spawn({
                let stats = stats.clone();
                let stopping = stopping.clone();
                let queue = Queue {
                    rx,
                    waiting: waiting.clone(),
                };
                move || run(transport, queue, options, &stats, &stopping)
            })?;
        Ok(Worker {
            tx: Some(tx),
            stats,
            stopping,
            capacity,
            waiting,
            thread: Some(thread),
        })
    }

    pub fn stats(&self) -> &Arc<OutputStats> {
        &self.stats
    }

    /// Queues one record, never blocking: a full queue drops it (counted).
    pub fn offer(&self, record: Record) {
        let Some(tx) = &self.tx else { return };
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        // Counted before the send, so the thread's decrement never comes first.
        self.waiting.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                self.drop_full(1);
            }
        }
    }

    /// How many records the queue takes now at least (the thread only ever makes more room;
    /// the pipeline is the only sender).
    pub fn room(&self) -> usize {
        match self.tx {
            Some(_) => self
                .capacity
                .saturating_sub(self.waiting.load(Ordering::Relaxed)),
            None => 0,
        }
    }

    /// Counts `n` records dropped because the queue had no room for them.
    pub fn drop_full(&self, n: u64) {
        self.stats
            .dropped_queue_full
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Closes the queue: the thread delivers what it still holds, then ends. An output whose
    /// last delivery failed is not waited for: what it holds is dropped (counted) at once.
    pub fn close(&mut self) {
        self.tx = None;
        if self.stats.failing.load(Ordering::Relaxed) {
            self.stopping.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Past the exit grace: the thread drops what it holds instead of delivering it.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Joins the thread if it ended; one still stuck in a delivery (at most its timeout) is
    /// left behind, logged.
    pub fn join_or_leave(mut self) {
        match self.thread.take() {
            Some(t) if t.is_finished() => {
                let _ = t.join();
            }
            Some(_) => {
                warn!(output = %self.stats.name, "output still delivering at exit: left behind")
            }
            None => {}
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

/// The thread's end of the queue: each record taken is no longer waiting.
struct Queue {
    rx: Receiver<Record>,
    waiting: Arc<AtomicUsize>,
}

impl Queue {
    fn took(&self, record: Record) -> Record {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        record
    }

    fn recv(&self) -> Result<Record, std::sync::mpsc::RecvError> {
        self.rx.recv().map(|r| self.took(r))
    }

    fn recv_timeout(&self, timeout: Duration) -> Result<Record, RecvTimeoutError> {
        self.rx.recv_timeout(timeout).map(|r| self.took(r))
    }

    fn try_recv(&self) -> Result<Record, std::sync::mpsc::TryRecvError> {
        self.rx.try_recv().map(|r| self.took(r))
    }
}

fn run(
    mut transport: Box<dyn Transport>,
    rx: Queue,
    options: WorkerOptions,
    stats: &OutputStats,
    stopping: &AtomicBool,
) {
    let max_events = options.batch.max_events.max(1);
    let max_delay = Duration::from_millis(options.batch.max_delay_ms);
    let mut batch: Vec<Record> = Vec::with_capacity(max_events);
    let mut closed = false;
    while !closed {
        // The first event of a batch: wait as long as it takes.
        match rx.recv() {
            Ok(record) => batch.push(record),
            Err(_) => break,
        }
        let deadline = Instant::now() + max_delay;
        while batch.len() < max_events {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(record) => batch.push(record),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        deliver(&mut *transport, &mut batch, options.retry, stats, stopping);
        if closed {
            // The queue is closed: what it still holds goes out in full batches.
            while let Ok(record) = rx.try_recv() {
                batch.push(record);
                if batch.len() == max_events {
                    deliver(&mut *transport, &mut batch, options.retry, stats, stopping);
                }
            }
            if !batch.is_empty() {
                deliver(&mut *transport, &mut batch, options.retry, stats, stopping);
            }
        }
    }
}

/// Delivers `batch` until it arrives, is refused, or the agent stops; empties it.
fn deliver(
    transport: &mut dyn Transport,
    batch: &mut Vec<Record>,
    retry: RetryConfig,
    stats: &OutputStats,
    stopping: &AtomicBool,
) {
    let n = batch.len() as u64;
    let mut backoff = Duration::from_millis(retry.initial_ms.max(1));
    let max_backoff = Duration::from_millis(retry.max_ms.max(retry.initial_ms));
    loop {
        if stopping.load(Ordering::Relaxed) {
            // Past the exit grace: what is left is dropped without another attempt.
            stats.dropped_rejected.fetch_add(n, Ordering::Relaxed);
            break;
        }
        match transport.deliver(batch) {
            Ok(()) => {
                stats.sent.fetch_add(n, Ordering::Relaxed);
                if stats.failing.swap(false, Ordering::Relaxed) {
                    info!(output = %stats.name, "output delivering again");
                }
                break;
            }
            Err(TransportError::Rejected(why)) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                stats.dropped_rejected.fetch_add(n, Ordering::Relaxed);
                warn!(output = %stats.name, events = n, "{why}");
                break;
            }
            Err(TransportError::Retry(why)) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                if !stats.failing.swap(true, Ordering::Relaxed) {
                    warn!(output = %stats.name, "{why}; retrying with backoff");
                }
                if !sleep_unless_stopping(backoff, stopping) {
                    stats.dropped_rejected.fetch_add(n, Ordering::Relaxed);
                    warn!(output = %stats.name, events = n, "agent stopping: undelivered batch dropped");
                    break;
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
    stats.queued.fetch_sub(n, Ordering::Relaxed);
    batch.clear();
}

/// Sleeps `d` in short steps; false as soon as the agent is stopping.
fn sleep_unless_stopping(d: Duration, stopping: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if stopping.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}
