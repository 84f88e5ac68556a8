//! `shrike learn`: watch a workload (a cgroup, a binary and its descendants, or a container)
//! for a while and write a least-privilege policy for it — what it executed, wrote, connected
//! to, bound and did with privilege becomes allow-lists, and one deny rule per kind of action
//! refuses (or, in audit mode, reports) everything else.
//!
//! Learning runs the same agent as `shrike run`, with no policy, the file sensor watching every
//! write and the network sensor on, and reads back the events it writes ([`observe::Sink`]);
//! `--from-events` learns from a recorded stream instead. The policy is compiled before it is
//! written (a policy that does not compile is a bug here, reported as an error), and the
//! comment above each rule says whether the kernel decides it, from the same translation the
//! agent uses (`crate::enforcement`).

mod observe;
mod render;
mod scope;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use shrike_bpf::file::{Access, FileOptions, Pattern, Watch, WatchKind, WatchSet};
use shrike_rules::{Enforcement, Policy};
use tracing::info;

use crate::agent::RunConfig;
use crate::output::OutputFormat;
use crate::policy_source::PolicySource;
use crate::shutdown::Shutdown;

pub use observe::{Observations, Sink};
pub use render::{render, RenderOptions};
pub use scope::Scope;

/// `shrike learn`'s arguments.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["cgroup", "binary", "container"])))]
pub struct LearnArgs {
    /// Learn the processes of this cgroup v2 directory (not its sub-cgroups).
    #[arg(long, value_name = "DIR")]
    pub cgroup: Option<PathBuf>,

    /// Learn this binary (absolute path) and every process below it.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,

    /// Learn this container (its full id, as events report it in container.id).
    #[arg(long, value_name = "ID")]
    pub container: Option<String>,

    /// Stop learning after this many seconds (default: at SIGINT or SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,

    /// Write the policy here (default: stdout).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The learned rules' mode: `audit` reports would_deny, `enforce` stops what the kernel
    /// decides.
    #[arg(long, value_parser = ["audit", "enforce"], default_value = "audit")]
    pub mode: String,

    /// Rule ids start with this (LEARN-EXEC, …); lists and macros with it in lower case. Give
    /// each learned workload its own to load several policies together.
    #[arg(long, value_name = "PREFIX", default_value = "LEARN")]
    pub id_prefix: String,

    /// Learn from events recorded by `shrike run` (JSON lines; `-` for stdin) instead of
    /// watching the machine.
    #[arg(long, value_name = "EVENTS.jsonl")]
    pub from_events: Option<PathBuf>,
}

impl LearnArgs {
    fn scope(&self) -> Result<Scope> {
        match (&self.cgroup, &self.binary, &self.container) {
            (Some(dir), _, _) => Scope::cgroup(dir),
            (_, Some(path), _) => Scope::binary(path),
            (_, _, Some(id)) if !id.is_empty() => Ok(Scope::Container { id: id.clone() }),
            _ => bail!("give one of --cgroup, --binary or --container"),
        }
    }
}

/// Runs `shrike learn`.
pub fn run(args: &LearnArgs) -> Result<ExitCode> {
    if args.id_prefix.is_empty()
        || !args
            .id_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!(
            "--id-prefix {:?}: use letters, digits, '-' and '_'",
            args.id_prefix
        );
    }
    let scope = args.scope()?;
    let mut obs = Observations::new(scope.clone());
    match &args.from_events {
        Some(path) => read_events(path, &mut obs)?,
        None => watch(args, &mut obs)?,
    }
    let opts = RenderOptions {
        id_prefix: args.id_prefix.clone(),
        mode: if args.mode == "enforce" {
            "enforce"
        } else {
            "audit"
        },
        node: crate::agent::node_name().to_string(),
    };
    let (text, kernel, user) = policy_text(&obs, &opts)?;
    match &args.output {
        Some(path) => std::fs::write(path, &text)
            .with_context(|| format!("writing the policy to {}", path.display()))?,
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .context("writing the policy")?,
    }
    info!(
        scope = %scope.describe(),
        events = obs.events,
        executables = obs.executables.seen.len(),
        files = obs.files.seen.len(),
        peers = obs.peers.seen.len(),
        bound_ports = obs.bound.seen.len(),
        privileged = obs.privileged.seen.len(),
        rules_in_kernel = kernel,
        rules_in_user_space = user,
        "learned policy written"
    );
    Ok(ExitCode::SUCCESS)
}

/// The policy for `obs`, compiled to be sure it is valid, with a note on each rule saying
/// whether the kernel decides it; and how many rules the kernel decides and how many not.
pub fn policy_text(obs: &Observations, opts: &RenderOptions) -> Result<(String, usize, usize)> {
    let draft = render(obs, opts, &BTreeMap::new());
    let policy = Policy::compile([("learned.yaml", draft.as_str())]).map_err(|diags| {
        anyhow!(
            "the learned policy does not compile (a bug in shrike learn):\n{}",
            shrike_rules::text::render_diagnostics(&diags)
        )
    })?;
    let notes = kernel_notes(&policy);
    let kernel = notes.values().filter(|n| n.starts_with("decided")).count();
    let user = notes.len() - kernel;
    Ok((render(obs, opts, &notes), kernel, user))
}

/// Per rule id: `decided in the kernel` or `checked in user space: why`.
pub fn kernel_notes(policy: &Policy) -> BTreeMap<String, String> {
    let not_held: BTreeMap<String, String> = crate::enforcement::not_held(policy.kernel_plan())
        .into_iter()
        .collect();
    let mut out = BTreeMap::new();
    for rule in &policy.kernel_plan().rules {
        let user = rule.entries.iter().find_map(|e| match &e.enforcement {
            Enforcement::UserSpace { reason } => Some(reason.clone()),
            _ => None,
        });
        let note = match not_held.get(&rule.id).cloned().or(user) {
            Some(reason) => format!("checked in user space: {reason}"),
            None => "decided in the kernel".to_string(),
        };
        out.insert(rule.id.clone(), note);
    }
    out
}

fn read_events(path: &PathBuf, obs: &mut Observations) -> Result<()> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        ))
    };
    let mut sink = Sink::new(obs);
    for line in reader.lines() {
        let mut line = line.with_context(|| format!("reading {}", path.display()))?;
        line.push('\n');
        sink.write_all(line.as_bytes())?;
    }
    if sink.bad_lines > 0 {
        bail!(
            "{}: {} lines are not events",
            path.display(),
            sink.bad_lines
        );
    }
    Ok(())
}

/// Runs the agent until the duration ends or a signal, learning from what it writes.
fn watch(args: &LearnArgs, obs: &mut Observations) -> Result<()> {
    let mut config = RunConfig::with_output(OutputFormat::Json);
    config.policy = PolicySource {
        default_pack: false,
        files: Vec::new(),
    };
    config.duration = args.duration.map(Duration::from_secs);
    config.shaping.enabled = false;
    // Every write, creation, truncation and change anywhere: what the workload writes is
    // found by path afterwards. Reads are not learned.
    let mut watch = WatchSet::default();
    watch.watches.push(Watch {
        pattern: Pattern::Prefix("/".into()),
        kinds: WatchKind::ALL.into_iter().collect(),
        open_access: Access::MODIFY,
    });
    config.sensors.file = Some(FileOptions {
        watch,
        ..FileOptions::default()
    });
    config.sensors.net = Some(shrike_bpf::net::NetOptions {
        dns: false,
        ..Default::default()
    });
    let shutdown = Shutdown::on_signals()?;
    info!(scope = %obs.scope.describe(), "learning: stop with Ctrl-C (or --duration)");
    // The agent writes its output from a thread of its own (a blocked output must never stall
    // it), so the sink owns what it fills; the observations come back once the agent stopped.
    let shared = std::sync::Arc::new(std::sync::Mutex::new(obs.clone()));
    crate::agent::run(&config, SharedSink(shared.clone()), shutdown)?;
    *obs = shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(())
}

/// A [`Sink`] the agent's output thread can own. The agent writes whole lines (one chunk of
/// events per write), so each write is read on its own.
struct SharedSink(std::sync::Arc<std::sync::Mutex<Observations>>);

impl Write for SharedSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut obs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Sink::new(&mut obs).write(data)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
