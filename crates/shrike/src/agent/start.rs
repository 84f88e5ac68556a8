//! Start-up ([`Agent::start`]), in an order that matters: compile the policy, load the sensors
//! the configuration and the policy call for, check the capabilities the rules need (and
//! `--protect-self`'s), write the policy's kernel rules, start the ring-buffer reader, the
//! metrics and the API, seed the process tree from /proc — after the reader, so nothing that
//! happens during the scan is missed, offering the kernel a lineage entry for each process it
//! has not recorded itself — start the outputs, write the `agent_health` event, and log
//! `shrike ready`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use shrike_bpf::{Reader, SeedLineage, Seeded, Sensors};
use shrike_event::ExecId;
use shrike_proctree::procfs::{self, ScanOptions};
use shrike_proctree::ProcessTree;
use shrike_rules::text::render_diagnostics;
use tracing::{info, warn};

use super::hold_ledger::{resume_orphans, Ledger, LEDGER_DIR};
use super::{check_capabilities, enabled_rules, node_name, sensor_options, Agent, RunConfig};
use super::{HeapTrim, Holds, LossWatch};
use crate::cgroups::CgroupResolver;
use crate::clock::BootClock;
use crate::detect::Detector;
use crate::enforcement;
use crate::health;
use crate::observe::Observer;
use crate::output::Output;
use crate::outputs::{Fanout, Outputs};
use crate::pipeline::Pipeline;
use crate::policy_source::PolicyWatch;
use crate::shaping::Shaper;
use crate::workload::scope::ScopeKeeper;

impl<'a> Agent<'a> {
    /// Loads and starts everything, writing events to `out`; an error when the agent cannot
    /// run as configured (what was loaded by then is unloaded).
    pub(super) fn start<W: Write + Send + 'static>(config: &'a RunConfig, out: W) -> Result<Self> {
        let started = Instant::now();
        let policy = config.policy.compile().map_err(|diags| {
            anyhow!(
                "the policy ({}) does not compile:\n{}",
                config.policy.describe(),
                render_diagnostics(&diags)
            )
        })?;
        info!(rules = policy.rules().count(), source = %config.policy.describe(), "policy loaded");
        let policy_watch = PolicyWatch::new(&config.policy).context("watching the policy")?;
        let sensor_opts = sensor_options(config, &policy, None);
        if config.protect_self.is_some() && sensor_opts.protect.is_none() {
            warn!("--protect-self needs BPF LSM, which is not active here: attempts against the agent will be alerted on, not refused");
        }
        if sensor_opts.file.is_none() && config.sensors.file.is_some() {
            info!("no file, privilege or kernel-integrity rule and no watched path: the file sensor is not armed");
        }
        let configured_watch = config.sensors.file.as_ref().map(|f| f.watch.clone());
        // Where the system has no cgroup2 mounted, the network sensor mounts one under shrike's
        // run directory: make that directory root-only first.
        if shrike_bpf::mounts::find_mount("cgroup2").is_none() {
            shrike_bpf::mounts::prepare_run_dir().context("preparing shrike's run directory")?;
        }
        // Execs an agent that died was holding stay stopped until somebody resumes them.
        let orphans = resume_orphans(Path::new(LEDGER_DIR));
        if orphans > 0 {
            warn!(
                resumed = orphans,
                "resumed execs that an agent which died was holding: their workload-scoped rules could not be decided"
            );
        }
        let sensors = Sensors::load(&sensor_opts).context("loading the sensors")?;
        let capabilities = sensors.capabilities();
        let rules_not_in_force = check_capabilities(&policy, &capabilities, config.allow_degraded)?;
        check_self_protection(config, &capabilities)?;
        // Workload-scoped exec rules: their cgroup sets follow the containers the runtimes
        // describe (crate::workload::scope).
        let scopes = ScopeKeeper::for_sensors(&sensors);
        scopes
            .load(policy.workload_scopes(), policy.kernel_plan(), |cgroups| {
                enforcement::load(&sensors, policy.kernel_plan(), config.strict, cgroups)
            })
            .context("loading the policy's kernel rules")?;
        if !policy.workload_scopes().is_empty() && config.runtimes.is_empty() {
            warn!("the policy has workload-scoped rules (container.*, k8s.*) but no container runtime is asked: they match no container");
        }
        let mut detector = Detector::new(Arc::new(policy));
        detector.set_protecting(sensor_opts.protect.is_some());
        detector.set_config_rules(config.net_infos.iter().cloned());
        let events = sensors.events_handle().context("ring buffer handle")?;
        let (reader, batches) =
            Reader::start(events, config.reader).context("starting the ring-buffer reader")?;

        let mut observer = Observer::start(
            config.metrics,
            &config.api,
            &sensors,
            reader.stats.clone(),
            &capabilities,
        )?;
        observer
            .stats
            .policy_in_force(enabled_rules(detector.policy()), rules_not_in_force.len());

        let clock = BootClock::new();
        let cgroup2 = procfs_cgroup2();
        let tree = seed_tree(&sensors, config, &clock, cgroup2.clone());
        let processes = tree.stats().live;
        let mut pipeline = Pipeline::new(
            config.pipeline.clone(),
            node_name(),
            tree,
            clock,
            CgroupResolver::new(cgroup2.clone()),
        );
        if !config.runtimes.is_empty() {
            let workloads = crate::workload::Workloads::start(
                config.runtimes.clone(),
                Some(scopes.clone()),
                cgroup2.clone(),
            )
            .context("starting the container-identity thread")?;
            pipeline.set_workloads(workloads);
        }
        let outputs = Outputs::start(&config.outputs).context("starting the outputs")?;
        let mut output = Fanout::new(
            Output::new(out, config.output).context("starting the output thread")?,
            config.stdout.clone(),
            outputs,
        );
        crate::outputs::metrics::register(&observer.registry, output.stats());
        let event = pipeline.health_event(health::health(&capabilities, &rules_not_in_force));
        output
            .write(&event)
            .and_then(|_| output.flush())
            .context("writing events")?;
        observer.event(event);
        observer.end_batch(&pipeline);
        let mut shaper = Shaper::new(
            &config.shaping,
            pipeline.node_name().clone(),
            pipeline.agent_process(),
            pipeline.now(),
        );
        shaper.set_policy(detector.policy());
        info!(
            sensors = ?sensors.attached(),
            processes,
            startup_ms = started.elapsed().as_millis() as u64,
            "shrike ready"
        );

        let losses = LossWatch::new(
            sensors.counters().unwrap_or_default(),
            config.stats_interval,
        );
        Ok(Agent {
            config,
            deadline: config.duration.map(|d| started + d),
            sensors,
            capabilities,
            rules_not_in_force,
            configured_watch,
            scopes,
            policy_watch,
            detector,
            reader,
            batches,
            observer,
            pipeline,
            shaper,
            output,
            output_blocked_since: None,
            output_blocked_logged: false,
            losses,
            heap: HeapTrim::new(),
            holds: Holds::with_ledger(Ledger::new(Path::new(LEDGER_DIR))),
        })
    }
}

/// `--protect-self` where self-protection is degraded or unavailable: an error, or with
/// `--allow-degraded` a warning.
fn check_self_protection(
    config: &RunConfig,
    capabilities: &[shrike_bpf::capability::Status],
) -> Result<()> {
    let protection = capabilities
        .iter()
        .find(|s| s.capability == shrike_bpf::capability::Capability::SelfProtection);
    if let Some(status) = protection.filter(|s| {
        config.protect_self.is_some()
            && matches!(
                s.state,
                shrike_bpf::capability::State::Degraded
                    | shrike_bpf::capability::State::Unavailable
            )
    }) {
        let why = status.reason.as_deref().unwrap_or("");
        if !config.allow_degraded {
            bail!("--protect-self: self-protection is {} on this kernel: {why} (run `shrike doctor --protect-self`; --allow-degraded starts without it)", status.state.as_str());
        }
        warn!(
            state = status.state.as_str(),
            reason = why,
            "--protect-self is not fully in force"
        );
    }
    Ok(())
}

/// Reads /proc, offers the kernel a lineage entry for each process (keeping the kernel's own
/// where it already has one), and builds the tree.
fn seed_tree(
    sensors: &Sensors,
    config: &RunConfig,
    clock: &BootClock,
    cgroup2: Option<std::path::PathBuf>,
) -> ProcessTree {
    let opts = ScanOptions {
        proc_root: "/proc".into(),
        cgroup2_root: cgroup2,
        args_max: config.sensors.args_max as usize,
        keep_env: config.pipeline.keep_env.clone(),
        boot_wall_ns: clock.boot_wall_ns(),
    };
    let seeds = procfs::scan(&opts);
    // The images holding a listening socket: servers of what they start from now on.
    let mut listeners = Vec::new();
    // Binaries by pid, for the ancestry each kernel lineage entry carries.
    let binaries: std::collections::HashMap<u32, (u32, std::sync::Arc<str>)> = seeds
        .iter()
        .map(|s| (s.process.pid, (s.process.ppid, s.process.binary.clone())))
        .collect();
    // Collected in place (the standard library reuses the source array when the element fits,
    // as a `Process` does where its `Seed` was): with 100,000 processes, one array of them
    // at a time instead of two.
    let processes: Vec<shrike_event::Process> = seeds
        .into_iter()
        .map(|seed| {
            let mut process = seed.process;
            let parent = process.parent_exec_id.map_or(0, |id| id.0);
            let (ancestry, ancestry_cut) = ancestry_of(&binaries, process.ppid);
            let lineage = SeedLineage {
                tgid: process.pid,
                exec_id: process.exec_id.0,
                parent_exec_id: parent,
                start_boottime_ns: seed.start_boottime_ns,
                binary: process.binary.to_string(),
                ancestry,
                ancestry_cut,
                listened: seed.listened,
                under_server: process.under_server,
            };
            match sensors.seed_lineage(&lineage) {
                Ok(Seeded::Written) => {}
                Ok(Seeded::KernelHas {
                    exec_id,
                    parent_exec_id,
                }) => {
                    process.exec_id = ExecId(exec_id);
                    process.parent_exec_id =
                        (parent_exec_id != 0).then_some(ExecId(parent_exec_id));
                }
                Err(err) => {
                    warn!(pid = process.pid, %err, "could not seed the kernel's lineage entry")
                }
            }
            if seed.listened {
                listeners.push((process.exec_id, process.pid));
            }
            process
        })
        .collect();
    let mut tree = ProcessTree::new(config.tree.clone());
    tree.seed(processes);
    for (exec_id, pid) in listeners {
        tree.mark_listened(exec_id, pid);
    }
    tree
}

/// The binaries of `ppid` and its ancestors in the /proc snapshot, nearest first, at most
/// SHRIKE_ANCESTRY of them; and whether the chain went on beyond.
fn ancestry_of(
    binaries: &std::collections::HashMap<u32, (u32, std::sync::Arc<str>)>,
    ppid: u32,
) -> (Vec<String>, bool) {
    let depth = shrike_bpf::abi::limit(shrike_bpf::abi::shrike_limits::SHRIKE_ANCESTRY);
    let mut out = Vec::new();
    let mut pid = ppid;
    while pid != 0 {
        let Some((next, binary)) = binaries.get(&pid) else {
            break;
        };
        if out.len() == depth {
            return (out, true);
        }
        out.push(binary.to_string());
        if *next == pid {
            break;
        }
        pid = *next;
    }
    (out, false)
}

fn procfs_cgroup2() -> Option<std::path::PathBuf> {
    shrike_bpf::mounts::find_mount("cgroup2")
}
