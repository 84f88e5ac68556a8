//! One turn of the running agent ([`Agent::tick`]): take a batch from the reader when the
//! output has room (else wait briefly, leaving it in the reader's channel and the ring buffer),
//! run it through the pipeline, the rules and the shaper to the outputs; write what the shaper
//! has due; apply a policy reload when one is due; answer the local API; return free heap
//! memory when due; check for loss. A turn waits at most 200 ms for a batch, so shutdown is seen
//! well within a second.

use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use shrike_bpf::Batch;
use shrike_event::{Event, EventKind};
use tracing::{info, warn};

use super::reload::{self, reload};
use super::{enabled_rules, Agent};
use crate::health;
use crate::observe::Observer;
use crate::outputs::Fanout;
use crate::shaping::Shaper;

impl Agent<'_> {
    /// One turn; an error (an output failed, the reader stopped) ends the run.
    pub(super) fn tick(&mut self) -> Result<()> {
        match self.receive() {
            Ok(batch) => self.write_batch(&batch)?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(anyhow!("the ring-buffer reader stopped unexpectedly"));
            }
        }
        self.pipeline.clock_mut().refresh();
        if !self.holds.is_empty() {
            self.release_holds(false)?;
            self.output.flush().context("writing events")?;
        }
        // The kernel holds new execs only while this loop, which decides them, runs.
        self.scopes.renew_holding(Instant::now());
        write_shaped(
            &mut self.shaper,
            &mut self.output,
            &mut self.observer,
            |s, out| s.tick(self.pipeline.now(), out),
        )?;
        if let Some(due) = self.policy_watch.due() {
            self.reload_policy(due)?;
        }
        self.observer.answer(&crate::api::query::View {
            pipeline: &self.pipeline,
            policy: self.detector.policy(),
            source: &self.config.policy,
            capabilities: &self.capabilities,
            missing: &self.rules_not_in_force,
            stats: &self.observer.stats,
            sensors: &self.sensors,
        });
        self.heap.tick();
        self.check_losses()
    }

    /// The next batch, waiting up to 200 ms for it; while the output has no room, a 20 ms wait
    /// and no batch.
    fn receive(&mut self) -> Result<Batch, RecvTimeoutError> {
        if self.output.has_room() {
            if let Some(since) = self.output_blocked_since.take() {
                if self.output_blocked_logged {
                    info!(
                        blocked_ms = since.elapsed().as_millis() as u64,
                        "the output is taking events again"
                    );
                }
                self.output_blocked_logged = false;
            }
            // A held exec is decided as soon as its container is described.
            let wait = if self.holds.is_empty() { 200 } else { 10 };
            self.batches.recv_timeout(Duration::from_millis(wait))
        } else {
            self.output_blocked_since.get_or_insert_with(Instant::now);
            std::thread::sleep(Duration::from_millis(20));
            Err(RecvTimeoutError::Timeout)
        }
    }

    /// Attempts the reload that is due ([`reload`]), counts it for the metrics, and writes the
    /// `policy_change` event and, when the rules not in force changed, a new `agent_health`.
    fn reload_policy(&mut self, due: crate::policy_source::Due) -> Result<()> {
        let before = self.detector.policy().clone();
        let reloaded = reload(
            self.config,
            reload::KernelSide {
                sensors: &self.sensors,
                capabilities: &self.capabilities,
                configured_watch: self.configured_watch.as_ref(),
                scopes: &self.scopes,
            },
            &mut self.detector,
            &mut self.policy_watch,
            due,
        );
        let stats = &self.observer.stats;
        match (&reloaded.missing, &reloaded.change) {
            (Some(m), _) => {
                stats.reloads_succeeded.fetch_add(1, Ordering::Relaxed);
                stats.policy_in_force(enabled_rules(self.detector.policy()), m.len());
            }
            (None, Some(change)) if change.status == "refused" => {
                stats.reloads_failed.fetch_add(1, Ordering::Relaxed);
            }
            // Held (it loosens enforcement and waits), or caught changing while read (read
            // again once settled): neither a success nor a failure yet.
            (None, _) => {}
        }
        if let Some(change) = reloaded.change {
            let mut event = self.pipeline.agent_event(EventKind::PolicyChange);
            event.set_policy(change);
            self.write_own(event)?;
        }
        // The rules not in force changed with the policy: say so in the stream.
        if let Some(now_missing) = reloaded.missing.filter(|m| *m != self.rules_not_in_force) {
            self.rules_not_in_force = now_missing;
            let event = self
                .pipeline
                .health_event(health::health(&self.capabilities, &self.rules_not_in_force));
            self.write_own(event)?;
        }
        self.shaper.set_policy(self.detector.policy());
        // Held execs follow their rule to its new index (resumed if it is gone).
        if !self.holds.is_empty() && !Arc::ptr_eq(&before, self.detector.policy()) {
            let policy = self.detector.policy().clone();
            for mut event in self.holds.renumber(&before, &policy) {
                self.pipeline.attach_workload(&mut event);
                self.write_event(event)?;
            }
            self.output.flush().context("writing events")?;
        }
        Ok(())
    }
}

impl Agent<'_> {
    /// Runs one batch through the pipeline, the rules and the shaper, and writes it.
    pub(super) fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        self.observer
            .stats
            .batches_received
            .fetch_add(1, Ordering::Relaxed);
        for record in batch.iter() {
            match self.pipeline.handle(record) {
                Ok(Some(event)) => match self.pipeline.take_held() {
                    Some(rule) => {
                        let dir = self.pipeline.cgroup_dir(event.process.cgroup_id);
                        self.holds.park(event, rule, dir, &self.scopes);
                    }
                    None => self.write_event(event)?,
                },
                Ok(None) => {}
                Err(err) => warn!(%err, "skipping a kernel record"),
            }
        }
        if !self.holds.is_empty() {
            self.release_holds(false)?;
        }
        self.output.flush().context("writing events")?;
        self.pipeline.expire();
        self.observer.end_batch(&self.pipeline);
        Ok(())
    }

    /// Runs one event through the rules and the shaper, and writes it (unflushed).
    fn write_event(&mut self, mut event: Event) -> Result<()> {
        let mut before = Vec::new();
        self.detector.apply(&mut event);
        self.shaper.shape(&mut event, &mut before);
        for synthesized in before {
            self.output.write(&synthesized).context("writing events")?;
            self.observer.event(synthesized);
        }
        if !self.config.alerts_only || !event.alerts.is_empty() {
            self.output.write(&event).context("writing events")?;
        }
        self.observer.event(event);
        Ok(())
    }

    /// Kills or resumes the held execs that can be decided (`all`: resumes every one, the
    /// agent stops) and writes their events, with their container's identity as known now.
    pub(super) fn release_holds(&mut self, all: bool) -> Result<()> {
        let released = if all {
            self.holds.resume_all()
        } else {
            self.holds.decide(&self.scopes, Instant::now())
        };
        for mut event in released {
            self.pipeline.attach_workload(&mut event);
            self.write_event(event)?;
        }
        Ok(())
    }

    /// Writes one event of the agent's own (a policy change, a health change) and sends it
    /// out at once.
    fn write_own(&mut self, event: Event) -> Result<()> {
        self.output
            .write(&event)
            .and_then(|_| self.output.flush())
            .context("writing events")?;
        self.observer.event(event);
        self.observer.end_batch(&self.pipeline);
        Ok(())
    }
}

/// Writes what the shaper has due (incident updates and closes, suppression reports): `due`
/// is [`Shaper::tick`] or [`Shaper::finish`].
pub(super) fn write_shaped(
    shaper: &mut Shaper,
    output: &mut Fanout,
    observer: &mut Observer,
    due: impl FnOnce(&mut Shaper, &mut Vec<shrike_event::Event>),
) -> Result<()> {
    let mut out = Vec::new();
    due(shaper, &mut out);
    if out.is_empty() {
        return Ok(());
    }
    for event in &out {
        output.write(event).context("writing events")?;
    }
    output.flush().context("writing events")?;
    for event in out {
        observer.event(event);
    }
    observer.flush();
    Ok(())
}
