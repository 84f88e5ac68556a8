//! What the agent writes events to: stdout (its own [`Output`], with the configured selection
//! or off) and every other output ([`Outputs`]). The agent's loop sees one `write`/`flush`
//! pair, as it did when stdout was the only sink; anything else stdout's writer offers is
//! reached through `Deref` (stdout keeps its own flow control; the other outputs never block).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use shrike_event::Event;

use super::{OutputStats, Outputs, Select};
use crate::output::Output;

pub struct Fanout<W: Write> {
    stdout: Output<W>,
    /// `None`: stdout takes no events (the configuration lists outputs but not stdout).
    stdout_select: Option<Select>,
    /// stdout's counters: `sent` is what was written (stdout blocks rather than drops).
    stdout_stats: Arc<OutputStats>,
    outputs: Outputs,
}

impl<W: Write> Fanout<W> {
    pub fn new(stdout: Output<W>, stdout_select: Option<Select>, outputs: Outputs) -> Self {
        Fanout {
            stdout,
            stdout_select,
            stdout_stats: Arc::new(OutputStats::new("stdout", "stdout")),
            outputs,
        }
    }

    /// Writes `event` to stdout (buffered until [`Fanout::flush`]) if it selects it, and
    /// queues it on every other output that does.
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

    pub fn flush(&mut self) -> io::Result<()> {
        self.stdout.flush()
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

impl<W: Write> std::ops::Deref for Fanout<W> {
    type Target = Output<W>;
    fn deref(&self) -> &Output<W> {
        &self.stdout
    }
}

impl<W: Write> std::ops::DerefMut for Fanout<W> {
    fn deref_mut(&mut self) -> &mut Output<W> {
        &mut self.stdout
    }
}
