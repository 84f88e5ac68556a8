//! What the agent writes events to: stdout (its own [`Output`], with the configured selection
//! or off) and every other output ([`Outputs`]). The agent's loop sees one `write`/`flush`
//! pair, as it did when stdout was the only sink; stdout's writer thread is reached through
//! `Deref`. stdout holds the pipeline back only when it is the only output: beside others it
//! drops what it has no room for, as they do, so a held stdout cannot starve them.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use shrike_event::Event;

use super::{OutputStats, Outputs, Select};
use crate::output::Output;

pub struct Fanout {
    stdout: Output,
    /// `None`: stdout takes no events (the configuration lists outputs but not stdout).
    stdout_select: Option<Select>,
    /// stdout's counters: `sent` counts the events stdout was given, `dropped_queue_full`
    /// those its writer thread then had no room for ([`Fanout::take_dropped`]).
    stdout_stats: Arc<OutputStats>,
    outputs: Outputs,
}

impl Fanout {
    pub fn new(stdout: Output, stdout_select: Option<Select>, outputs: Outputs) -> Self {
        Fanout {
            stdout,
            stdout_select,
            stdout_stats: Arc::new(OutputStats::new("stdout", "stdout")),
            outputs,
        }
    }

    /// Writes `event` to stdout if it selects it, and formats it for every other output that
    /// does: both go out at [`Fanout::flush`].
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        self.outputs.send(event);
        match &self.stdout_select {
            Some(select) if select.matches(event) => {
                self.stdout_stats.sent.fetch_add(1, Ordering::Relaxed);
                self.stdout.write(event)
            }
            _ => Ok(()),
        }
    }

    /// Sends what was written since the last flush: stdout's chunk to its writer, the other
    /// outputs' records to their queues.
    pub fn flush(&mut self) -> io::Result<()> {
        self.outputs.flush();
        self.stdout.flush()
    }

    /// Writes a report about the agent itself (`events_lost`) to every output; the result is
    /// stdout's ([`Output::write_report`]: `false` when stdout had no room for it now).
    pub fn write_report(&mut self, event: &Event) -> io::Result<bool> {
        self.outputs.send(event);
        self.outputs.flush();
        match &self.stdout_select {
            Some(_) => self.stdout.write_report(event),
            None => Ok(true),
        }
    }

    /// Whether the agent may take more batches: stdout holds the pipeline back (the ring
    /// buffer absorbs a stall) only when it is the only output; beside other outputs it drops
    /// what it has no room for (counted, reported as `pipeline_full`) like any other output,
    /// so a blocked stdout cannot starve them.
    pub fn has_room(&self) -> bool {
        !self.outputs.is_empty() || self.stdout_select.is_none() || self.stdout.has_room()
    }

    /// stdout's drops since the last call ([`Output::take_dropped`]), also counted in its
    /// `dropped_queue_full` metric.
    pub fn take_dropped(&self) -> u64 {
        let dropped = self.stdout.take_dropped();
        self.stdout_stats
            .dropped_queue_full
            .fetch_add(dropped, Ordering::Relaxed);
        dropped
    }

    /// Finishes stdout ([`Output::finish`]); call [`Fanout::close_outputs`] first.
    pub fn finish(
        self,
        stall: Duration,
        max: Duration,
        give_up: &dyn Fn() -> bool,
    ) -> io::Result<u64> {
        self.stdout.finish(stall, max, give_up)
    }

    /// Every output's counters, stdout's first when stdout takes events (for metrics and
    /// the API). The `Arc`s stay valid and current for the agent's lifetime.
    pub fn stats(&self) -> Vec<Arc<OutputStats>> {
        let mut all = Vec::new();
        if self.stdout_select.is_some() {
            all.push(self.stdout_stats.clone());
        }
        all.extend(self.outputs.stats());
        all
    }

    /// What each output dropped since the last call, by name.
    pub fn new_drops(&mut self) -> BTreeMap<String, u64> {
        self.outputs.new_drops()
    }

    /// Gives the outputs other than stdout `grace` to deliver what they hold, and stops
    /// them; stdout is flushed (and finished) by its own writer.
    pub fn close_outputs(&mut self, grace: Duration) {
        std::mem::replace(&mut self.outputs, Outputs::none()).finish(grace);
    }
}

impl std::ops::Deref for Fanout {
    type Target = Output;
    fn deref(&self) -> &Output {
        &self.stdout
    }
}

impl std::ops::DerefMut for Fanout {
    fn deref_mut(&mut self) -> &mut Output {
        &mut self.stdout
    }
}
