//! Loss is never silent: once a second the running agent logs and reports what was lost —
//! records the kernel dropped (ring buffer full), events an output dropped — as `events_lost`
//! events, which wait while the output is blocked; and every `--stats-interval` it logs the
//! kernel counters when they changed. [`LossWatch`] is what it keeps between checks; the drain
//! makes the last report from it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use shrike_bpf::{Counters, Reader};
use shrike_event::Lost;
use tracing::{info, warn};

use super::{Agent, LOSS_CHECK};
use crate::pipeline::Pipeline;

/// What was lost, and how much of it has been logged and reported in the stream.
pub(super) struct LossWatch {
    /// When the loss counters are next checked.
    next_check: Instant,
    /// When the kernel counters are next logged (if they changed).
    next_stats: Instant,
    /// The kernel counters as last logged by the periodic stats line.
    counters_logged: Counters,
    /// The kernel counters when kernel loss was last logged.
    ring_loss_logged: Counters,
    /// The kernel counters when kernel loss was last reported in the stream (which waits while
    /// the output is blocked).
    pub(super) ring_loss_reported: Counters,
    /// The reader's back-pressure count at the last check.
    backpressure_at_last_check: u64,
    /// Events the output dropped that the stream has not been told of yet.
    pub(super) output_dropped_unreported: u64,
    /// Events the output dropped in all.
    pub(super) output_dropped_total: u64,
}

impl LossWatch {
    /// Counting from `counters`, the kernel's counters at start.
    pub(super) fn new(counters: Counters, stats_interval: Duration) -> Self {
        LossWatch {
            next_check: Instant::now() + LOSS_CHECK,
            next_stats: Instant::now() + stats_interval,
            ring_loss_logged: counters.clone(),
            ring_loss_reported: counters.clone(),
            counters_logged: counters,
            backpressure_at_last_check: 0,
            output_dropped_unreported: 0,
            output_dropped_total: 0,
        }
    }

    /// Takes what the output dropped since the last call into the counts.
    pub(super) fn count_output_dropped(&mut self, dropped: u64) {
        self.output_dropped_unreported += dropped;
        self.output_dropped_total += dropped;
    }
}

impl Agent<'_> {
    /// Once a second: says the output is blocked, logs and reports what was lost since the last
    /// check, and logs the kernel counters when `--stats-interval` is due.
    pub(super) fn check_losses(&mut self) -> Result<()> {
        let now = Instant::now();
        if now < self.losses.next_check {
            return Ok(());
        }
        self.losses.next_check = now + LOSS_CHECK;
        if self
            .output_blocked_since
            .is_some_and(|t| t.elapsed() >= LOSS_CHECK)
            && !self.output_blocked_logged
        {
            warn!("the output is not taking events (its reader is not reading): the ring buffer holds them until it is full, then the kernel drops records and counts them");
            self.output_blocked_logged = true;
        }
        let dropped = self.output.take_dropped();
        if dropped > 0 {
            warn!(
                dropped,
                "the output is not taking events (its reader is not reading): events dropped"
            );
            self.losses.count_output_dropped(dropped);
        }
        let counters = self.sensors.counters().ok();
        let backpressure = self.reader.stats.backpressure.load(Ordering::Relaxed);
        if let Some(counters) = &counters {
            let lost = counters.since(&self.losses.ring_loss_logged).lost();
            if lost > 0 {
                warn!(
                    lost,
                    backpressure = backpressure - self.losses.backpressure_at_last_check,
                    "the kernel dropped records: ring buffer full"
                );
                self.losses.ring_loss_logged = counters.clone();
            }
        }
        self.losses.backpressure_at_last_check = backpressure;
        let ring_lost = counters
            .as_ref()
            .map_or(0, |c| c.since(&self.losses.ring_loss_reported).lost());
        if ring_lost > 0 || self.losses.output_dropped_unreported > 0 {
            let event = self.pipeline.lost_event(Lost {
                ringbuf_full: ring_lost,
                pipeline_full: self.losses.output_dropped_unreported,
                ..Lost::default()
            });
            match self.output.write_report(&event) {
                Ok(true) => {
                    if let Some(counters) = &counters {
                        self.losses.ring_loss_reported = counters.clone();
                    }
                    self.losses.output_dropped_unreported = 0;
                    self.observer.event(event);
                    self.observer.end_batch(&self.pipeline);
                }
                // Still blocked: the counts keep growing until the output takes them.
                Ok(false) => {}
                Err(err) => return Err(err).context("writing events"),
            }
        }
        // What an output dropped goes to every output (those that work receive it).
        let outputs = self.output.new_drops();
        if !outputs.is_empty() {
            warn!(?outputs, "outputs dropped events");
            let event = self.pipeline.lost_event(Lost {
                outputs,
                ..Lost::default()
            });
            self.output.write_report(&event).context("writing events")?;
        }
        if let Some(counters) = counters {
            if now >= self.losses.next_stats {
                self.losses.next_stats = now + self.config.stats_interval;
                if counters != self.losses.counters_logged {
                    log_counters("periodic", &counters, &self.pipeline, &self.reader);
                    self.losses.counters_logged = counters;
                }
            }
        }
        Ok(())
    }
}

fn log_counters(when: &str, counters: &Counters, pipeline: &Pipeline, reader: &Reader) {
    let tree = pipeline.tree().stats();
    info!(
        when,
        counters = %counters,
        records = reader.stats.records.load(Ordering::Relaxed),
        backpressure = reader.stats.backpressure.load(Ordering::Relaxed),
        live = tree.live,
        retained = tree.retained,
        "kernel counters"
    );
}
