//! The configuration file as `shrike run` reads it (no BPF: only the command line and the
//! file are resolved into a `RunConfig`), and `shrike config validate` as a user runs it.

use std::path::Path;
use std::process::Command;

use clap::{CommandFactory, FromArgMatches};
use shrike::cli::{Cli, Command as Sub};
use shrike::outputs::{OutputKind, Select};
use shrike::RunConfig;

fn resolve(argv: &[&str]) -> anyhow::Result<RunConfig> {
    let matches = Cli::command().try_get_matches_from(argv)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let Sub::Run(args) = cli.command else {
        panic!("not run")
    };
    args.resolve(matches.subcommand().map(|(_, m)| m))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The file sets what the flags would; a flag given on the command line wins over the file;
/// `outputs:` splits into stdout's selection and the other outputs.
#[test]
fn the_file_sets_run_options_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "shrike.yaml",
        "ring_buffer_mb: 32\nargs_max: 1024\nno_net: true\nstrict: true\ndedup_window: 5\nkeep_env: [FOO]\noutputs:\n  - type: stdout\n    select: {events: alerts}\n  - type: file\n    path: /tmp/x.json\n",
    );
    let c = resolve(&["shrike", "run", "--config", &path]).unwrap();
    assert_eq!(c.sensors.ring_buffer_bytes, 32 << 20);
    assert_eq!(c.sensors.args_max, 1024);
    assert!(c.sensors.net.is_none());
    assert!(c.strict, "strict: true in the file is --strict");
    assert_eq!(c.shaping.dedup_window.as_secs(), 5);
    assert_eq!(c.pipeline.keep_env, ["FOO"]);
    assert_eq!(
        c.stdout.as_ref().map(|s| s.events),
        Some(shrike::outputs::config::Selection::Alerts)
    );
    assert_eq!(c.outputs.len(), 1);
    assert_eq!(c.outputs[0].kind, OutputKind::File);

    let c = resolve(&[
        "shrike",
        "run",
        "--config",
        &path,
        "--ring-buffer-mb",
        "64",
        "--dedup-window",
        "7",
    ])
    .unwrap();
    assert_eq!(c.sensors.ring_buffer_bytes, 64 << 20, "the flag wins");
    assert_eq!(c.shaping.dedup_window.as_secs(), 7, "the flag wins");
    assert_eq!(c.sensors.args_max, 1024, "the file still applies");
}

/// Outputs listed without stdout switch stdout off; no `outputs:` keeps stdout on with
/// everything.
#[test]
fn listing_outputs_without_stdout_turns_stdout_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.yaml",
        "outputs:\n  - type: webhook\n    url: http://127.0.0.1:9/x\n",
    );
    assert!(resolve(&["shrike", "run", "--config", &path])
        .unwrap()
        .stdout
        .is_none());
    let path = write(dir.path(), "b.yaml", "# only comments\n");
    let c = resolve(&["shrike", "run", "--config", &path]).unwrap();
    assert_eq!(c.stdout, Some(Select::default()));
    assert!(c.outputs.is_empty());
}

/// `--config` naming a missing file is an error that says so; a bad value in the file is
/// reported with the file's name and position.
#[test]
fn a_missing_or_broken_explicit_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = resolve(&["shrike", "run", "--config", missing.to_str().unwrap()]).unwrap_err();
    assert!(format!("{err:#}").contains("nope.yaml"), "{err:#}");
    let path = write(
        dir.path(),
        "bad.yaml",
        "emit_forks: true\nring_buffer_mb: 3\n",
    );
    let err = resolve(&["shrike", "run", "--config", &path]).unwrap_err();
    assert!(
        format!("{err:#}").contains("--ring-buffer-mb 3")
            && format!("{err:#}").contains("bad.yaml"),
        "{err:#}"
    );
}

/// `shrike config validate` prints file:line:col and a suggestion for a misspelt key, exits 1;
/// a settings mismatch (`url` on a file output) is named with its output, a syslog address with
/// an unknown scheme with the accepted ones; a valid file (a relp:// output, the example)
/// exits 0.
#[test]
fn config_validate_reports_positions_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let shrike = env!("CARGO_BIN_EXE_shrike");
    let bad = write(
        dir.path(),
        "bad.yaml",
        "outputs:\n  - type: syslog\n    adress: udp://127.0.0.1:514\n",
    );
    let out = Command::new(shrike)
        .args(["config", "validate", &bad])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with(&format!("{bad}:3:5: ")), "{text}");
    assert!(text.contains("did you mean `address`?"), "{text}");

    let mismatch = write(
        dir.path(),
        "mismatch.yaml",
        "outputs:\n  - type: file\n    name: f\n    path: /tmp/x\n    url: http://x\n",
    );
    let out = Command::new(shrike)
        .args(["config", "validate", &mismatch])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("outputs[0] (f): `url` is not a file setting"),
        "{text}"
    );

    // A syslog address is checked by scheme: relp:// is taken, an unknown one names the six.
    let relp = write(
        dir.path(),
        "relp.yaml",
        "outputs:\n  - type: syslog\n    address: relp://127.0.0.1:2514\n",
    );
    let out = Command::new(shrike)
        .args(["config", "validate", &relp])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let scheme = write(
        dir.path(),
        "scheme.yaml",
        "outputs:\n  - type: syslog\n    address: rfc3195://127.0.0.1:601\n",
    );
    let out = Command::new(shrike)
        .args(["config", "validate", &scheme])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the scheme must be unix, udp, tcp, tls, relp or relps"),
        "{text}"
    );

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/etc/shrike.yaml");
    let out = Command::new(shrike)
        .args(["config", "validate"])
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
