//! The agent: load the sensors, seed the process tree, and run the pipeline until shutdown.
//!
//! Start-up order matters. The programs are attached and the ring-buffer reader started
//! *before* /proc is scanned, so nothing that happens during the scan is missed; the scan then
//! offers the kernel lineage entries only for processes it has not already recorded itself.
//! On shutdown the reader drains what the ring still holds, the pipeline writes it, and dropping
//! the sensors detaches every program.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use shrike_bpf::{Batch, Counters, Reader, SeedLineage, Seeded, Sensors};
use shrike_event::{EventKind, ExecId, Lost};
use shrike_proctree::procfs::{self, ScanOptions};
use shrike_proctree::ProcessTree;
use shrike_rules::text::render_diagnostics;
use tracing::{info, warn};

use crate::cgroups::CgroupResolver;
use crate::clock::BootClock;
use crate::detect::Detector;
use crate::enforcement;
use crate::health;
use crate::observe::Observer;
use crate::output::{Output, FINISH_MAX, FINISH_STALL};
use crate::outputs::{Fanout, Outputs};
use crate::pipeline::Pipeline;
use crate::policy_source::PolicyWatch;
use crate::shaping::Shaper;
use crate::shutdown::Shutdown;
use crate::workload::scope::ScopeKeeper;

mod config;
mod reload;

pub use config::{default_keep_env, sensor_options, validate_sizes, RunConfig};
use reload::reload;

/// How long the outputs get at exit to deliver what they still hold.
const OUTPUTS_GRACE: Duration = Duration::from_secs(2);

/// How often the loss counters are checked (and an `events_lost` event emitted on growth).
const LOSS_CHECK: Duration = Duration::from_secs(1);

/// Runs the agent, writing events to `out`, until `shutdown` is triggered.
///
/// `out` is written from a thread of its own ([`Output`]): a reader that stops reading never
/// stalls the agent, which keeps honouring `shutdown`, and counts and reports what it drops.
pub fn run<W: Write + Send + 'static>(
    config: &RunConfig,
    out: W,
    shutdown: Shutdown,
) -> Result<()> {
    let started = Instant::now();
    let policy = config.policy.compile().map_err(|diags| {
        anyhow!(
            "the policy ({}) does not compile:\n{}",
            config.policy.describe(),
            render_diagnostics(&diags)
        )
    })?;
    info!(rules = policy.rules().count(), source = %config.policy.describe(), "policy loaded");
    let mut policy_watch = PolicyWatch::new(&config.policy).context("watching the policy")?;
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
    let sensors = Sensors::load(&sensor_opts).context("loading the sensors")?;
    let capabilities = sensors.capabilities();
    let mut missing = check_capabilities(&policy, &capabilities, config.allow_degraded)?;
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
    // Workload-scoped exec rules: their cgroup sets follow the containers the runtimes
    // describe (crate::workload::scope).
    let scopes = ScopeKeeper::for_sensors(&sensors);
    scopes
        .load(policy.workload_scopes(), |cgroups| {
            enforcement::load(&sensors, policy.kernel_plan(), config.strict, cgroups)
        })
        .context("loading the policy's kernel rules")?;
    if !policy.workload_scopes().is_empty() && config.runtimes.is_empty() {
        warn!("the policy has workload-scoped rules (container.*, k8s.*) but no container runtime is asked: they match no container");
    }
    let mut detector = Detector::new(Arc::new(policy));
    detector.set_protecting(sensor_opts.protect.is_some());
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
    let enabled_rules = |p: &shrike_rules::Policy| p.rules().filter(|r| r.enabled).count();
    observer
        .stats
        .policy_in_force(enabled_rules(detector.policy()), missing.len());

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
    pipeline.set_net_rules(config.net_infos.iter().cloned());
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
    let event = pipeline.health_event(health::health(&capabilities, &missing));
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

    let mut last_counters = sensors.counters().unwrap_or_default();
    // Kernel loss as logged, and as reported in the stream (which waits while the output is
    // blocked); events the output dropped and the stream has not been told of yet.
    let mut logged_lost = last_counters.clone();
    let mut reported_lost = last_counters.clone();
    let mut output_loss_unreported = 0u64;
    let mut output_loss_total = 0u64;
    let mut last_backpressure = 0;
    let mut next_loss_check = Instant::now() + LOSS_CHECK;
    let mut next_stats = Instant::now() + config.stats_interval;
    let deadline = config.duration.map(|d| started + d);
    let mut result = Ok(());

    // Since when the output has had no room (the agent then leaves batches in the reader's
    // channel and the ring buffer), and whether that was logged.
    let mut blocked_since: Option<Instant> = None;
    let mut blocked_logged = false;

    while !shutdown.is_triggered() && deadline.is_none_or(|d| Instant::now() < d) {
        let received = if output.has_room() {
            if let Some(since) = blocked_since.take() {
                if blocked_logged {
                    info!(
                        blocked_ms = since.elapsed().as_millis() as u64,
                        "the output is taking events again"
                    );
                }
                blocked_logged = false;
            }
            batches.recv_timeout(Duration::from_millis(200))
        } else {
            blocked_since.get_or_insert_with(Instant::now);
            std::thread::sleep(Duration::from_millis(20));
            Err(RecvTimeoutError::Timeout)
        };
        match received {
            Ok(batch) => {
                if let Err(err) = write_batch(
                    &mut pipeline,
                    &mut detector,
                    &mut shaper,
                    &mut output,
                    &mut observer,
                    &batch,
                    config.alerts_only,
                ) {
                    result = Err(err);
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                result = Err(anyhow::anyhow!(
                    "the ring-buffer reader stopped unexpectedly"
                ));
                break;
            }
        }
        pipeline.clock_mut().refresh();
        if let Err(err) = write_shaped(&mut shaper, &mut output, &mut observer, |s, out| {
            s.tick(pipeline.now(), out)
        }) {
            result = Err(err);
            break;
        }
        if let Some(due) = policy_watch.due() {
            let reloaded = reload(
                config,
                reload::KernelSide {
                    sensors: &sensors,
                    capabilities: &capabilities,
                    configured_watch: configured_watch.as_ref(),
                    scopes: &scopes,
                },
                &mut detector,
                &mut policy_watch,
                due,
            );
            match (&reloaded.missing, &reloaded.change) {
                (Some(m), _) => {
                    observer
                        .stats
                        .reloads_succeeded
                        .fetch_add(1, Ordering::Relaxed);
                    observer
                        .stats
                        .policy_in_force(enabled_rules(detector.policy()), m.len());
                }
                (None, Some(change)) if change.status == "refused" => {
                    observer
                        .stats
                        .reloads_failed
                        .fetch_add(1, Ordering::Relaxed);
                }
                // Held (it loosens enforcement and waits), or caught changing while read (read
                // again once settled): neither a success nor a failure yet.
                (None, _) => {}
            }
            if let Some(change) = reloaded.change {
                let mut event = pipeline.agent_event(EventKind::PolicyChange);
                event.policy = Some(change);
                if let Err(err) = output.write(&event).and_then(|_| output.flush()) {
                    result = Err(err).context("writing events");
                    break;
                }
                observer.event(event);
                observer.end_batch(&pipeline);
            }
            // The rules not in force changed with the policy: say so in the stream.
            if let Some(now_missing) = reloaded.missing.filter(|m| *m != missing) {
                missing = now_missing;
                let event = pipeline.health_event(health::health(&capabilities, &missing));
                if let Err(err) = output.write(&event).and_then(|_| output.flush()) {
                    result = Err(err).context("writing events");
                    break;
                }
                observer.event(event);
                observer.end_batch(&pipeline);
            }
            shaper.set_policy(detector.policy());
        }
        observer.answer(&crate::api::query::View {
            pipeline: &pipeline,
            policy: detector.policy(),
            source: &config.policy,
            capabilities: &capabilities,
            missing: &missing,
            stats: &observer.stats,
            sensors: &sensors,
        });
        let now = Instant::now();
        if now >= next_loss_check {
            next_loss_check = now + LOSS_CHECK;
            if blocked_since.is_some_and(|t| t.elapsed() >= LOSS_CHECK) && !blocked_logged {
                warn!("the output is not taking events (its reader is not reading): the ring buffer holds them until it is full, then the kernel drops records and counts them");
                blocked_logged = true;
            }
            let dropped = output.take_dropped();
            if dropped > 0 {
                warn!(
                    dropped,
                    "the output is not taking events (its reader is not reading): events dropped"
                );
                output_loss_unreported += dropped;
                output_loss_total += dropped;
            }
            let counters = sensors.counters().ok();
            let backpressure = reader.stats.backpressure.load(Ordering::Relaxed);
            if let Some(counters) = &counters {
                let lost = counters.since(&logged_lost).lost();
                if lost > 0 {
                    warn!(
                        lost,
                        backpressure = backpressure - last_backpressure,
                        "the kernel dropped records: ring buffer full"
                    );
                    logged_lost = counters.clone();
                }
            }
            last_backpressure = backpressure;
            let ring_lost = counters
                .as_ref()
                .map_or(0, |c| c.since(&reported_lost).lost());
            if ring_lost > 0 || output_loss_unreported > 0 {
                let event = pipeline.lost_event(Lost {
                    ringbuf_full: ring_lost,
                    pipeline_full: output_loss_unreported,
                    ..Lost::default()
                });
                match output.write_report(&event) {
                    Ok(true) => {
                        if let Some(counters) = &counters {
                            reported_lost = counters.clone();
                        }
                        output_loss_unreported = 0;
                        observer.event(event);
                        observer.end_batch(&pipeline);
                    }
                    // Still blocked: the counts keep growing until the output takes them.
                    Ok(false) => {}
                    Err(err) => {
                        result = Err(err).context("writing events");
                        break;
                    }
                }
            }
            // What an output dropped goes to every output (those that work receive it).
            let outputs = output.new_drops();
            if !outputs.is_empty() {
                warn!(?outputs, "outputs dropped events");
                let event = pipeline.lost_event(Lost {
                    outputs,
                    ..Lost::default()
                });
                if let Err(err) = output.write_report(&event) {
                    result = Err(err).context("writing events");
                    break;
                }
            }
            if let Some(counters) = counters {
                if now >= next_stats {
                    next_stats = now + config.stats_interval;
                    if counters != last_counters {
                        log_counters("periodic", &counters, &pipeline, &reader);
                        last_counters = counters;
                    }
                }
            }
        }
    }

    // Drain: ask the reader to stop; it hands over what the ring still holds and closes the
    // channel. Keep receiving until then (it may be waiting for room), writing while we can.
    reader.request_stop();
    // A reader that is still reading gets the rest (until a second signal, at most FINISH_MAX);
    // a blocked one holds up the exit by FINISH_STALL at most.
    shutdown.take();
    let give_up = || shutdown.is_triggered();
    let drain_deadline = Instant::now() + FINISH_MAX;
    let mut blocked = false;
    for batch in batches.iter() {
        blocked = blocked
            || (!output.has_room()
                && !output.wait_for_room(FINISH_STALL, drain_deadline, &give_up));
        if result.is_ok() && blocked {
            // Counted, not decoded: the exit does not wait for a blocked output.
            output.count_dropped(batch.len() as u64);
        } else if result.is_ok() {
            if let Err(err) = write_batch(
                &mut pipeline,
                &mut detector,
                &mut shaper,
                &mut output,
                &mut observer,
                &batch,
                config.alerts_only,
            ) {
                result = Err(err);
            }
        }
    }
    if result.is_ok() {
        result = write_shaped(&mut shaper, &mut output, &mut observer, |s, out| {
            s.finish(pipeline.now(), out)
        });
    }
    // Ends the API's streams (`shutdown`) and removes its socket; stops the metrics endpoint.
    drop(observer);
    let reader_stats = reader.stats.clone();
    let reader_result = reader.join();
    let counters = sensors.counters().unwrap_or_default();
    // The last loss report, if the output takes it; then a short wait for the output to write
    // what it holds (a blocked output does not hold up the exit).
    let dropped = output.take_dropped();
    output_loss_unreported += dropped;
    output_loss_total += dropped;
    let ring_lost = counters.since(&reported_lost).lost();
    if result.is_ok() && (ring_lost > 0 || output_loss_unreported > 0) {
        let event = pipeline.lost_event(Lost {
            ringbuf_full: ring_lost,
            pipeline_full: output_loss_unreported,
            ..Lost::default()
        });
        if let Err(err) = output.write_report(&event) {
            result = Err(err).context("writing events");
        }
    }
    // The other outputs get their grace (the loss report included) before stdout finishes.
    output.close_outputs(OUTPUTS_GRACE);
    let left = drain_deadline.saturating_duration_since(Instant::now());
    // Found blocked while draining: it has had its FINISH_STALL already.
    let stall = if blocked {
        Duration::ZERO
    } else {
        FINISH_STALL
    };
    let unwritten = match output.finish(stall, left, &give_up) {
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
        output_dropped = output_loss_total,
        output_unwritten = unwritten,
        records = reader_stats.records.load(Ordering::Relaxed),
        backpressure = reader_stats.backpressure.load(Ordering::Relaxed),
        events = pipeline.stats().events,
        alerts = detector.alerts_emitted(),
        incidents = shaper.stats().incidents,
        alerts_suppressed = shaper.stats().suppressed,
        decode_errors = pipeline.stats().decode_errors,
        unknown_kinds = pipeline.stats().unknown_kinds,
        "shrike stopping: final counters"
    );
    match sensors.pinned() {
        Some(pins) => {
            info!(dir = %pins.dir().display(), "enforcement stays in force: programs and rules are pinned (--keep-enforcing)")
        }
        None => info!("detaching all programs"),
    }
    drop(sensors);
    // What shrike mounted under its run directory is not needed once the sensors are gone (a
    // cgroup program stays attached to its cgroup without the mount).
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

/// The rules whose capabilities are missing, logged; an error (the agent does not start, the
/// reload is refused) when the kernel refused a capability a rule needs and `--allow-degraded`
/// was not given.
fn check_capabilities(
    policy: &shrike_rules::Policy,
    capabilities: &[shrike_bpf::capability::Status],
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
            "a rule is not in force: the capability it needs is missing"
        );
    }
    Ok(missing)
}

fn write_batch(
    pipeline: &mut Pipeline,
    detector: &mut Detector,
    shaper: &mut Shaper,
    output: &mut Fanout,
    observer: &mut Observer,
    batch: &Batch,
    alerts_only: bool,
) -> Result<()> {
    observer
        .stats
        .batches_received
        .fetch_add(1, Ordering::Relaxed);
    let mut before = Vec::new();
    for record in batch.iter() {
        match pipeline.handle(record) {
            Ok(Some(mut event)) => {
                detector.apply(&mut event);
                shaper.shape(&mut event, &mut before);
                for synthesized in before.drain(..) {
                    output.write(&synthesized).context("writing events")?;
                    observer.event(synthesized);
                }
                if !alerts_only || !event.alerts.is_empty() {
                    output.write(&event).context("writing events")?;
                }
                observer.event(event);
            }
            Ok(None) => {}
            Err(err) => warn!(%err, "skipping a kernel record"),
        }
    }
    output.flush().context("writing events")?;
    pipeline.expire();
    observer.end_batch(pipeline);
    Ok(())
}

/// Writes what the shaper has due (incident updates and closes, suppression reports): `due`
/// is [`Shaper::tick`] or [`Shaper::finish`].
fn write_shaped(
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
    let mut processes = Vec::with_capacity(seeds.len());
    // Binaries by pid, for the ancestry each kernel lineage entry carries.
    let binaries: std::collections::HashMap<u32, (u32, std::sync::Arc<str>)> = seeds
        .iter()
        .map(|s| (s.process.pid, (s.process.ppid, s.process.binary.clone())))
        .collect();
    for seed in seeds {
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
        };
        match sensors.seed_lineage(&lineage) {
            Ok(Seeded::Written) => {}
            Ok(Seeded::KernelHas {
                exec_id,
                parent_exec_id,
            }) => {
                process.exec_id = ExecId(exec_id);
                process.parent_exec_id = (parent_exec_id != 0).then_some(ExecId(parent_exec_id));
            }
            Err(err) => warn!(pid = process.pid, %err, "could not seed the kernel's lineage entry"),
        }
        processes.push(process);
    }
    let mut tree = ProcessTree::new(config.tree.clone());
    tree.seed(processes);
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
