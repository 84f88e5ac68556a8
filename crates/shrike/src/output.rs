//! Sinks: where events go. stdout as JSON lines (the contract) or compact text for humans.
//!
//! JSON reuses each process image's serialized context (`shrike_event::json::ContextCache`).
//! Both formats are safe on a terminal: compact text escapes control characters, and JSON writes
//! the ones JSON leaves raw (DEL, C1, bidi controls) as `\uXXXX`.
//!
//! **The agent never waits for its output.** Events are serialized on the agent's thread into
//! chunks (a batch's events, handed over every 48 KiB and at its end, in reused buffers); a writer
//! thread of its own does the `write(2)`s. A reader that stops reading (a paused pager, a full
//! pipe, a stuck log shipper) blocks only that thread: the agent keeps honouring SIGINT/SIGTERM,
//! reloading policy and checking loss. While [`MAX_QUEUED`] bytes wait for the writer
//! ([`Output::has_room`] is false) the agent stops taking batches from the ring-buffer reader, so
//! the ring buffer absorbs the stall as it did before (16 MiB by default) and, once full, the
//! kernel drops records and counts them; the agent logs that loss each second as it happens and
//! reports it in the stream as soon as the output takes events again. What must be written while
//! there is no room (a policy change) is dropped and counted instead ([`Output::take_dropped`]). At
//! exit the agent drains the ring buffer into the output and the writer writes what it holds while
//! it makes progress: a blocked output is given up after [`FINISH_STALL`] without progress (a
//! reader that resumes later may find the last line cut), a slow one is waited for (at most
//! [`FINISH_MAX`], or until a second signal); what was not written is counted in the final log
//! line.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shrike_event::json::ContextCache;
use shrike_event::{compact, Event};

/// How many serialized bytes may wait for the writer thread before events are dropped.
pub const MAX_QUEUED: usize = 2 << 20;

/// At exit: how long the writer may make no progress before what it still holds is given up
/// (a blocked output), and how long a writer that is still writing (a slow reader) may take at
/// most (a second SIGINT/SIGTERM gives up at once).
pub const FINISH_STALL: Duration = Duration::from_millis(300);
pub const FINISH_MAX: Duration = Duration::from_secs(60);

/// Bytes the writer thread writes at a time, so that progress is visible.
const WRITE_PIECE: usize = 64 * 1024;

/// How events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line (the event contract).
    Json,
    /// One readable line per event.
    Compact,
}

/// Serialized events on their way to the writer thread.
struct Chunk {
    bytes: Vec<u8>,
    events: u64,
}

/// What the agent's thread and the writer thread share.
#[derive(Default)]
struct Shared {
    /// Bytes handed to the writer and not yet written.
    queued: AtomicUsize,
    /// Events dropped because the writer was too far behind, not yet taken.
    dropped: AtomicU64,
    /// Events handed to the writer and not yet written.
    pending_events: AtomicU64,
    /// Bytes written so far (progress, for `finish`).
    written: AtomicU64,
    failed: AtomicBool,
    error: Mutex<Option<io::Error>>,
    /// Written chunks' buffers, emptied, for the next batches: a fresh buffer per batch meant
    /// the allocator handing back and faulting in its pages again on every batch.
    spare: Mutex<Vec<Vec<u8>>>,
}

/// Buffers kept in [`Shared::spare`], and the largest kept (a burst's huge chunk is freed).
const SPARE_BUFFERS: usize = 4;
const SPARE_MAX_BYTES: usize = 512 << 10;
const CHUNK_BYTES: usize = 64 * 1024;
/// A batch's chunk goes to the writer once it holds this much, and the batch goes on in a new
/// one: a chunk stays within its buffer's first allocation (an event of up to 16 KiB does not
/// grow it) and comes back as a spare (a batch of a thousand loopback connections is 2 MB of
/// JSON, whose buffer would otherwise be freed and grown again, page by page, on every batch).
const CHUNK_SEND_BYTES: usize = 48 * 1024;

impl Shared {
    /// An empty buffer for the next chunk: a written one when there is one.
    fn buffer(&self) -> Vec<u8> {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        spare.unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES))
    }

    /// Keeps a written chunk's buffer for reuse, unless enough are kept or it is huge.
    fn recycle(&self, mut bytes: Vec<u8>) {
        if bytes.capacity() > SPARE_MAX_BYTES {
            return;
        }
        bytes.clear();
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_BUFFERS {
            spare.push(bytes);
        }
    }
}

pub struct Output {
    format: OutputFormat,
    contexts: ContextCache,
    buf: Vec<u8>,
    buf_events: u64,
    /// Whether the writer had room for the batch being written, decided when its first chunk
    /// is handed over (mid-batch or at [`Output::flush`]) and kept for the rest of it: the
    /// batch's own chunks must not make its last one look like no room.
    admitted: Option<bool>,
    tx: Option<Sender<Chunk>>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl Output {
    /// An output writing to `writer` from a thread of its own.
    pub fn new<W: Write + Send + 'static>(writer: W, format: OutputFormat) -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let thread_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("shrike-output".into())
            .spawn(move || write_loop(writer, rx, &thread_shared))?;
        Ok(Output {
            format,
            contexts: ContextCache::default(),
            buf: Vec::with_capacity(CHUNK_BYTES),
            buf_events: 0,
            admitted: None,
            tx: Some(tx),
            shared,
            writer: Some(writer),
        })
    }

    /// Serializes `event` into the current chunk, handed over by [`Output::flush`] or here
    /// once it holds [`CHUNK_SEND_BYTES`].
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        self.check()?;
        serialize(&mut self.buf, event, self.format, &mut self.contexts)?;
        self.buf_events += 1;
        if self.buf.len() >= CHUNK_SEND_BYTES {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Whether the writer is less than [`MAX_QUEUED`] bytes behind: the agent takes more
    /// batches only then.
    pub fn has_room(&self) -> bool {
        self.shared.queued.load(Ordering::Relaxed) < MAX_QUEUED
    }

    /// Waits until the writer has room ([`Output::has_room`]) while it makes progress: false
    /// when it made none for `stall` (a blocked output), `deadline` passed or `give_up` says so.
    pub fn wait_for_room(
        &self,
        stall: Duration,
        deadline: Instant,
        give_up: &dyn Fn() -> bool,
    ) -> bool {
        let mut progress = (self.shared.written.load(Ordering::Relaxed), Instant::now());
        while !self.has_room() {
            let now = Instant::now();
            let written = self.shared.written.load(Ordering::Relaxed);
            if written != progress.0 {
                progress = (written, now);
            }
            if now - progress.1 >= stall
                || now >= deadline
                || give_up()
                || self.shared.failed.load(Ordering::Relaxed)
            {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Counts `events` as dropped without serializing them (the output has no room for them).
    pub fn count_dropped(&self, events: u64) {
        self.shared.dropped.fetch_add(events, Ordering::Relaxed);
    }

    /// Ends the batch: hands the rest of it to the writer thread. When the writer was
    /// [`MAX_QUEUED`] bytes or more behind as the batch's first chunk was handed over, the
    /// whole batch is dropped and its events counted instead. Never blocks. (A batch may take
    /// the queue past the bound by its own size: the agent checks [`Output::has_room`] before
    /// each batch.)
    pub fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        let handed = self.hand_over();
        self.admitted = None;
        handed
    }

    /// Hands the current chunk to the writer thread (or drops and counts it, the batch not
    /// admitted), and starts the next in a spare buffer.
    fn hand_over(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let room = self.has_room();
        if !*self.admitted.get_or_insert(room) {
            self.count_dropped(self.buf_events);
            self.buf.clear();
            self.buf_events = 0;
            return Ok(());
        }
        let bytes = std::mem::replace(&mut self.buf, self.shared.buffer());
        let events = std::mem::take(&mut self.buf_events);
        self.send(Chunk { bytes, events })
    }

    /// Writes `event` (a report about the agent itself) only if the writer has room for it now;
    /// `false` when it does not (nothing is counted: the caller keeps what it wanted to report).
    pub fn write_report(&mut self, event: &Event) -> io::Result<bool> {
        self.flush()?;
        let mut bytes = Vec::with_capacity(512);
        serialize(&mut bytes, event, self.format, &mut self.contexts)?;
        if !self.has_room() {
            return Ok(false);
        }
        self.send(Chunk { bytes, events: 1 })?;
        Ok(true)
    }

    /// Events dropped since the last call because the output was not taking them.
    pub fn take_dropped(&self) -> u64 {
        self.shared.dropped.swap(0, Ordering::Relaxed)
    }

    /// Waits for the writer to write everything queued while it makes progress — until it has
    /// made none for `stall` (a blocked output), `max` has passed (a slow one) or `give_up` says
    /// so — and returns how many events it did not write. A blocked writer thread is left
    /// behind: it ends with the process.
    pub fn finish(
        mut self,
        stall: Duration,
        max: Duration,
        give_up: &dyn Fn() -> bool,
    ) -> io::Result<u64> {
        self.flush()?;
        drop(self.tx.take());
        let started = Instant::now();
        let mut progress = (self.shared.written.load(Ordering::Relaxed), started);
        while self.shared.pending_events.load(Ordering::Relaxed) > 0
            && !self.shared.failed.load(Ordering::Relaxed)
        {
            let now = Instant::now();
            let written = self.shared.written.load(Ordering::Relaxed);
            if written != progress.0 {
                progress = (written, now);
            }
            if now - progress.1 >= stall || now - started >= max || give_up() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let unwritten = self.shared.pending_events.load(Ordering::Relaxed);
        if unwritten == 0 {
            if let Some(writer) = self.writer.take() {
                let _ = writer.join();
            }
        }
        self.check()?;
        Ok(unwritten)
    }

    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        let Some(tx) = &self.tx else {
            return Err(io::Error::other("the output is closed"));
        };
        self.shared
            .queued
            .fetch_add(chunk.bytes.len(), Ordering::Relaxed);
        self.shared
            .pending_events
            .fetch_add(chunk.events, Ordering::Relaxed);
        if tx.send(chunk).is_err() {
            self.check()?;
            return Err(io::Error::other("the output's writer thread stopped"));
        }
        Ok(())
    }

    /// The writer's error, once it has failed (a closed pipe, a full disk).
    fn check(&self) -> io::Result<()> {
        if !self.shared.failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut error = self.shared.error.lock().unwrap_or_else(|e| e.into_inner());
        Err(match error.take() {
            Some(err) => err,
            None => io::Error::other("the output failed"),
        })
    }
}

fn serialize(
    buf: &mut Vec<u8>,
    event: &Event,
    format: OutputFormat,
    contexts: &mut ContextCache,
) -> io::Result<()> {
    match format {
        OutputFormat::Json => contexts.write(event, buf)?,
        OutputFormat::Compact => buf.extend_from_slice(compact::render(event).as_bytes()),
    }
    buf.push(b'\n');
    Ok(())
}

/// The writer thread: writes chunks in order, flushing when it has caught up; stops at the
/// first error (and says so) or when the agent closes the channel.
fn write_loop<W: Write>(mut writer: W, rx: Receiver<Chunk>, shared: &Shared) {
    let fail = |err: io::Error| {
        *shared.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
        shared.failed.store(true, Ordering::Relaxed);
    };
    while let Ok(chunk) = rx.recv() {
        for piece in chunk.bytes.chunks(WRITE_PIECE) {
            if let Err(err) = writer.write_all(piece) {
                return fail(err);
            }
            shared
                .written
                .fetch_add(piece.len() as u64, Ordering::Relaxed);
        }
        shared
            .queued
            .fetch_sub(chunk.bytes.len(), Ordering::Relaxed);
        shared
            .pending_events
            .fetch_sub(chunk.events, Ordering::Relaxed);
        shared.recycle(chunk.bytes);
        if shared.queued.load(Ordering::Relaxed) == 0 {
            if let Err(err) = writer.flush() {
                return fail(err);
            }
        }
    }
    if let Err(err) = writer.flush() {
        fail(err);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shrike_event::{EventKind, Process, Timestamp};

    use super::*;

    fn event() -> Event {
        Event::new(
            Timestamp(0),
            EventKind::ProcessExec,
            "n".into(),
            Arc::new(Process::default()),
        )
    }

    /// A writer that blocks until released, like a pipe nobody reads.
    struct Held(Arc<(Mutex<bool>, std::sync::Condvar)>, Arc<Mutex<Vec<u8>>>);

    impl Write for Held {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cv) = &*self.0;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.1.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Lets a [`Held`] writer write.
    fn release(gate: &(Mutex<bool>, std::sync::Condvar)) {
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }

    /// Waits until `sink` holds `lines` lines; fails saying `what` after 5 s.
    fn wait_lines(sink: &Mutex<Vec<u8>>, lines: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while (sink.lock().unwrap().iter().filter(|&&b| b == b'\n').count() as u64) < lines {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the writer has written everything queued.
    fn wait_written(out: &Output) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.shared.queued.load(Ordering::Relaxed) > 0 {
            assert!(Instant::now() < deadline, "not written");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The `result` of every event line written to `sink`, in order.
    fn written_results(sink: &Mutex<Vec<u8>>) -> Vec<Option<i64>> {
        let text = String::from_utf8(sink.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().result)
            .collect()
    }

    /// Behind a writer that does not take anything, writing and flushing never block: events
    /// past the queue's bound are counted as dropped, a report waits for room, and `finish`
    /// returns after its wait with the count of what was not written. Once released, what was
    /// queued is written in order.
    #[test]
    fn a_blocked_writer_never_blocks_the_agent_and_loss_is_counted() {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let sink = Arc::new(Mutex::new(Vec::new()));
        let mut out = Output::new(Held(gate.clone(), sink.clone()), OutputFormat::Json).unwrap();
        let started = Instant::now();
        let mut sent = 0u64;
        for _ in 0..200 {
            for _ in 0..100 {
                out.write(&event()).unwrap();
                sent += 1;
            }
            out.flush().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "writes blocked");
        let dropped = out.take_dropped();
        assert!(
            dropped > 0,
            "20,000 events cannot all fit in {MAX_QUEUED} bytes"
        );
        assert_eq!(out.take_dropped(), 0, "taken once");
        // Fill what is left of the queue until one more event is dropped; then a report (an
        // event of the same size) finds no room and is not counted.
        let mut dropped_more = 0;
        while dropped_more == 0 {
            out.write(&event()).unwrap();
            out.flush().unwrap();
            sent += 1;
            dropped_more = out.take_dropped();
        }
        assert!(!out.write_report(&event()).unwrap());
        assert_eq!(out.take_dropped(), 0);
        let waited = Instant::now();
        let pending = out.shared.pending_events.load(Ordering::Relaxed);
        let unwritten = out
            .finish(Duration::from_millis(100), Duration::from_secs(1), &|| {
                false
            })
            .unwrap();
        assert!(waited.elapsed() < Duration::from_secs(1));
        assert_eq!(unwritten, pending);
        assert_eq!(unwritten + dropped + dropped_more, sent);
        // Released: the queued events arrive whole.
        release(&gate);
        wait_lines(&sink, unwritten, "the queued events were not written");
    }

    /// Written chunks' buffers come back for the next batches (emptied, a few at most), and
    /// what is written is every batch, whole and in order.
    #[test]
    fn written_buffers_are_reused_and_batches_stay_whole() {
        let gate = Arc::new((Mutex::new(true), std::sync::Condvar::new()));
        let sink = Arc::new(Mutex::new(Vec::new()));
        let mut out = Output::new(Held(gate, sink.clone()), OutputFormat::Json).unwrap();
        let mut lines = Vec::new();
        for batch in 0..50u32 {
            for n in 0..=batch % 7 {
                let mut e = event();
                e.result = Some(i64::from(batch * 100 + n));
                out.write(&e).unwrap();
                lines.push(e.result);
            }
            out.flush().unwrap();
            wait_written(&out);
        }
        let spare = out.shared.spare.lock().unwrap();
        assert!(
            (1..=SPARE_BUFFERS).contains(&spare.len()) && spare.iter().all(Vec::is_empty),
            "{} spare buffers",
            spare.len()
        );
        drop(spare);
        assert_eq!(written_results(&sink), lines);
    }

    /// A batch larger than a chunk goes to the writer in chunks small enough to be kept as
    /// spares, whole and in order, none dropped for room.
    #[test]
    fn a_large_batch_goes_out_in_reusable_chunks() {
        let gate = Arc::new((Mutex::new(true), std::sync::Condvar::new()));
        let sink = Arc::new(Mutex::new(Vec::new()));
        let mut out = Output::new(Held(gate, sink.clone()), OutputFormat::Json).unwrap();
        let mut lines = Vec::new();
        for round in 0..3i64 {
            let mut bytes = 0;
            while bytes < 8 * CHUNK_SEND_BYTES {
                let mut e = event();
                e.result = Some(round * 1_000_000 + lines.len() as i64);
                out.write(&e).unwrap();
                bytes += serde_json::to_vec(&e).unwrap().len() + 1;
                lines.push(e.result);
            }
            out.flush().unwrap();
            wait_written(&out);
        }
        assert_eq!(out.take_dropped(), 0);
        let spare = out.shared.spare.lock().unwrap();
        // One batch in one chunk would be a megabyte, too large to keep: freed every time.
        assert!(!spare.is_empty(), "no spare buffer");
        assert!(spare.iter().all(|b| b.capacity() == CHUNK_BYTES));
        drop(spare);
        assert_eq!(written_results(&sink), lines);
    }

    /// A batch admitted with room is queued whole, even past the queue's bound by its own
    /// chunks; the next batch, which finds no room, is dropped whole and counted.
    #[test]
    fn an_admitted_batch_is_queued_whole_and_the_next_dropped_whole() {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let sink = Arc::new(Mutex::new(Vec::new()));
        let mut out = Output::new(Held(gate.clone(), sink.clone()), OutputFormat::Json).unwrap();
        let line = serde_json::to_vec(&event()).unwrap().len() + 1;
        let per_batch = (MAX_QUEUED + 4 * CHUNK_SEND_BYTES) / line;
        for _ in 0..per_batch {
            out.write(&event()).unwrap();
        }
        out.flush().unwrap();
        assert_eq!(out.take_dropped(), 0, "the admitted batch lost events");
        assert!(!out.has_room());
        for _ in 0..per_batch {
            out.write(&event()).unwrap();
        }
        out.flush().unwrap();
        assert_eq!(out.take_dropped(), per_batch as u64);
        release(&gate);
        wait_lines(&sink, per_batch as u64, "the first batch was not written");
    }

    /// A writer that fails (a closed pipe) makes the next write or flush fail with its error.
    #[test]
    fn a_failing_writer_is_reported() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = Output::new(Closed, OutputFormat::Compact).unwrap();
        out.write(&event()).unwrap();
        out.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = loop {
            if let Err(err) = out.write(&event()).and_then(|_| out.flush()) {
                break err;
            }
            assert!(Instant::now() < deadline, "the failure was not reported");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
