//! The syslog output's crash drill against rsyslogd: records stream through the output
//! framework (a queue of 1,000, batches of 50, backoff) while rsyslogd is twice paused
//! (SIGSTOP: what the output writes meanwhile sits unread in rsyslogd's socket), killed
//! (SIGKILL) and restarted on the same port and output file. The queue overflows while
//! rsyslogd is down; the drill knows which records the queue refused (the drop counter moved
//! as each was offered) and how many copies of each record reached the file.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shrike::outputs::{build_transport, OutputStats, Record, Worker, WorkerOptions};

use crate::outputs_support::config;
use crate::rsyslog::Rsyslog;

/// What a drill did and what rsyslogd's file holds.
pub struct Drill {
    pub offered: u64,
    pub stats: Arc<OutputStats>,
    /// The records the full queue refused.
    pub refused: BTreeSet<u64>,
    /// Each record in the file, with how many times it is there.
    pub copies: BTreeMap<u64, u32>,
    /// Bytes rsyslogd had not read from the output's connection at each kill.
    pub unread: Vec<u64>,
}

impl Drill {
    /// Records the output counted as sent that are not in the file.
    pub fn missing(&self) -> Vec<u64> {
        (0..self.offered)
            .filter(|n| !self.refused.contains(n) && !self.copies.contains_key(n))
            .collect()
    }

    pub fn duplicates(&self) -> u32 {
        self.copies.values().map(|c| c - 1).sum()
    }

    pub fn report(&self, scheme: &str) {
        eprintln!(
            "{scheme}: offered {}, sent {}, dropped {} (queue full), failed deliveries {}, \
             bytes unread at each kill {:?}, in the file {} ({} duplicates)",
            self.offered,
            self.stats.sent(),
            self.stats.dropped(),
            self.stats.errors.load(Ordering::Relaxed),
            self.unread,
            self.copies.len(),
            self.duplicates()
        );
    }
}

/// One synthetic record whose MSG is `{"kind":"process_exec","n":N}`.
pub fn numbered(n: u64) -> Record {
    Record {
        line: format!("{{\"kind\":\"process_exec\",\"n\":{n}}}").into(),
        time_unix_ns: 1_700_000_000_000_000_000 + n * 1000,
        kind: "process_exec",
        severity: None,
        rule: None,
    }
}

/// Runs the drill with the output's address `scheme://127.0.0.1:PORT` (`relp` or `tcp`).
pub fn kill_drill(scheme: &str) -> Drill {
    let rsyslog = Rsyslog::start();
    let (port, input) = match scheme {
        "relp" => (rsyslog.relp, "imrelp"),
        "tcp" => (rsyslog.tcp, "imtcp"),
        _ => panic!("no drill for {scheme}"),
    };
    let config = config(&format!(
        "type: syslog\naddress: {scheme}://127.0.0.1:{port}\nfacility: local4\n\
         timeout_ms: 1000\nqueue: 1000\nbatch: {{max_events: 50, max_delay_ms: 20}}\n\
         retry: {{initial_ms: 50, max_ms: 200}}\n"
    ));
    assert!(config.check().is_empty(), "{:?}", config.check());
    let stats = Arc::new(OutputStats::new(scheme, "syslog"));
    let options = WorkerOptions {
        queue: config.queue,
        batch: config.batch,
        retry: config.retry,
    };
    let worker = Worker::start(build_transport(&config).unwrap(), options, stats.clone()).unwrap();
    let rsyslog = Arc::new(Mutex::new(rsyslog));
    let killer = {
        let rsyslog = rsyslog.clone();
        std::thread::spawn(move || {
            let mut unread = Vec::new();
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(600));
                let mut r = rsyslog.lock().unwrap();
                r.signal("STOP");
                std::thread::sleep(Duration::from_millis(300));
                unread.push(r.unread(port));
                r.kill();
                std::thread::sleep(Duration::from_millis(700));
                r.restart();
            }
            unread
        })
    };
    let (mut offered, mut refused) = (0u64, BTreeSet::new());
    while !killer.is_finished() || offered < 4000 {
        let before = stats.dropped_queue_full.load(Ordering::Relaxed);
        worker.offer(numbered(offered));
        if stats.dropped_queue_full.load(Ordering::Relaxed) > before {
            refused.insert(offered);
        }
        offered += 1;
        if offered.is_multiple_of(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let unread = killer.join().unwrap();
    crate::restarts::drain(worker, &stats, offered);

    let mut copies = BTreeMap::<u64, u32>::new();
    let messages = rsyslog.lock().unwrap().messages();
    for m in messages.iter().filter(|m| m["input"] == input) {
        let line: serde_json::Value = serde_json::from_str(m["msg"].as_str().unwrap().trim())
            .unwrap_or_else(|e| panic!("MSG is not the record ({e}): {m}"));
        *copies.entry(line["n"].as_u64().unwrap()).or_default() += 1;
    }
    Drill {
        offered,
        stats,
        refused,
        copies,
        unread,
    }
}
