//! The agent: load the sensors, seed the process tree, and run the pipeline until shutdown.
//!
//! [`run`] is the whole life of one agent: `Agent::start` (`start.rs`: the policy, the
//! sensors, the capability checks, the reader, the process tree, the outputs), then
//! `Agent::tick` until shutdown (`tick.rs`: one batch, the shaper's due events, a policy
//! reload when one is due, the API's questions; `losses.rs`: the once-a-second loss check),
//! then `Agent::drain` (`drain.rs`: what the ring still holds, the last loss report, the
//! final counters, detaching). The configuration is checked before any of it (`config.rs`);
//! a reload is `reload.rs`.
//!
//! Start-up order matters. The programs are attached and the ring-buffer reader started
//! *before* /proc is scanned, so nothing that happens during the scan is missed; the scan then
//! offers the kernel lineage entries only for processes it has not already recorded itself.
//! On shutdown the reader drains what the ring still holds, the pipeline writes it, and dropping
//! the sensors detaches every program.

use std::io::Write;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use shrike_bpf::capability::Status;
use shrike_bpf::file::WatchSet;
use shrike_bpf::{Batch, Reader, Sensors};
use tracing::warn;

use crate::detect::Detector;
use crate::health;
use crate::observe::Observer;
use crate::outputs::Fanout;
use crate::pipeline::Pipeline;
use crate::policy_source::PolicyWatch;
use crate::shaping::Shaper;
use crate::shutdown::Shutdown;
use crate::workload::scope::ScopeKeeper;

mod config;
mod drain;
mod exit_watch;
mod heap;
mod hold_ledger;
mod holds;
mod losses;
mod reload;
mod start;
mod tick;

pub use config::{default_keep_env, sensor_options, validate_sizes, RunConfig};
use exit_watch::ExitWatch;
use heap::{fix_mmap_threshold, HeapTrim};
use holds::Holds;
use losses::LossWatch;

/// How long the outputs get at exit to deliver what they still hold.
const OUTPUTS_GRACE: Duration = Duration::from_secs(2);

/// How often the loss counters are checked (and an `events_lost` event emitted on growth).
const LOSS_CHECK: Duration = Duration::from_secs(1);

/// Runs the agent, writing events to `out`, until `shutdown` is triggered.
///
/// `out` is written from a thread of its own ([`crate::output::Output`]): a reader that stops
/// reading never stalls the agent, which keeps honouring `shutdown`, and counts and reports
/// what it drops.
pub fn run<W: Write + Send + 'static>(
    config: &RunConfig,
    out: W,
    shutdown: Shutdown,
) -> Result<()> {
    fix_mmap_threshold();
    // From the first stop request on, the agent is gone within EXIT_LIMIT.
    let exit_watch = ExitWatch::start(&shutdown).context("starting the exit watch thread")?;
    let mut agent = Agent::start(config, out)?;
    // The error a tick stopped on: the drain still runs (the sensors are detached, the run
    // directory released) and then returns it.
    let mut stopped_by = Ok(());
    while !shutdown.is_triggered() && !agent.past_deadline() {
        if let Err(err) = agent.tick() {
            stopped_by = Err(err);
            break;
        }
    }
    exit_watch.arm();
    agent.drain(&shutdown, &exit_watch, stopped_by)
}

/// A running agent: what [`Agent::start`] loaded and started, and what the ticks keep between
/// them.
struct Agent<'a> {
    config: &'a RunConfig,
    /// When `--duration` ends the run.
    deadline: Option<Instant>,
    /// The loaded programs and maps; dropping them detaches every program (unless pinned).
    sensors: Sensors,
    /// What this kernel allowed each capability, as loaded.
    capabilities: Vec<Status>,
    /// The policy's rules not in force, for want of a capability.
    rules_not_in_force: Vec<health::Missing>,
    /// The file sensor's watched paths as configured, before the policy's are merged in (a
    /// reload merges the new policy's into these).
    configured_watch: Option<WatchSet>,
    /// The cgroup sets of workload-scoped exec rules.
    scopes: Arc<ScopeKeeper>,
    /// When the policy's files changed (or SIGHUP asked) and a reload is due.
    policy_watch: PolicyWatch,
    /// The policy in force, applied to each event.
    detector: Detector,
    /// The ring-buffer reader thread, and the batches it hands over.
    reader: Reader,
    batches: Receiver<Batch>,
    /// Metrics and the local API.
    observer: Observer,
    /// Records to events: the process tree, the context, the clock.
    pipeline: Pipeline,
    /// Incidents, deduplication and rate limits.
    shaper: Shaper,
    /// stdout and the other outputs.
    output: Fanout,
    /// Since when the output has had no room (the agent then leaves batches in the reader's
    /// channel and the ring buffer), and whether that was logged.
    output_blocked_since: Option<Instant>,
    output_blocked_logged: bool,
    /// What was lost (kernel, outputs), and what of it was logged and reported.
    losses: LossWatch,
    /// When free heap memory is next returned to the system.
    heap: HeapTrim,
    /// Execs the kernel held for a workload-scoped rule, waiting for their container.
    holds: Holds,
}

impl Agent<'_> {
    /// Whether `--duration` has run out.
    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// The rules whose capabilities are missing, logged; an error (the agent does not start, the
/// reload is refused) when the kernel refused a capability a rule needs and `--allow-degraded`
/// was not given.
fn check_capabilities(
    policy: &shrike_rules::Policy,
    capabilities: &[Status],
    allow_degraded: bool,
) -> Result<Vec<health::Missing>> {
    let missing = health::missing(policy.rules(), capabilities);
    if missing.iter().any(health::refuses) && !allow_degraded {
        bail!("{}", health::refusal_message(&missing));
    }
    for m in &missing {
        warn!(
            rule = %m.rule_id,
            capability = m.capability.name(),
            state = m.state.as_str(),
            reason = m.reason.as_deref().unwrap_or(""),
            "a rule is not in force: its capability is missing here, or its events cannot happen here (reason)"
        );
    }
    Ok(missing)
}

/// The rules of `policy` that are enabled, as the metrics report them.
fn enabled_rules(policy: &shrike_rules::Policy) -> usize {
    policy.rules().filter(|r| r.enabled).count()
}

/// This machine's host name, as events name the node.
pub fn node_name() -> Arc<str> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid and writable for its whole length, which is what we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Arc::from("unknown");
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Arc::from(String::from_utf8_lossy(&buf[..len]).as_ref())
}
