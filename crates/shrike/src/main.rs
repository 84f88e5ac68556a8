//! The `shrike` binary: parse the command line, set up logging, run the command, and turn the
//! outcome into an exit code (0 success, 1 failure, 2 bad command line — see `--help`).

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use shrike::cli::{Cli, Command, ConfigCommand, PolicyCommand};
use shrike::{doctor, package_docs, policy_cmd, Shutdown};
use shrike_event::text::escape_controls_keep_lines;

fn main() -> ExitCode {
    // `shrike __package-docs DIR` writes the man pages and completions for `./dev package`. It
    // is kept out of `Cli` so that the pages and completions made from `Cli` cannot show it.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == "__package-docs") {
        return match args.next() {
            Some(dir) => match package_docs::generate(std::path::Path::new(&dir)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    let text = format!("{err:#}");
                    eprintln!("shrike: error: {}", escape_controls_keep_lines(&text));
                    ExitCode::FAILURE
                }
            },
            None => {
                eprintln!("usage: shrike __package-docs DIR");
                ExitCode::from(2)
            }
        };
    }
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    init_logging(&cli.log_level);
    // Which flags the command line gave: they override the configuration file.
    let sub = matches.subcommand().map(|(_, m)| m);
    match execute(cli.command, sub) {
        Ok(code) => code,
        Err(err) => {
            let text = format!("{err:#}");
            eprintln!("shrike: error: {}", escape_controls_keep_lines(&text));
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command, sub: Option<&clap::ArgMatches>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => {
            let config = args.resolve(sub)?;
            let shutdown = Shutdown::on_signals()?;
            shrike::run(&config, std::io::stdout(), shutdown)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor(args) => {
            let config = args.resolve(sub)?;
            let report = shrike_bpf::probe::probe_kernel();
            let (text, ok) = doctor::run(&report, &config);
            print!("{text}");
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Learn(args) => shrike::learn::run(&args),
        Command::Events(args) => shrike::api::client::events(&args),
        Command::Ps(args) => shrike::api::client::ps(&args),
        Command::Status(args) => shrike::api::client::status(&args),
        Command::Config(ConfigCommand::Validate { path }) => {
            let (text, ok) = shrike::config_file::validate(path.as_deref());
            print!("{text}");
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Policy(PolicyCommand::Validate(args)) => Ok(policy_cmd::validate(&args.source())),
        Command::Policy(PolicyCommand::Test { policy, events }) => {
            policy_cmd::test(&policy.source(), &events)
        }
        Command::Policy(PolicyCommand::List(args)) => Ok(policy_cmd::list(&args.source())),
        Command::Policy(PolicyCommand::Explain { policy, json }) => {
            Ok(policy_cmd::explain(&policy.source(), json))
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // No colours: every character a terminal acts on is escaped on the way out (log records
    // carry paths, rule ids and errors that came from files and events), colour codes included.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| SafeStderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}

/// Standard error with control characters escaped ([`escape_controls_keep_lines`]): a log record
/// is one `write` of whole lines, so line feeds and tabs are kept and everything else a terminal
/// would act on is written as `\u001b`, `\r`, `\u202e`, ….
struct SafeStderr;

impl Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(escape_controls_keep_lines(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
