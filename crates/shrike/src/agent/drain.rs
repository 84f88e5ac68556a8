//! Shutdown ([`Agent::drain`]): the reader hands over what the ring still holds and the
//! pipeline writes it while the output takes it (a blocked output holds up the exit by
//! [`FINISH_STALL`] at most, a second signal stops the wait); holding ends and the execs held
//! for a workload-scoped rule are resumed; the API and the metrics stop;
//! the last loss report; the outputs get their grace; the final counters are logged; dropping
//! the sensors detaches every program (unless `--keep-enforcing` pinned them) and what shrike
//! mounted under its run directory is released. Each step is recorded for the exit watch
//! ([`super::exit_watch`]), which names the one that was stuck if the stop outlives its limit.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use shrike_event::Lost;
use tracing::{info, warn};

use super::exit_watch::{ExitWatch, Step};
use super::tick::write_shaped;
use super::{Agent, OUTPUTS_GRACE};
use crate::output::{FINISH_MAX, FINISH_STALL};
use crate::shutdown::Shutdown;

impl Agent<'_> {
    /// Drains and stops the agent after the ticks ended, on `shutdown` or `--duration` or on
    /// the error `stopped_by` (then nothing more is written, and that error is returned once
    /// the sensors are unloaded).
    pub(super) fn drain(
        mut self,
        shutdown: &Shutdown,
        watch: &ExitWatch,
        stopped_by: Result<()>,
    ) -> Result<()> {
        let mut result = stopped_by;
        watch.enter(Step::DrainingRing);
        // Drain: ask the reader to stop; it hands over what the ring still holds and closes the
        // channel. Keep receiving until then (it may be waiting for room), writing while we can.
        self.reader.request_stop();
        // A reader that is still reading gets the rest (until a second signal, at most
        // FINISH_MAX); a blocked one holds up the exit by FINISH_STALL at most.
        shutdown.take();
        let give_up = || shutdown.is_triggered();
        let drain_deadline = Instant::now() + FINISH_MAX;
        let mut blocked = false;
        while let Ok(batch) = self.batches.recv() {
            blocked = blocked
                || (!self.output.has_room()
                    && !self
                        .output
                        .wait_for_room(FINISH_STALL, drain_deadline, &give_up));
            if result.is_ok() && blocked {
                // Counted, not decoded: the exit does not wait for a blocked output.
                self.output.count_dropped(batch.len() as u64);
            } else if result.is_ok() {
                if let Err(err) = self.write_batch(&batch) {
                    result = Err(err);
                }
            }
        }
        // Nobody would release an exec held from now on: holding ends, and the held resume.
        self.scopes.stop_placing();
        if result.is_ok() {
            result = self.release_holds(true);
        } else {
            self.holds.resume_all();
        }
        if result.is_ok() {
            result = write_shaped(
                &mut self.shaper,
                &mut self.output,
                &mut self.observer,
                |s, out| s.finish(self.pipeline.now(), out),
            );
        }
        // Ends the API's streams (`shutdown`) and removes its socket; stops the metrics endpoint.
        watch.enter(Step::StoppingObservers);
        drop(self.observer);
        let reader_stats = self.reader.stats.clone();
        watch.enter(Step::JoiningReader);
        let reader_result = self.reader.join();
        watch.enter(Step::FinishingOutputs);
        let counters = self.sensors.counters().unwrap_or_default();
        // The last loss report, if the output takes it; then a short wait for the output to
        // write what it holds (a blocked output does not hold up the exit).
        let dropped = self.output.take_dropped();
        self.losses.count_output_dropped(dropped);
        let ring_lost = counters.since(&self.losses.ring_loss_reported).lost();
        if result.is_ok() && (ring_lost > 0 || self.losses.output_dropped_unreported > 0) {
            let event = self.pipeline.lost_event(Lost {
                ringbuf_full: ring_lost,
                pipeline_full: self.losses.output_dropped_unreported,
                ..Lost::default()
            });
            if let Err(err) = self.output.write_report(&event) {
                result = Err(err).context("writing events");
            }
        }
        // The other outputs get their grace (the loss report included) before stdout finishes.
        self.output.close_outputs(OUTPUTS_GRACE);
        let left = drain_deadline.saturating_duration_since(Instant::now());
        // Found blocked while draining: it has had its FINISH_STALL already.
        let stall = if blocked {
            Duration::ZERO
        } else {
            FINISH_STALL
        };
        let unwritten = match self.output.finish(stall, left, &give_up) {
            Ok(unwritten) => unwritten,
            Err(err) => {
                if result.is_ok() {
                    result = Err(err).context("writing events");
                }
                0
            }
        };
        if unwritten > 0 {
            warn!(
                unwritten,
                "the output is blocked: events still queued for it are not written"
            );
        }
        info!(
            counters = %counters,
            output_dropped = self.losses.output_dropped_total,
            output_unwritten = unwritten,
            records = reader_stats.records.load(Ordering::Relaxed),
            backpressure = reader_stats.backpressure.load(Ordering::Relaxed),
            events = self.pipeline.stats().events,
            alerts = self.detector.alerts_emitted(),
            incidents = self.shaper.stats().incidents,
            alerts_suppressed = self.shaper.stats().suppressed,
            decode_errors = self.pipeline.stats().decode_errors,
            unknown_kinds = self.pipeline.stats().unknown_kinds,
            "shrike stopping: final counters"
        );
        match self.sensors.pinned() {
            Some(pins) => {
                info!(dir = %pins.dir().display(), "enforcement stays in force: programs and rules are pinned (--keep-enforcing)")
            }
            None => info!("detaching all programs"),
        }
        watch.enter(Step::Detaching);
        drop(self.sensors);
        watch.enter(Step::ReleasingMounts);
        // What shrike mounted under its run directory is not needed once the sensors are gone
        // (a cgroup program stays attached to its cgroup without the mount).
        match shrike_bpf::mounts::release_run_dir() {
            Ok(points) => {
                for point in points {
                    info!(path = %point.display(), "unmounted what shrike had mounted");
                }
            }
            Err(err) => warn!(%err, "could not release shrike's run directory"),
        }
        reader_result.context("ring-buffer reader")?;
        result
    }
}
