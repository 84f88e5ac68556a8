//! A development driver for the policy library, until the `shrike` binary wires it:
//!
//! ```text
//! cargo run -p shrike-rules --example policy -- validate FILE…
//! cargo run -p shrike-rules --example policy -- list [FILE…]        (default pack when none)
//! cargo run -p shrike-rules --example policy -- explain [FILE…]
//! cargo run -p shrike-rules --example policy -- plan [FILE…]        (KernelPlan as JSON)
//! cargo run -p shrike-rules --example policy -- test EVENTS.jsonl [FILE…]
//! cargo run -p shrike-rules --example policy -- fields | pack-table
//! ```

use std::process::ExitCode;

use shrike_rules::{text, Policy};

fn policy(files: &[String]) -> Result<Policy, ExitCode> {
    let p = if files.is_empty() {
        Policy::default_pack()
    } else {
        Policy::load(files)
    };
    p.map_err(|d| {
        eprint!("{}", text::render_diagnostics(&d));
        ExitCode::FAILURE
    })
}

fn run(args: &[String]) -> Result<(), ExitCode> {
    let (cmd, rest) = args.split_first().ok_or(ExitCode::from(2))?;
    match cmd.as_str() {
        "validate" => match text::validate(rest) {
            Ok(s) => print!("{}", text::render_summary(&s)),
            Err(d) => {
                eprint!("{}", text::render_diagnostics(&d));
                return Err(ExitCode::FAILURE);
            }
        },
        "list" => print!("{}", text::list(&policy(rest)?)),
        "explain" => print!("{}", text::explain(&policy(rest)?)),
        "plan" => println!("{}", policy(rest)?.kernel_plan().to_json()),
        "fields" => print!("{}", text::fields_markdown()),
        "pack-table" => print!("{}", text::rules_markdown(&policy(&[])?)),
        "test" => {
            let (events, files) = rest.split_first().ok_or(ExitCode::from(2))?;
            let reader = std::fs::File::open(events).map_err(|e| {
                eprintln!("{events}: {e}");
                ExitCode::FAILURE
            })?;
            match text::test(files, std::io::BufReader::new(reader)) {
                Ok(r) => print!("{}", r.text),
                Err(e) => {
                    eprintln!("{e}");
                    return Err(ExitCode::FAILURE);
                }
            }
        }
        _ => return Err(ExitCode::from(2)),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => {
            if code == ExitCode::from(2) {
                eprintln!("usage: policy validate|list|explain|plan|test|fields|pack-table …");
            }
            code
        }
    }
}
