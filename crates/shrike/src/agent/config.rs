//! What `shrike run` is given: [`RunConfig`], checked once when the command line and the
//! configuration file are read ([`validate_sizes`], the defaults in
//! [`RunConfig::with_output`]), and the one derivation every load repeats, the sensor options
//! a configuration and a policy call for ([`sensor_options`]).

use std::time::Duration;

use anyhow::{bail, Result};
use shrike_bpf::probe::HookPlan;
use shrike_bpf::{ReaderOptions, SensorOptions};
use shrike_proctree::TreeOptions;

use crate::file_watch;
use crate::output::OutputFormat;
use crate::outputs::{OutputConfig, Select};
use crate::pipeline::PipelineOptions;
use crate::policy_source::PolicySource;
use crate::shaping::ShapingConfig;

/// Everything `shrike run` needs, validated.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub sensors: SensorOptions,
    pub reader: ReaderOptions,
    pub tree: TreeOptions,
    pub pipeline: PipelineOptions,
    pub output: OutputFormat,
    /// How often kernel counters are logged (when they changed).
    pub stats_interval: Duration,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// The rules.
    pub policy: PolicySource,
    /// Write only events that raised an alert (and the incidents and suppression reports).
    pub alerts_only: bool,
    /// Incidents, deduplication and rate limits on what is reported.
    pub shaping: ShapingConfig,
    /// What the network configuration's deny rules say in their alerts.
    pub net_infos: Vec<crate::netconfig::NetRuleInfo>,
    /// `--protect-self`: refuse attempts against the agent where BPF LSM allows it.
    pub protect_self: Option<shrike_bpf::protect::ProtectOptions>,
    /// `--allow-degraded`: start (and reload) even when rules need a capability this kernel
    /// refused; those rules are reported as not in force.
    pub allow_degraded: bool,
    /// Container runtimes asked for the identity of containerised processes (empty: none; the
    /// container id from the cgroup path is still carried).
    pub runtimes: Vec<crate::workload::RuntimeSocket>,
    /// `--metrics ADDR`: serve Prometheus metrics there.
    pub metrics: Option<std::net::SocketAddr>,
    /// The local API (`--api-socket`, `--no-api`).
    pub api: crate::api::ApiConfig,
    /// Which events stdout takes (format: `output`); `None` when the configuration file lists
    /// outputs and stdout is not one of them.
    pub stdout: Option<Select>,
    /// The other outputs (file, syslog, webhook, …), each on its own thread.
    pub outputs: Vec<OutputConfig>,
    /// `--strict`: an exec whose path was cut is stopped when a prefix rule could match it.
    pub strict: bool,
}

/// The sensor options `run` loads for this configuration and policy: the exec enforcement
/// hook probed here (EPERM where the kernel calls BPF LSM programs, else SIGKILL before the
/// new image runs — probed, not guessed from the kernel version), self-protection only where
/// BPF LSM can refuse, and the file sensor watching what the configuration and the policy
/// need — not loaded at all (no syscall hook armed) when neither needs it.
/// The kernel is probed once, here (or `known`, a plan `doctor` already has), and the plan goes
/// to every sensor.
pub fn sensor_options(
    config: &RunConfig,
    policy: &shrike_rules::Policy,
    known: Option<HookPlan>,
) -> SensorOptions {
    let mut opts = config.sensors.clone();
    if let Some(file) = opts.file.as_mut() {
        if file_watch::needed(&file.watch, policy.kernel_plan()) {
            // No container is known yet: scoped rules start with empty cgroup sets, which
            // the workload scope keeper fills as the runtimes describe containers.
            file.watch = file_watch::merged(&file.watch, policy.kernel_plan(), &|_| {
                std::collections::BTreeSet::new()
            });
        } else {
            opts.file = None;
        }
    }
    let plan = known.unwrap_or_else(|| {
        let file_auto = opts
            .file
            .as_ref()
            .is_some_and(|f| f.hooks == shrike_bpf::file::FileHooks::Auto);
        HookPlan::probe(file_auto)
    });
    opts.hooks = Some(plan);
    opts.exec_enforce_lsm = plan.bpf_lsm;
    if opts.exec_enforce_lsm {
        opts.protect = config.protect_self.clone();
    }
    opts
}

/// Validates raw options into a [`RunConfig`]: every range is checked here, once.
pub fn validate_sizes(ring_buffer_mb: u32, args_max: u32) -> Result<(u32, u32)> {
    let bytes = ring_buffer_mb
        .checked_mul(1 << 20)
        .filter(|b| b.is_power_of_two());
    let Some(bytes) = bytes else {
        bail!("--ring-buffer-mb {ring_buffer_mb}: must be a power of two from 1 to 2048");
    };
    if args_max == 0 || args_max as usize > shrike_bpf::abi::ARGS_MAX {
        bail!(
            "--args-max {args_max}: must be between 1 and {}",
            shrike_bpf::abi::ARGS_MAX
        );
    }
    Ok((bytes, args_max))
}

impl RunConfig {
    /// The default configuration with a given output format.
    pub fn with_output(output: OutputFormat) -> Self {
        RunConfig {
            sensors: SensorOptions::default(),
            reader: ReaderOptions::default(),
            tree: TreeOptions::default(),
            pipeline: PipelineOptions {
                emit_forks: false,
                keep_env: default_keep_env(),
            },
            output,
            stats_interval: Duration::from_secs(30),
            duration: None,
            policy: PolicySource {
                default_pack: true,
                files: Vec::new(),
            },
            alerts_only: false,
            shaping: ShapingConfig::default(),
            net_infos: Vec::new(),
            protect_self: None,
            allow_degraded: false,
            runtimes: crate::workload::RuntimeSocket::defaults(),
            metrics: None,
            api: crate::api::ApiConfig {
                socket: None,
                ..Default::default()
            },
            stdout: Some(Select::default()),
            outputs: Vec::new(),
            strict: false,
        }
    }
}

/// Environment variables kept by default: the ones that change what code a process loads.
pub fn default_keep_env() -> Vec<String> {
    // The linker's hijack points, and the shell history settings a wiper exports.
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "HISTFILE",
        "HISTSIZE",
        "HISTFILESIZE",
    ]
    .map(String::from)
    .to_vec()
}
