//! `shrike policy validate|test|list|explain`: the policy author's tools. The text they print is
//! made by `shrike_rules::text`; this module reads files and arguments and picks exit codes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use shrike_event::text::escape_controls_keep_lines as safe;
use shrike_rules::text;

use crate::policy_source::PolicySource;

/// `validate`: compile and report. Exit 1 with `file:line:col` diagnostics on errors.
pub fn validate(source: &PolicySource) -> ExitCode {
    match source.compile() {
        Ok(policy) => {
            print!("{}", safe(&text::render_summary(&policy.summary())));
            ExitCode::SUCCESS
        }
        Err(diags) => {
            eprint!("{}", text::render_diagnostics(&diags));
            ExitCode::FAILURE
        }
    }
}

/// `test`: replay recorded events (JSON lines; `-` is stdin) and print the matches. Exit 1 when
/// the policy does not compile or an input line is not an event.
pub fn test(source: &PolicySource, events: &PathBuf) -> Result<ExitCode> {
    let policy = match source.compile() {
        Ok(p) => p,
        Err(diags) => {
            eprint!("{}", text::render_diagnostics(&diags));
            return Ok(ExitCode::FAILURE);
        }
    };
    let reader: Box<dyn BufRead> = if events.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(events).with_context(|| format!("opening {}", events.display()))?,
        ))
    };
    let report = text::test_policy(&policy, reader)?;
    print!("{}", safe(&report.text));
    Ok(if report.invalid > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `list`: the rules of the policy, one per line.
pub fn list(source: &PolicySource) -> ExitCode {
    with_policy(source, |p| print!("{}", safe(&text::list(p))))
}

/// `explain`: per rule, what is decided in the kernel and what stays in user space.
pub fn explain(source: &PolicySource, json: bool) -> ExitCode {
    with_policy(source, |p| {
        if json {
            match serde_json::to_string_pretty(p.kernel_plan()) {
                Ok(text) => println!("{text}"),
                Err(err) => eprintln!("shrike: error: {err}"),
            }
        } else {
            print!("{}", safe(&text::explain(p)));
            let not_held = crate::enforcement::not_held(p.kernel_plan());
            if !not_held.is_empty() {
                println!("Not held by the kernel as written (enforce mode reports alerted, audit mode would_deny, from user space):");
                for (id, reason) in not_held {
                    println!("  {id}: {}", safe(&reason));
                }
            }
        }
    })
}

fn with_policy(source: &PolicySource, f: impl FnOnce(&shrike_rules::Policy)) -> ExitCode {
    match source.compile() {
        Ok(policy) => {
            f(&policy);
            ExitCode::SUCCESS
        }
        Err(diags) => {
            eprint!("{}", text::render_diagnostics(&diags));
            ExitCode::FAILURE
        }
    }
}
