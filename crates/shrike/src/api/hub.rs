//! The fan-out from the pipeline to API clients, on its own thread.
//!
//! The pipeline hands over each batch's events by value ([`Hub::publish`]): no copy, no
//! serialization, never a wait — when the hub's queue is full the batch is counted as dropped
//! for the API and the pipeline moves on. The hub thread keeps the most recent events (for
//! `shrike events` without `--follow`), and for every subscriber whose filter an event passes
//! it serializes the event (once, however many subscribers want it) and offers the line to the
//! subscriber's bounded queue. A subscriber whose queue is full is cut off: its connection
//! writes a final `end` line saying so and closes. One slow client therefore costs neither the
//! pipeline nor the other clients anything.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use shrike_event::Event;

use super::filter::Filter;
use super::protocol::event_line;
use crate::metrics::agent::AgentStats;

/// Events queued between the pipeline and the hub thread, at most.
pub const MAX_QUEUED: u64 = 65_536;

/// A streaming client as the hub sees it.
pub struct Subscriber {
    pub filter: Filter,
    pub tx: SyncSender<Arc<str>>,
    /// Set by the hub when the client's queue overflowed: the connection ends the stream.
    pub cut: Arc<AtomicBool>,
}

/// What connections share with the hub thread.
#[derive(Clone)]
pub struct Shared {
    pub recent: Arc<Mutex<VecDeque<Arc<Event>>>>,
    pub subscribers: Arc<Mutex<Vec<Subscriber>>>,
    pub recent_max: usize,
}

/// The pipeline's end of the hub.
pub struct Hub {
    tx: Option<SyncSender<Vec<Event>>>,
    stats: Arc<AgentStats>,
    thread: Option<JoinHandle<()>>,
    pub shared: Shared,
}

impl Hub {
    /// Starts the hub thread, keeping the last `recent_max` events.
    pub fn start(stats: Arc<AgentStats>, recent_max: usize) -> std::io::Result<Hub> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Event>>(4096);
        let shared = Shared {
            recent: Arc::new(Mutex::new(VecDeque::with_capacity(recent_max))),
            subscribers: Arc::default(),
            recent_max,
        };
        let thread = {
            let shared = shared.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("shrike-api-hub".into())
                .spawn(move || run(rx, &shared, &stats))?
        };
        Ok(Hub {
            tx: Some(tx),
            stats,
            thread: Some(thread),
            shared,
        })
    }

    /// Hands a batch of written events to the hub; never blocks. Dropped (and counted) when
    /// the hub is this far behind.
    pub fn publish(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let n = events.len() as u64;
        let Some(tx) = &self.tx else { return };
        if self.stats.api_queued.load(Relaxed) + n > MAX_QUEUED {
            self.stats.api_dropped.fetch_add(n, Relaxed);
            return;
        }
        self.stats.api_queued.fetch_add(n, Relaxed);
        if tx.try_send(events).is_err() {
            self.stats.api_queued.fetch_sub(n, Relaxed);
            self.stats.api_dropped.fetch_add(n, Relaxed);
        }
    }
}

impl Drop for Hub {
    /// Closes the queue; the hub thread hands over what it holds and ends, which ends every
    /// stream with `shutdown`.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        lock(&self.shared.subscribers).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(rx: Receiver<Vec<Event>>, shared: &Shared, stats: &AgentStats) {
    for batch in rx {
        stats.api_queued.fetch_sub(batch.len() as u64, Relaxed);
        let events: Vec<Arc<Event>> = batch.into_iter().map(Arc::new).collect();
        {
            let mut subs = lock(&shared.subscribers);
            if !subs.is_empty() {
                for event in &events {
                    offer(&mut subs, event, stats);
                }
            }
        }
        let mut recent = lock(&shared.recent);
        for event in events {
            if recent.len() == shared.recent_max {
                recent.pop_front();
            }
            recent.push_back(event);
        }
    }
}

/// Offers one event to every subscriber it passes; cuts off those whose queue is full.
fn offer(subs: &mut Vec<Subscriber>, event: &Event, stats: &AgentStats) {
    let mut line: Option<Arc<str>> = None;
    subs.retain(|sub| {
        if !sub.filter.matches(event) {
            return true;
        }
        let line = line
            .get_or_insert_with(|| match serde_json::to_string(event) {
                Ok(json) => Arc::from(event_line(&json)),
                Err(_) => Arc::from(""),
            })
            .clone();
        if line.is_empty() {
            return true;
        }
        match sub.tx.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                sub.cut.store(true, Relaxed);
                stats.api_cut_off.fetch_add(1, Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_event::{EventKind, Process, Timestamp};
    use std::time::{Duration, Instant};

    fn event(pid: u32) -> Event {
        let process = Process {
            pid,
            ..Process::default()
        };
        Event::new(
            Timestamp(1),
            EventKind::ProcessExec,
            "n".into(),
            Arc::new(process),
        )
    }

    fn subscribe(
        hub: &Hub,
        queue: usize,
    ) -> (std::sync::mpsc::Receiver<Arc<str>>, Arc<AtomicBool>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(queue);
        let cut = Arc::new(AtomicBool::new(false));
        lock(&hub.shared.subscribers).push(Subscriber {
            filter: Filter::default(),
            tx,
            cut: cut.clone(),
        });
        (rx, cut)
    }

    /// A subscriber whose queue fills is cut off and removed; another with room receives
    /// every event, serialized once per event; the recent ring keeps the last `recent_max`.
    #[test]
    fn a_full_subscriber_is_cut_off_and_the_others_get_everything() {
        let stats = Arc::new(AgentStats::default());
        let hub = Hub::start(stats.clone(), 3).unwrap();
        let (slow, slow_cut) = subscribe(&hub, 2);
        let (fast, fast_cut) = subscribe(&hub, 100);
        hub.publish((1..=5).map(event).collect());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < 5 && Instant::now() < deadline {
            if let Ok(line) = fast.recv_timeout(Duration::from_millis(100)) {
                got.push(line);
            }
        }
        assert_eq!(got.len(), 5);
        assert!(
            got[4].starts_with("{\"type\":\"event\",\"event\":{"),
            "{}",
            got[4]
        );
        assert!(got[4].contains("\"pid\":5"), "{}", got[4]);
        assert!(slow_cut.load(Relaxed) && !fast_cut.load(Relaxed));
        assert_eq!(stats.api_cut_off.load(Relaxed), 1);
        assert_eq!(slow.try_iter().count(), 2, "what fitted before the cut");
        assert_eq!(lock(&hub.shared.subscribers).len(), 1);
        // The ring is filled after the fan-out.
        while lock(&hub.shared.recent).len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let recent: Vec<u32> = lock(&hub.shared.recent)
            .iter()
            .map(|e| e.process.pid)
            .collect();
        assert_eq!(recent, [3, 4, 5]);
        assert_eq!(stats.api_queued.load(Relaxed), 0);
        assert_eq!(stats.api_dropped.load(Relaxed), 0);
    }
}
