//! The one ring-buffer reader thread.
//!
//! The kernel writes records without waking anyone until enough data waits (see
//! `bpf/lib/emit.h`); this thread waits for a wake-up or a short timeout, reads the ring
//! ([`crate::ringbuf`], its data mapped once), copies the records it finds into
//! [`Batch`]es of at most about [`ReaderOptions::batch_bytes`] (one allocation per batch, not
//! per record; a reader starved of CPU finds a full ring, and one batch of it all would be
//! serialized into one output chunk several times its size) and hands each batch to the
//! pipeline through a bounded channel. The hand-off is bounded twice: in batches (the channel)
//! and in bytes (a budget each batch holds until the pipeline drops it), because one batch can be
//! a whole ring buffer's worth: without the byte bound a pipeline that falls behind would let
//! 64 full rings (1 GiB at the default 16 MiB) pile up in user space. When either bound is
//! reached the thread counts the back-pressure and blocks, the ring buffer fills, and the kernel
//! counts what it drops: nothing is queued without bound and nothing is lost silently.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use libbpf_rs::{MapCore, MapHandle};

use crate::ringbuf::RingBuffer;

/// Records read from the ring buffer in one go (at most about
/// [`ReaderOptions::batch_bytes`]), back to back.
#[derive(Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
    /// The share of the reader's byte budget this batch holds until it is dropped.
    permit: Option<Permit>,
}

impl Batch {
    pub fn push(&mut self, record: &[u8]) {
        self.data.extend_from_slice(record);
        self.ends.push(self.data.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The records' bytes.
    pub fn bytes(&self) -> usize {
        self.data.len()
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
    /// Times the pipeline's channel was full, or its byte budget spent, and the reader had to
    /// wait.
    pub backpressure: AtomicU64,
}

/// How the reader polls.
#[derive(Debug, Clone, Copy)]
pub struct ReaderOptions {
    /// Longest a record waits in the ring buffer when the wake-up threshold is not reached.
    pub poll_timeout: Duration,
    /// Batches the channel to the pipeline holds.
    pub channel_batches: usize,
    /// Record bytes in one batch, about (the record that reaches it ends the batch).
    pub batch_bytes: usize,
    /// Record bytes handed over and not yet dropped by the pipeline, at most (one batch larger
    /// than this still passes alone). The agent sets it to the ring buffer's size, so user space
    /// holds at most one more ring's worth of records than the kernel does.
    pub bytes_in_flight: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            poll_timeout: Duration::from_millis(100),
            channel_batches: 64,
            batch_bytes: 1 << 20,
            bytes_in_flight: 16 << 20,
        }
    }
}

/// The bytes of the batches handed over and not yet dropped, against a limit.
#[derive(Debug)]
struct ByteBudget {
    limit: usize,
    held: Mutex<usize>,
    freed: Condvar,
}

/// One batch's share of a [`ByteBudget`], given back when the batch is dropped.
#[derive(Debug)]
struct Permit {
    budget: Arc<ByteBudget>,
    bytes: usize,
}

impl ByteBudget {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(ByteBudget {
            limit: limit.max(1),
            held: Mutex::new(0),
            freed: Condvar::new(),
        })
    }

    /// Takes `bytes` from the budget, first waiting while other batches hold it and `bytes`
    /// does not fit beside them; `waits` is counted up as a wait begins. Returns whether it had
    /// to wait. Once `stop` is set it stops waiting: the final hand-off may overshoot, and it is
    /// drained right away.
    fn acquire(
        self: &Arc<Self>,
        bytes: usize,
        stop: &AtomicBool,
        waits: &AtomicU64,
    ) -> (Permit, bool) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mut waited = false;
        while *held > 0 && held.saturating_add(bytes) > self.limit && !stop.load(Ordering::Relaxed)
        {
            if !waited {
                waits.fetch_add(1, Ordering::Relaxed);
            }
            waited = true;
            held = self
                .freed
                .wait_timeout(held, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *held += bytes;
        let permit = Permit {
            budget: self.clone(),
            bytes,
        };
        (permit, waited)
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        *self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut held = self.budget.held.lock().unwrap_or_else(|p| p.into_inner());
        *held = held.saturating_sub(self.bytes);
        self.budget.freed.notify_one();
    }
}

/// A running reader thread; stop it with [`Reader::request_stop`], drain the channel until it
/// closes, then [`Reader::join`].
pub struct Reader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
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
    pub fn join(mut self) -> std::io::Result<()> {
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
) -> std::io::Result<()> {
    let mut ring = RingBuffer::new(events.as_fd(), events.max_entries())?;
    let batch_bytes = opts.batch_bytes.max(1);
    let budget = ByteBudget::new(opts.bytes_in_flight);
    // Reads what the ring holds, a batch at a time, handing each over: false once the pipeline
    // is gone.
    let drain = |ring: &mut RingBuffer| -> bool {
        loop {
            let mut batch = Batch::default();
            let full = ring.consume(|record| {
                batch.push(record);
                batch.bytes() < batch_bytes
            });
            if !hand_over(batch, &tx, &budget, stop, stats) {
                return false;
            }
            if !full {
                return true;
            }
        }
    };
    while !stop.load(Ordering::Relaxed) {
        // Records written with BPF_RB_NO_WAKEUP wake nobody: the timeout collects them.
        ring.wait(opts.poll_timeout)?;
        if !drain(&mut ring) {
            return Ok(());
        }
    }
    // Hand over what is still in the ring so a clean stop loses nothing already recorded.
    drain(&mut ring);
    Ok(())
}

/// Hands one batch to the pipeline, first taking its bytes from the budget; counts the
/// back-pressure when either bound made it wait. `false` when the pipeline is gone.
fn hand_over(
    mut batch: Batch,
    tx: &SyncSender<Batch>,
    budget: &Arc<ByteBudget>,
    stop: &AtomicBool,
    stats: &ReaderStats,
) -> bool {
    if batch.is_empty() {
        return true;
    }
    stats
        .records
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    stats.batches.fetch_add(1, Ordering::Relaxed);
    let (permit, waited) = budget.acquire(batch.bytes(), stop, &stats.backpressure);
    batch.permit = Some(permit);
    match tx.try_send(batch) {
        Ok(()) => true,
        Err(TrySendError::Full(batch)) => {
            if !waited {
                stats.backpressure.fetch_add(1, Ordering::Relaxed);
            }
            tx.send(batch).is_ok()
        }
        Err(TrySendError::Disconnected(_)) => false,
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

    /// A batch waits while earlier ones hold the budget and it does not fit beside them, and
    /// goes as soon as they are dropped; an oversized batch passes alone; a stop ends the wait.
    #[test]
    fn the_byte_budget_holds_back_until_batches_are_dropped() {
        let budget = ByteBudget::new(100);
        let running = AtomicBool::new(false);
        let waits = AtomicU64::new(0);
        let (first, waited) = budget.acquire(60, &running, &waits);
        assert!(!waited);
        let (second, waited) = budget.acquire(40, &running, &waits);
        assert!(!waited);
        assert_eq!(budget.held(), 100);

        let released = Arc::new(AtomicBool::new(false));
        let waiter = {
            let budget = budget.clone();
            let released = released.clone();
            std::thread::spawn(move || {
                let (third, waited) =
                    budget.acquire(50, &AtomicBool::new(false), &AtomicU64::new(0));
                // It may only have gone after the first batch was dropped.
                assert!(released.load(Ordering::SeqCst));
                (third.bytes, waited)
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            budget.held(),
            100,
            "the third batch went while the budget was spent"
        );
        released.store(true, Ordering::SeqCst);
        drop(first);
        let (bytes, waited) = waiter.join().unwrap();
        assert!(waited);
        assert_eq!(bytes, 50);
        assert_eq!(
            budget.held(),
            40,
            "the third batch's permit was dropped with it"
        );
        drop(second);
        assert_eq!(budget.held(), 0);

        // Alone, a batch larger than the whole budget still passes.
        let (huge, waited) = budget.acquire(1000, &running, &waits);
        assert!(!waited);
        // Once stopping, nothing waits.
        let stopping = AtomicBool::new(true);
        let (late, waited) = budget.acquire(10, &stopping, &waits);
        assert!(!waited);
        drop((huge, late));
        assert_eq!(budget.held(), 0);
        assert_eq!(
            waits.load(Ordering::Relaxed),
            0,
            "only the third batch waited, on its own counter"
        );
    }
}
