//! The configuration file (`/etc/shrike/shrike.yaml`, or `--config PATH`): every `shrike run`
//! flag, spelled with underscores (`ring_buffer_mb: 32`, `policy: [a.yaml]`), plus `outputs:`.
//! A flag given on the command line (or through its environment variable) overrides the
//! file. The default file may be absent (built-in defaults); a file named with `--config`
//! must exist. Every error carries its line and column, an unknown key its nearest valid one.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::cli::{FileHooksArg, RunArgs};
use crate::output::OutputFormat;
use crate::outputs::{self, Format, OutputConfig, OutputKind};

/// Where the agent looks for its configuration when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/shrike/shrike.yaml";

/// The file's contents; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub output: Option<Format>,
    pub emit_forks: Option<bool>,
    pub ancestors_depth: Option<usize>,
    pub ring_buffer_mb: Option<u32>,
    pub args_max: Option<u32>,
    pub keep_env: Option<Vec<String>>,
    pub stats_interval: Option<u64>,
    pub duration: Option<u64>,
    pub policy: Option<Vec<PathBuf>>,
    pub no_default_policy: Option<bool>,
    pub alerts_only: Option<bool>,
    pub keep_enforcing: Option<bool>,
    pub strict: Option<bool>,
    pub protect_self: Option<bool>,
    pub allow_control: Option<Vec<PathBuf>>,
    pub allow_degraded: Option<bool>,
    pub container_runtime: Option<Vec<String>>,
    pub no_net: Option<bool>,
    pub no_dns: Option<bool>,
    pub net_config: Option<PathBuf>,
    pub no_file_sensor: Option<bool>,
    pub file_hooks: Option<FileHooks>,
    pub watch: Option<Vec<String>>,
    pub watch_name: Option<Vec<String>>,
    pub no_builtin_watch: Option<bool>,
    pub incident_window: Option<u64>,
    pub incident_update: Option<u64>,
    pub dedup_window: Option<u64>,
    pub alert_limit: Option<String>,
    pub no_shaping: Option<bool>,
    pub metrics: Option<std::net::SocketAddr>,
    pub api_socket: Option<PathBuf>,
    pub no_api: Option<bool>,
    pub api_client_queue: Option<usize>,
    /// Where events go; absent: stdout alone, as `--output` says.
    pub outputs: Option<Vec<OutputConfig>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileHooks {
    Auto,
    Lsm,
    Tracepoint,
    RawTracepoint,
}

/// A configuration error at a place in the file.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), position.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    /// Line and column, from 1.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

/// Parses `text` (the contents of `path`). A file of only comments is the defaults.
pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    let empty = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---");
    if empty {
        return Ok(FileConfig::default());
    }
    serde_yaml::from_str(text).map_err(|err| {
        let position = err.location().map(|l| (l.line(), l.column()));
        let mut message = err.to_string();
        if let Some(at) = message.find(" at line ") {
            message.truncate(at);
        }
        if let Some(hint) = did_you_mean(&message) {
            message.push_str(&format!(" (did you mean `{hint}`?)"));
        }
        ConfigError {
            path: path.to_owned(),
            position,
            message,
        }
    })
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown variant"): the
/// expected name nearest to `x`, when it is near enough to be a typo.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message
        .split_once("unknown field `")
        .or_else(|| message.split_once("unknown variant `"))
        .map(|(_, r)| r)?;
    let (given, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|candidate| (edit_distance(given, candidate), candidate))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c.to_owned())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Reads the configuration: `explicit` (which must exist) or the default path (which may
/// not). `None` when there is no file.
pub fn load(explicit: Option<&Path>) -> Result<Option<(PathBuf, FileConfig)>> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => {
            let path = PathBuf::from(DEFAULT_PATH);
            if !path.exists() {
                return Ok(None);
            }
            path
        }
    };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the configuration {} (give an existing file with --config)",
            path.display()
        )
    })?;
    let file = parse(&path, &text)?;
    check_outputs(&path, &file)?;
    Ok(Some((path, file)))
}

/// The checks serde cannot make: each output's settings fit its type, names are unique, at
/// most one stdout. Every problem is reported, each naming its output.
pub fn check_outputs(path: &Path, file: &FileConfig) -> Result<()> {
    let Some(list) = &file.outputs else {
        return Ok(());
    };
    let names = outputs::names(list).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    let mut problems = Vec::new();
    for (i, (config, name)) in list.iter().zip(&names).enumerate() {
        for p in config.check() {
            problems.push(format!("outputs[{i}] ({name}): {p}"));
        }
    }
    if list.iter().filter(|c| c.kind == OutputKind::Stdout).count() > 1 {
        problems.push("outputs: stdout is listed more than once".into());
    }
    if !problems.is_empty() {
        bail!("{}: {}", path.display(), problems.join("\n  "));
    }
    Ok(())
}

impl FileConfig {
    /// Puts the file's values into `args` where the command line did not give the flag
    /// (`given(id)`: the flag's clap id, its field name, came from the command line or its
    /// environment variable).
    pub fn apply(&self, args: &mut RunArgs, given: &dyn Fn(&str) -> bool) {
        macro_rules! take {
            ($($field:ident),* $(,)?) => {$(
                if let Some(value) = &self.$field {
                    if !given(stringify!($field)) {
                        args.$field = value.clone();
                    }
                }
            )*};
        }
        macro_rules! take_shaping {
            ($($field:ident),* $(,)?) => {$(
                if let Some(value) = &self.$field {
                    if !given(stringify!($field)) {
                        args.shaping.$field = value.clone();
                    }
                }
            )*};
        }
        take!(
            emit_forks,
            ancestors_depth,
            ring_buffer_mb,
            args_max,
            keep_env,
            stats_interval,
            policy,
            no_default_policy,
            alerts_only,
            keep_enforcing,
            strict,
            protect_self,
            allow_control,
            allow_degraded,
            container_runtime,
            no_net,
            no_dns,
            no_file_sensor,
            watch,
            watch_name,
            no_builtin_watch,
            api_socket,
            no_api,
            api_client_queue,
        );
        take_shaping!(
            incident_window,
            incident_update,
            dedup_window,
            alert_limit,
            no_shaping
        );
        if let (Some(a), false) = (self.metrics, given("metrics")) {
            args.metrics = Some(a);
        }
        if let (Some(d), false) = (self.duration, given("duration")) {
            args.duration = Some(d);
        }
        if let (Some(p), false) = (&self.net_config, given("net_config")) {
            args.net_config = Some(p.clone());
        }
        if let (Some(h), false) = (self.file_hooks, given("file_hooks")) {
            args.file_hooks = match h {
                FileHooks::Auto => FileHooksArg::Auto,
                FileHooks::Lsm => FileHooksArg::Lsm,
                FileHooks::Tracepoint => FileHooksArg::Tracepoint,
                FileHooks::RawTracepoint => FileHooksArg::RawTracepoint,
            };
        }
        // stdout's format: --output, else the stdout output's `format`, else `output:`.
        if !given("output") {
            let stdout = self
                .outputs
                .iter()
                .flatten()
                .find(|o| o.kind == OutputKind::Stdout)
                .map(|o| o.format);
            if let Some(format) = stdout.or(self.output) {
                args.output = match format {
                    Format::Json => OutputFormat::Json,
                    Format::Compact => OutputFormat::Compact,
                };
            }
        }
    }
}

/// `shrike config validate [PATH]`: the report and whether the file is valid.
pub fn validate(path: Option<&Path>) -> (String, bool) {
    let path = path.unwrap_or(Path::new(DEFAULT_PATH));
    let checked = load(Some(path)).and_then(|loaded| {
        let Some((_, file)) = loaded else {
            return Ok(0);
        };
        // The flags' own checks (sizes, rates, watch paths, the network configuration).
        let mut args = RunArgs::defaults();
        file.apply(&mut args, &|_| false);
        args.config()
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
        // The destinations' own settings (addresses, URLs, TLS files), for the outputs whose
        // transport is built without touching the destination.
        let list = file.outputs.as_deref().unwrap_or_default();
        let names = outputs::names(list)?;
        for (config, name) in list.iter().zip(&names) {
            if matches!(
                config.kind,
                OutputKind::Syslog
                    | OutputKind::Webhook
                    | OutputKind::Loki
                    | OutputKind::Nats
                    | OutputKind::Otlp
            ) {
                outputs::build_transport(config)
                    .map_err(|e| anyhow::anyhow!("{}: output {name:?}: {e:#}", path.display()))?;
            }
        }
        Ok(list.len())
    });
    match checked {
        Ok(n) => (
            format!(
                "{}: valid ({n} output{})\n",
                path.display(),
                if n == 1 { "" } else { "s" }
            ),
            true,
        ),
        Err(err) => (format!("{err:#}\n"), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        parse(Path::new("c.yaml"), text).unwrap_err()
    }

    /// A misspelt key is refused at its line and column with the key it was meant to be.
    #[test]
    fn an_unknown_key_is_reported_at_its_position_with_a_suggestion() {
        let e = err("emit_forks: true\nring_bufer_mb: 32\n");
        assert_eq!(e.position, Some((2, 1)), "{e}");
        assert!(e.message.contains("ring_bufer_mb"), "{e}");
        assert!(
            e.to_string().contains("did you mean `ring_buffer_mb`?"),
            "{e}"
        );
        assert!(e.to_string().starts_with("c.yaml:2:1: "), "{e}");
    }

    /// Inside an output, a wrong type name or key is found at its place too.
    #[test]
    fn an_output_error_has_its_position() {
        let e = err("outputs:\n  - type: webhok\n    url: http://x\n");
        assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
        assert!(e.to_string().contains("did you mean `webhook`?"), "{e}");
        let e = err("outputs:\n  - type: file\n    path: /x\n    max_bytse: 5\n");
        assert_eq!(e.position.map(|p| p.0), Some(4), "{e}");
        assert!(e.to_string().contains("did you mean `max_bytes`?"), "{e}");
        let e = err("ring_buffer_mb: lots\n");
        assert_eq!(e.position, Some((1, 17)), "{e}");
    }

    /// The nats stream settings are nats settings, and they shape only a stream shrike
    /// creates: with `create_stream: false` each is refused by name.
    #[test]
    fn nats_stream_settings_are_checked_against_create_stream() {
        let path = Path::new("c.yaml");
        let nats = "outputs:\n  - type: nats\n    address: nats://127.0.0.1:4222\n";
        let ok = parse(
            path,
            &format!("{nats}    max_bytes: 1048576\n    max_age_secs: 60\n    duplicate_window_secs: 5\n"),
        )
        .unwrap();
        check_outputs(path, &ok).unwrap();
        let refused = parse(
            path,
            &format!("{nats}    create_stream: false\n    max_bytes: 1048576\n    duplicate_window_secs: 5\n"),
        )
        .unwrap();
        let e = check_outputs(path, &refused).unwrap_err().to_string();
        assert!(
            e.contains("outputs[0] (nats): `max_bytes` shapes the stream"),
            "{e}"
        );
        assert!(
            e.contains("`duplicate_window_secs` shapes the stream"),
            "{e}"
        );
        assert!(!e.contains("max_age_secs"), "{e}");
        let webhook = parse(
            path,
            "outputs:\n  - type: webhook\n    url: http://127.0.0.1:1/\n    duplicate_window_secs: 5\n",
        )
        .unwrap();
        let e = check_outputs(path, &webhook).unwrap_err().to_string();
        assert!(
            e.contains("`duplicate_window_secs` is not a webhook setting (it is for: nats)"),
            "{e}"
        );
        let zero = parse(path, &format!("{nats}    duplicate_window_secs: 0\n")).unwrap();
        let e = check_outputs(path, &zero).unwrap_err().to_string();
        assert!(
            e.contains("`duplicate_window_secs` must be at least 1"),
            "{e}"
        );
    }

    /// A file of comments alone (the shipped example) is the built-in defaults.
    #[test]
    fn a_commented_out_file_is_the_defaults() {
        let f = parse(Path::new("c"), "# nothing\n\n# at all\n").unwrap();
        assert!(f.outputs.is_none() && f.ring_buffer_mb.is_none());
    }

    /// The repository's example configuration parses and its outputs pass their checks.
    #[test]
    fn the_example_configuration_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/etc/shrike.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        // Uncomment every example setting ("# key: …"; prose is "## …"), to check the
        // examples themselves, not only the all-comments file.
        let uncommented: String = text
            .lines()
            .filter(|l| !l.starts_with("##"))
            .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
            .map(|l| format!("{l}\n"))
            .collect();
        let file = parse(&path, &uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        check_outputs(&path, &file).unwrap();
        assert!(file.outputs.as_ref().is_some_and(|o| o.len() >= 4));
    }
}
