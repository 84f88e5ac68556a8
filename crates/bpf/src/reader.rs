//! The one ring-buffer reader thread.
//!
//! The kernel writes records without waking anyone until enough data waits (see
//! `bpf/lib/emit.h`); this thread polls with a short timeout, copies every record of one poll
//! into a [`Batch`] (one allocation per batch, not per record) and hands the batch to the
//! pipeline through a bounded channel. When the pipeline falls behind the channel fills, the
//! thread counts the back-pressure and blocks, the ring buffer fills, and the kernel counts what
//! it drops: nothing is queued without bound and nothing is lost silently.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use libbpf_rs::{MapHandle, RingBufferBuilder};

/// Records from one poll of the ring buffer, back to back.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    pub fn push(&mut self, record: &[u8]) {
        self.data.extend_from_slice(record);
        self.ends.push(self.data.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The records, in ring-buffer order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(s, e)| &self.data[s..e])
    }
}

/// Reader statistics, shared with the agent.
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Records read from the ring buffer.
    pub records: AtomicU64,
    /// Batches handed over.
    pub batches: AtomicU64,
    /// Times the pipeline's channel was full and the reader had to wait.
    pub backpressure: AtomicU64,
}

/// How the reader polls.
#[derive(Debug, Clone, Copy)]
pub struct ReaderOptions {
    /// Longest a record waits in the ring buffer when the wake-up threshold is not reached.
    pub poll_timeout: Duration,
    /// Batches the channel to the pipeline holds.
    pub channel_batches: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            poll_timeout: Duration::from_millis(100),
            channel_batches: 64,
        }
    }
}

/// A running reader thread; stop it with [`Reader::request_stop`], drain the channel until it
/// closes, then [`Reader::join`].
pub struct Reader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), libbpf_rs::Error>>>,
    pub stats: Arc<ReaderStats>,
}

impl Reader {
    /// Starts the thread reading `events` (the ring buffer map). Batches arrive on the returned
    /// receiver; it closes when the reader stops.
    pub fn start(
        events: MapHandle,
        opts: ReaderOptions,
    ) -> std::io::Result<(Reader, Receiver<Batch>)> {
        let (tx, rx) = std::sync::mpsc::sync_channel(opts.channel_batches);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ReaderStats::default());
        let thread = {
            let stop = stop.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("shrike-ringbuf".into())
                .spawn(move || read_loop(events, opts, tx, &stop, &stats))?
        };
        Ok((
            Reader {
                stop,
                thread: Some(thread),
                stats,
            },
            rx,
        ))
    }

    /// Asks the thread to stop after its current poll. It then hands over what the ring still
    /// holds and closes the channel: keep receiving until the channel closes (the thread may be
    /// waiting for room in it), then [`Reader::join`].
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for the thread to end; returns its error, if it ended with one. Call after the
    /// channel has closed, or the thread may be blocked handing over a batch.
    pub fn join(mut self) -> Result<(), libbpf_rs::Error> {
        self.request_stop();
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for Reader {
    /// Stops the thread without waiting for it: joining here could wait forever on a full
    /// channel nobody drains. The thread ends once the receiver is dropped.
    fn drop(&mut self) {
        self.request_stop();
    }
}

fn read_loop(
    events: MapHandle,
    opts: ReaderOptions,
    tx: SyncSender<Batch>,
    stop: &AtomicBool,
    stats: &ReaderStats,
) -> Result<(), libbpf_rs::Error> {
    let batch = std::cell::RefCell::new(Batch::default());
    let mut builder = RingBufferBuilder::new();
    builder.add(&events, |record: &[u8]| {
        batch.borrow_mut().push(record);
        0
    })?;
    let ring = builder.build()?;
    while !stop.load(Ordering::Relaxed) {
        // poll() only drains rings that signalled a wake-up; records written with
        // BPF_RB_NO_WAKEUP are collected by the consume() that follows every poll.
        // A signal that stops and continues the agent (SIGSTOP/SIGCONT, a debugger) interrupts
        // the wait: that is no error, the ring is simply drained now.
        retry_interrupted(|| ring.poll(opts.poll_timeout))?;
        retry_interrupted(|| ring.consume())?;
        let full = std::mem::take(&mut *batch.borrow_mut());
        if full.is_empty() {
            continue;
        }
        stats
            .records
            .fetch_add(full.len() as u64, Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(full)) => {
                stats.backpressure.fetch_add(1, Ordering::Relaxed);
                if tx.send(full).is_err() {
                    break;
                }
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
    // Hand over what is still in the ring so a clean stop loses nothing already recorded.
    retry_interrupted(|| ring.consume())?;
    let rest = std::mem::take(&mut *batch.borrow_mut());
    if !rest.is_empty() {
        stats
            .records
            .fetch_add(rest.len() as u64, Ordering::Relaxed);
        let _ = tx.send(rest);
    }
    Ok(())
}

/// Runs `op` again while it fails with EINTR.
fn retry_interrupted(
    mut op: impl FnMut() -> Result<(), libbpf_rs::Error>,
) -> Result<(), libbpf_rs::Error> {
    loop {
        match op() {
            Err(err) if err.kind() == libbpf_rs::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keeps_record_boundaries_and_order() {
        let mut b = Batch::default();
        b.push(b"one");
        b.push(b"");
        b.push(b"three");
        let records: Vec<&[u8]> = b.iter().collect();
        assert_eq!(records, [&b"one"[..], b"", b"three"]);
        assert_eq!(b.len(), 3);
    }
}
