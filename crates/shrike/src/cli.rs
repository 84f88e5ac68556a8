//! The command line: clap definitions, and the one step that turns raw options into a
//! validated [`RunConfig`].

use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use std::path::PathBuf;

use crate::agent::{default_keep_env, validate_sizes, RunConfig};
use crate::output::OutputFormat;
use crate::policy_source::PolicySource;

/// shrike: runtime security for Linux, built on eBPF.
#[derive(Debug, Parser)]
#[command(name = "shrike", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log level for the agent's own logs (stderr): error, warn, info, debug, trace or off;
    /// or directives per target, e.g. `info,libbpf=debug`.
    #[arg(long, global = true, default_value = "info", env = "SHRIKE_LOG", value_parser = parse_log_level)]
    pub log_level: String,
}

const LOG_LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// A log level or comma-separated `[TARGET=]LEVEL` directives; anything else is an error that
/// names the valid levels (a misspelled level must not turn logging off).
pub fn parse_log_level(text: &str) -> Result<String, String> {
    for directive in text.split(',') {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level,
            Some(_) => return Err(format!("'{directive}': a directive is TARGET=LEVEL")),
            None => directive,
        };
        if !LOG_LEVELS.contains(&level.trim().to_ascii_lowercase().as_str()) {
            return Err(format!(
                "unknown log level '{}': use one of {} (or TARGET=LEVEL, comma-separated)",
                level.trim(),
                LOG_LEVELS.join(", ")
            ));
        }
    }
    Ok(text.to_string())
}

const EXIT_CODES: &str = "Exit codes:\n  0  success (doctor: shrike can run here)\n  1  failure (doctor: shrike cannot run here; run: could not start or stopped on an error)\n  2  invalid command line";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent in the foreground: events on stdout, logs on stderr, stop with Ctrl-C or
    /// SIGTERM (every program is detached on the way out).
    Run(RunArgs),
    /// Check this kernel: load the programs `shrike run` would load with the same options
    /// (the built-in defaults unless given), print one row per capability — ok, fallback,
    /// degraded or unavailable, with the hook and the reason — detach, and exit 1 if anything
    /// the configuration needs is degraded or unavailable.
    Doctor(RunArgs),
    /// Write, check and understand policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Watch a workload (a cgroup, a binary and its descendants, a container) and write a
    /// least-privilege policy for it: allow-lists of what it did, deny rules for the rest.
    Learn(crate::learn::LearnArgs),
    /// Print a running agent's events from its API: the recent ones it keeps, or with
    /// --follow every new one, filtered by the agent.
    Events(crate::api::client::EventsArgs),
    /// List the processes a running agent tracks (--tree: as a tree; --pid: one process and
    /// its ancestry).
    Ps(crate::api::client::PsArgs),
    /// Show a running agent's health: capabilities, policy, counters.
    Status(crate::api::client::StatusArgs),
    /// Check the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse a configuration file (default /etc/shrike/shrike.yaml) and check every setting as
    /// `shrike run` would; report each error as file:line:col. Exit 1 on errors.
    Validate {
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Compile policy files (with the default pack, as `run --policy` loads them) and report
    /// every error as file:line:col with a suggestion. Exit 1 on errors.
    Validate(PolicyArgs),
    /// Replay recorded events (JSON lines, as `shrike run` writes them; `-` for stdin) through
    /// the policy and print every match. Exit 1 on errors or lines that are not events.
    Test {
        #[command(flatten)]
        policy: PolicyArgs,
        /// The events to replay.
        #[arg(long, value_name = "EVENTS.jsonl")]
        events: PathBuf,
    },
    /// List the rules: id, severity, action, mode, MITRE techniques, name.
    List(PolicyArgs),
    /// Show, per rule, what is decided in the kernel and what stays in user space.
    Explain {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Print the kernel plan as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Policy files (YAML), in load order, added to the default pack.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Leave the embedded default pack out.
    #[arg(long)]
    pub no_default_policy: bool,
}

impl PolicyArgs {
    pub fn source(&self) -> PolicySource {
        PolicySource {
            default_pack: !self.no_default_policy,
            files: self.files.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (YAML: every flag below spelled with underscores, plus
    /// `outputs:`); flags given here override it. Default /etc/shrike/shrike.yaml, used when
    /// it exists.
    #[arg(long, value_name = "PATH", env = "SHRIKE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Event format on stdout.
    #[arg(long, value_enum, default_value = "json")]
    pub output: OutputFormat,

    /// Also emit process_fork events (forks are always tracked).
    #[arg(long)]
    pub emit_forks: bool,

    /// Ancestors carried on every event, nearest first.
    #[arg(long, default_value_t = 8)]
    pub ancestors_depth: usize,

    /// Ring buffer size in MiB (a power of two).
    #[arg(long, default_value_t = 16)]
    pub ring_buffer_mb: u32,

    /// argv bytes kept per exec (at most 32768); longer argv is cut and marked args_truncated.
    #[arg(long, default_value_t = shrike_bpf::abi::ARGS_MAX as u32)]
    pub args_max: u32,

    /// Environment variable to keep on process.env (repeatable). Default: LD_PRELOAD,
    /// LD_LIBRARY_PATH, LD_AUDIT, HISTFILE, HISTSIZE, HISTFILESIZE. `--keep-env none` keeps
    /// none and skips reading it.
    #[arg(long = "keep-env", value_name = "NAME")]
    pub keep_env: Vec<String>,

    /// Seconds between logs of the kernel counters (when they changed).
    #[arg(long, default_value_t = 30)]
    pub stats_interval: u64,

    /// Stop by itself after this many seconds.
    #[arg(long)]
    pub duration: Option<u64>,

    /// A policy file (YAML) added to the default pack (repeatable). Reloaded on SIGHUP and
    /// when it changes; a file that does not compile leaves the running policy in force.
    #[arg(long = "policy", value_name = "FILE")]
    pub policy: Vec<PathBuf>,

    /// Leave the embedded default pack out (only --policy files apply).
    #[arg(long)]
    pub no_default_policy: bool,

    /// Print only events that raised an alert.
    #[arg(long)]
    pub alerts_only: bool,

    /// Keep enforcing while the agent is stopped, restarting or crashed: programs, links and
    /// rule maps are pinned under /sys/fs/bpf/shrike, and the next start adopts them without a
    /// gap. Without it, stopping the agent removes everything.
    #[arg(long)]
    pub keep_enforcing: bool,

    /// Kill (or refuse, under BPF LSM) an exec whose path is too deep to be read whole when a
    /// deny/kill rule on a path prefix could match it (its prefix is unknown). Without it such
    /// an exec runs and every rule that could match it alerts (`alerted`).
    #[arg(long)]
    pub strict: bool,

    /// Refuse signals and ptrace aimed at the agent, and removal of its pins, from every
    /// process (root included) except allowed binaries. Needs BPF LSM; elsewhere such attempts
    /// are alerted on (they always are). Ctrl-C from its terminal still works.
    #[arg(long)]
    pub protect_self: bool,

    /// A binary (absolute path) allowed to stop, trace or unpin the agent under
    /// --protect-self (repeatable); the shrike binary itself always is.
    #[arg(long = "allow-control", value_name = "BINARY")]
    pub allow_control: Vec<PathBuf>,

    /// Start even when a rule of the policy needs a capability this kernel refused (see
    /// `shrike doctor`): such rules are reported as not in force in the `agent_health` event
    /// instead of stopping the agent.
    #[arg(long)]
    pub allow_degraded: bool,

    /// A container runtime asked for the identity of containerised processes, as
    /// RUNTIME=SOCKET (runtime: podman, docker, containerd, crio; repeatable). Default: each
    /// runtime's usual socket. `--container-runtime none` asks none (events then carry only
    /// the container id from the cgroup).
    #[arg(long = "container-runtime", value_name = "RUNTIME=SOCKET")]
    pub container_runtime: Vec<String>,

    /// Leave the network sensor out (no socket, DNS or network enforcement events).
    #[arg(long)]
    pub no_net: bool,

    /// Do not copy DNS messages (UDP port 53) to user space.
    #[arg(long)]
    pub no_dns: bool,

    /// Network configuration (JSON): deny rules by CIDR, port, protocol and binary or cgroup,
    /// DNS capture, tc interfaces. The format is in the README ("Network enforcement").
    #[arg(long, value_name = "FILE")]
    pub net_config: Option<PathBuf>,

    /// Leave the file, privilege and kernel-integrity sensor out (no file_*, module_load,
    /// bpf_load, ptrace, cred_change, mount, namespace_change, memfd_create or signal events,
    /// and no syscall hooks).
    #[arg(long)]
    pub no_file_sensor: bool,

    /// Hooks of the file sensor: `lsm` (LSM hooks + fexit; needs BPF LSM active), `fentry`
    /// (fentry + fexit on the armed syscalls; needs BPF trampolines), `tracepoint` (the armed
    /// syscalls' own tracepoints; every syscall pays the tracepoint tax, only the armed ones
    /// run a program), `raw-tracepoint` (sys_enter/sys_exit: a program on every syscall) or
    /// `auto` (the first of lsm, fentry, tracepoint that works).
    #[arg(long, value_enum, default_value = "auto", env = "SHRIKE_FILE_HOOKS")]
    pub file_hooks: FileHooksArg,

    /// Also watch this path for file events (repeatable): a path ending in `/` watches
    /// everything under it, any other path that file exactly.
    #[arg(long = "watch", value_name = "PATH")]
    pub watch: Vec<String>,

    /// Also watch every path whose last component is NAME (repeatable).
    #[arg(long = "watch-name", value_name = "NAME")]
    pub watch_name: Vec<String>,

    /// Leave the built-in watch list out (only --watch and --watch-name paths are watched).
    #[arg(long)]
    pub no_builtin_watch: bool,

    #[command(flatten)]
    pub shaping: crate::shaping::ShapingArgs,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464). Off by default.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// The local API's unix socket (root only) for `shrike events`, `ps` and `status`.
    #[arg(long, value_name = "PATH", default_value = crate::api::protocol::DEFAULT_SOCKET)]
    pub api_socket: PathBuf,

    /// Do not open the local API socket.
    #[arg(long)]
    pub no_api: bool,

    /// Events queued for one `--follow` client of the API; a client that falls this far
    /// behind is cut off (with a message), so it never slows the agent.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub api_client_queue: usize,
}

/// `--file-hooks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileHooksArg {
    Auto,
    Lsm,
    Tracepoint,
    RawTracepoint,
    Fentry,
}

impl RunArgs {
    /// Every flag at its default (what the configuration file is applied over).
    pub fn defaults() -> RunArgs {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: RunArgs,
        }
        Wrap::parse_from(["shrike"]).args
    }

    /// The validated configuration from the configuration file (if any) and these flags,
    /// `matches` telling which flags the command line gave (they win over the file).
    pub fn resolve(mut self, matches: Option<&clap::ArgMatches>) -> Result<RunConfig> {
        use clap::parser::ValueSource;
        let given = |id: &str| {
            matches.is_some_and(|m| {
                matches!(
                    m.try_get_raw(id).ok().flatten().and(m.value_source(id)),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            })
        };
        let Some((path, file)) = crate::config_file::load(self.config.as_deref())? else {
            return self.config();
        };
        file.apply(&mut self, &given);
        let mut config = self
            .config()
            .map_err(|e| anyhow::anyhow!("{e:#} (with the configuration {})", path.display()))?;
        if let Some(outputs) = file.outputs {
            let (stdout, others): (Vec<_>, Vec<_>) = outputs
                .into_iter()
                .partition(|o| o.kind == crate::outputs::OutputKind::Stdout);
            config.stdout = stdout.into_iter().next().map(|o| o.select);
            config.outputs = others;
        }
        Ok(config)
    }

    /// The file sensor's options: the built-in watch list (unless left out) plus the paths
    /// and names given on the command line, for every file kind.
    fn file_options(&self) -> Result<shrike_bpf::file::FileOptions> {
        use shrike_bpf::file::{FileHooks, FileOptions, Pattern, Watch, WatchSet};
        let mut watch = if self.no_builtin_watch {
            WatchSet::default()
        } else {
            WatchSet::builtin()
        };
        for path in &self.watch {
            if !path.starts_with('/') {
                anyhow::bail!("--watch {path}: give an absolute path");
            }
            let pattern = if path.ends_with('/') {
                Pattern::Prefix(path.clone())
            } else {
                Pattern::Exact(path.clone())
            };
            watch.watches.push(Watch::all_kinds(pattern));
        }
        for name in &self.watch_name {
            if name.is_empty() || name.contains('/') {
                anyhow::bail!("--watch-name {name:?}: give a base name, without '/'");
            }
            watch
                .watches
                .push(Watch::all_kinds(Pattern::Name(name.clone())));
        }
        shrike_bpf::file::compile(&watch).map_err(|e| anyhow::anyhow!("watch list: {e}"))?;
        Ok(FileOptions {
            hooks: match self.file_hooks {
                FileHooksArg::Auto => FileHooks::Auto,
                FileHooksArg::Lsm => FileHooks::Lsm,
                FileHooksArg::Tracepoint => FileHooks::Tracepoint,
                FileHooksArg::RawTracepoint => FileHooks::RawTracepoint,
                FileHooksArg::Fentry => FileHooks::Fentry,
            },
            watch,
            ..FileOptions::default()
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> Result<RunConfig> {
        let (ring_buffer_bytes, args_max) = validate_sizes(self.ring_buffer_mb, self.args_max)?;
        let mut config = RunConfig::with_output(self.output);
        config.sensors.ring_buffer_bytes = ring_buffer_bytes;
        config.sensors.wakeup_bytes = u64::from(ring_buffer_bytes / 64);
        config.reader.bytes_in_flight = ring_buffer_bytes as usize;
        config.sensors.args_max = args_max;
        config.tree.ancestors_depth = self.ancestors_depth;
        config.pipeline.emit_forks = self.emit_forks;
        config.pipeline.keep_env = match self.keep_env.as_slice() {
            [] => default_keep_env(),
            [none] if none == "none" => Vec::new(),
            names => names.to_vec(),
        };
        if config.pipeline.keep_env.is_empty() {
            config.sensors.env_max = 0;
        }
        config.stats_interval = Duration::from_secs(self.stats_interval.max(1));
        config.duration = self.duration.map(Duration::from_secs);
        config.policy = PolicySource {
            default_pack: !self.no_default_policy,
            files: self.policy.clone(),
        };
        config.alerts_only = self.alerts_only;
        config.metrics = self.metrics;
        config.api = crate::api::ApiConfig {
            socket: (!self.no_api).then(|| self.api_socket.clone()),
            client_queue: self.api_client_queue.max(1),
            ..Default::default()
        };
        config.allow_degraded = self.allow_degraded;
        config.runtimes = match self.container_runtime.as_slice() {
            [] => crate::workload::RuntimeSocket::defaults(),
            [none] if none == "none" => Vec::new(),
            given => given
                .iter()
                .map(|t| {
                    crate::workload::RuntimeSocket::parse(t)
                        .map_err(|e| anyhow::anyhow!("--container-runtime {e}"))
                })
                .collect::<Result<_>>()?,
        };
        config.shaping = self.shaping.config()?;
        config.sensors.keep_enforcing = self.keep_enforcing;
        config.strict = self.strict;
        config.protect_self = self
            .protect_self
            .then(|| shrike_bpf::protect::ProtectOptions {
                allowed: self.allow_control.clone(),
            });
        if self.no_net {
            if self.net_config.is_some() {
                anyhow::bail!("--net-config needs the network sensor: drop --no-net");
            }
        } else {
            let mut net = match &self.net_config {
                Some(path) => {
                    let c = crate::netconfig::load(path)?;
                    config.net_infos = c.infos;
                    c.options
                }
                None => shrike_bpf::net::NetOptions {
                    dns: true,
                    ..Default::default()
                },
            };
            if self.no_dns {
                net.dns = false;
            }
            config.sensors.net = Some(net);
        }
        if !self.no_file_sensor {
            config.sensors.file = Some(self.file_options()?);
        } else if !self.watch.is_empty() || !self.watch_name.is_empty() {
            anyhow::bail!("--watch and --watch-name need the file sensor: drop --no-file-sensor");
        }
        Ok(config)
    }
}
