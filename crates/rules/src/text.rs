//! The text the `shrike policy` subcommands print: validate, test, list and explain. The binary
//! only parses arguments and prints these; everything a user reads is produced (and tested) here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::Path;

use shrike_event::Event;

use crate::diag::Diagnostic;
use crate::load::read_files;
use crate::policy::{KernelAction, Policy, Summary};
use crate::pushdown::{Dim, DimConstraint, Enforcement, ValueSet};

/// `shrike policy validate FILES…`: compiles the files on their own.
pub fn validate<P: AsRef<Path>>(paths: &[P]) -> Result<Summary, Vec<Diagnostic>> {
    Policy::load(paths).map(|p| p.summary())
}

/// Like [`validate`], with the default pack loaded first (for files that use its lists and
/// macros).
pub fn validate_with_default_pack<P: AsRef<Path>>(paths: &[P]) -> Result<Summary, Vec<Diagnostic>> {
    Policy::default_pack_with(paths).map(|p| p.summary())
}

/// One diagnostic per line, then a count: what `validate` prints on failure.
pub fn render_diagnostics(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let _ = writeln!(out, "{d}");
    }
    let _ = writeln!(
        out,
        "{} error{}",
        diags.len(),
        if diags.len() == 1 { "" } else { "s" }
    );
    out
}

/// What `validate` prints on success.
pub fn render_summary(s: &Summary) -> String {
    let kinds: Vec<&str> = s.kinds.iter().map(|k| k.as_str()).collect();
    format!(
        "ok: {} rules ({} enabled), {} lists, {} macros in {} file{}\nkinds: {}\nkernel: {} rule/kind entries decided in the kernel, {} with a user-space residual\n",
        s.rules,
        s.enabled,
        s.lists,
        s.macros,
        s.files.len(),
        if s.files.len() == 1 { "" } else { "s" },
        kinds.join(", "),
        s.kernel_exact,
        s.with_residual
    )
}

/// The result of replaying events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    /// One line per match, one per invalid input line, then a summary line.
    pub text: String,
    pub events: usize,
    pub matched_events: usize,
    pub matches: usize,
    /// Input lines that were not events (reported in `text`).
    pub invalid: usize,
}

/// Why `test` could not run.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("the policy does not compile:\n{}", render_diagnostics(.0))]
    Policy(Vec<Diagnostic>),
    #[error("cannot read events: {0}")]
    Read(#[from] std::io::Error),
}

/// `shrike policy test FILES… --events EVENTS.jsonl`: compiles the files (the default pack when
/// `paths` is empty) and replays the events through them.
pub fn test<P: AsRef<Path>>(paths: &[P], events: impl BufRead) -> Result<TestReport, TestError> {
    let policy = if paths.is_empty() {
        Policy::default_pack()
    } else {
        read_files(paths).and_then(Policy::compile)
    }
    .map_err(TestError::Policy)?;
    test_policy(&policy, events)
}

/// Replays `shrike_event::Event` JSON lines through `policy` and reports each match as
/// `line N: KIND pid=PID BINARY: RULE-ID [severity] name (mitre) action=… outcome=…`. Blank
/// lines are skipped; lines that are not events are reported and counted.
pub fn test_policy(policy: &Policy, mut events: impl BufRead) -> Result<TestReport, TestError> {
    let mut r = TestReport {
        text: String::new(),
        events: 0,
        matched_events: 0,
        matches: 0,
        invalid: 0,
    };
    let mut rates = crate::RateState::new();
    let mut matches = Vec::new();
    let mut raw = Vec::new();
    let mut n = 0;
    loop {
        raw.clear();
        if events.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        n += 1;
        let bytes = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        // A bad byte is one bad line, not the end of the replay.
        let line = match std::str::from_utf8(bytes) {
            Ok(line) => line,
            Err(e) => {
                r.invalid += 1;
                let _ = writeln!(
                    r.text,
                    "line {n}: not an event: not UTF-8 (byte 0x{:02x} at byte {})",
                    bytes[e.valid_up_to()],
                    e.valid_up_to() + 1
                );
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = match serde_json::from_str(line) {
            Ok(e) => e,
            Err(e) => {
                r.invalid += 1;
                let _ = writeln!(
                    r.text,
                    "line {n}: not an event: {}",
                    shrike_event::text::escape_controls(&e.to_string())
                );
                continue;
            }
        };
        r.events += 1;
        matches.clear();
        policy.evaluate_with(&event, &mut rates, &mut matches);
        if !matches.is_empty() {
            r.matched_events += 1;
        }
        for m in &matches {
            r.matches += 1;
            let _ = writeln!(
                r.text,
                "line {n}: {} pid={} {}: {} [{}] {} ({}) action={} outcome={}",
                event.kind,
                event.process.pid,
                shrike_event::text::escape_controls(&event.process.binary),
                m.rule_id,
                m.severity,
                m.rule,
                m.mitre.join(", "),
                m.action,
                m.outcome(KernelAction::Nothing)
            );
        }
    }
    let _ = writeln!(
        r.text,
        "{} events, {} matched, {} matches, {} invalid lines",
        r.events, r.matched_events, r.matches, r.invalid
    );
    Ok(r)
}

/// `shrike policy list`: one line per rule.
pub fn list(policy: &Policy) -> String {
    let rows: Vec<[String; 7]> = policy
        .rules()
        .map(|r| {
            [
                r.id.clone(),
                r.severity.to_string(),
                r.action.to_string(),
                if r.enabled {
                    r.mode.to_string()
                } else {
                    "disabled".into()
                },
                r.mitre.join(","),
                r.index.to_string(),
                r.name.clone(),
            ]
        })
        .collect();
    let header = ["ID", "SEVERITY", "ACTION", "MODE", "MITRE", "INDEX", "NAME"].map(String::from);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn dim_label(dim: Dim) -> &'static str {
    match dim {
        Dim::Path => "file.path",
        Dim::NewPath => "file.new_path",
        Dim::Binary => "process.binary",
        Dim::Script => "process.script",
        Dim::ParentBinary => "parent.binary",
        Dim::Ancestors => "ancestors.binary",
        Dim::Access => "file.access",
        Dim::Setid => "file.mode",
        Dim::Uid => "process.uid",
        Dim::Euid => "process.euid",
        Dim::CgroupId => "process.cgroup_id",
        Dim::TargetBinary => "ptrace.target_binary",
        Dim::Dport => "network.dport",
        Dim::Sport => "network.sport",
        Dim::Daddr => "network.daddr",
        Dim::Saddr => "network.saddr",
    }
}

/// `{a, b*, */c}`: exact values, prefixes with `*`, base names with `*/`.
pub fn render_set(set: &ValueSet) -> String {
    let items: Vec<String> = match set {
        ValueSet::Paths(p) => p
            .exact
            .iter()
            .cloned()
            .chain(p.prefixes.iter().map(|x| format!("{x}*")))
            .chain(p.names.iter().map(|x| format!("*/{x}")))
            .collect(),
        ValueSet::Numbers(n) => n.iter().map(i64::to_string).collect(),
        ValueSet::Networks(n) => n.iter().map(ToString::to_string).collect(),
    };
    format!("{{{}}}", items.join(", "))
}

fn render_constraint(dim: Dim, c: &DimConstraint) -> Vec<String> {
    let mut out = Vec::new();
    let label = dim_label(dim);
    if let Some(inc) = &c.include {
        out.push(match dim {
            Dim::Ancestors => format!("some ancestor in {}", render_set(inc)),
            Dim::Access | Dim::Setid => format!("{label} has one of {}", render_set(inc)),
            _ => format!("{label} in {}", render_set(inc)),
        });
    }
    if let Some(exc) = &c.exclude {
        out.push(match dim {
            Dim::Ancestors => format!("no ancestor in {}", render_set(exc)),
            Dim::Access | Dim::Setid => format!("{label} has none of {}", render_set(exc)),
            _ => format!("{label} not in {}", render_set(exc)),
        });
    }
    out
}

/// `shrike policy explain`: per rule and kind, what the kernel decides and what user space
/// still checks; then the per-kind first-stage filters.
pub fn explain(policy: &Policy) -> String {
    let plan = policy.kernel_plan();
    let mut out = String::new();
    for rule in policy.rules() {
        let _ = writeln!(
            out,
            "{} #{} {} [{}, {}, {}]",
            rule.id, rule.index, rule.name, rule.severity, rule.action, rule.mode
        );
        if let Some(rate) = rule.throttle {
            let _ = writeln!(
                out,
                "  throttle:    {rate} alerts reported, the rest counted as suppressed"
            );
        }
        if !rule.enabled {
            let _ = writeln!(out, "  disabled: nothing is loaded\n");
            continue;
        }
        if let Some(rate) = &rule.rate {
            let _ = writeln!(out, "  rate:        {rate} (counted in user space)");
        }
        let Some(rp) = plan.rules.iter().find(|r| r.index == rule.index) else {
            continue;
        };
        for entry in &rp.entries {
            let _ = writeln!(out, "  {}:", entry.kind);
            let kernel: Vec<String> = entry
                .constraints
                .iter()
                .flat_map(|(d, c)| render_constraint(*d, c))
                .collect();
            let kernel = if kernel.is_empty() {
                "kind only".to_string()
            } else {
                kernel.join(" and ")
            };
            let _ = writeln!(out, "    kernel:      {kernel}");
            let _ = writeln!(
                out,
                "    user space:  {}",
                entry
                    .residual
                    .as_deref()
                    .unwrap_or("nothing (decided in the kernel)")
            );
            if let Some(w) = &entry.workload {
                let _ = writeln!(
                    out,
                    "    workload:    {w} (in the kernel: the cgroup ids of the containers it covers, kept current as they come and go)"
                );
            }
            let enforce = match &entry.enforcement {
                Enforcement::None => None,
                Enforcement::Kernel => Some(format!("in the kernel ({})", rule.action)),
                Enforcement::KernelAudit => Some("in the kernel, audit only (would_deny)".into()),
                Enforcement::UserSpace { reason } => {
                    Some(format!("not enforced: {reason}; reported as alerted"))
                }
            };
            if let Some(e) = enforce {
                let _ = writeln!(out, "    enforcement: {e}");
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "first-stage kernel filters:");
    for kp in &plan.kinds {
        let rules = kp.rules.len();
        if kp.pass_all {
            let _ = writeln!(
                out,
                "  {}: every event ({})",
                kp.kind,
                plural(rules, "rule")
            );
            continue;
        }
        let sets: BTreeMap<&str, String> = kp
            .interest
            .iter()
            .map(|(d, s)| (dim_label(*d), render_set(s)))
            .collect();
        let parts: Vec<String> = sets.iter().map(|(d, s)| format!("{d} in {s}")).collect();
        let _ = writeln!(
            out,
            "  {}: only {} ({})",
            kp.kind,
            parts.join(" or "),
            plural(rules, "rule")
        );
    }
    out
}

fn kinds_label(kinds: crate::kinds::KindSet) -> String {
    use crate::kinds::{KindSet, FILE, NET, PROCESS, SYSCALL};
    if kinds == KindSet::ALL {
        "all".into()
    } else if kinds == PROCESS {
        "all but the agent's own events".into()
    } else if kinds == FILE {
        "file_*".into()
    } else if kinds == NET {
        "net_*".into()
    } else if kinds == SYSCALL {
        "file_*, net_*, module_load, bpf_load, ptrace, cred_change, mount, umount, namespace_change, memfd_create, socket_create, signal".into()
    } else {
        kinds.to_string()
    }
}

/// The field table as Markdown (`| field | type | kinds |`), generated from
/// [`crate::fields::FIELDS`] so the documentation cannot drift from the code.
pub fn fields_markdown() -> String {
    let mut out = String::from("| field | type | kinds |\n|---|---|---|\n");
    for f in crate::fields::FIELDS {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            f.name,
            f.ty.describe(),
            kinds_label(f.kinds)
        );
    }
    let _ = writeln!(
        out,
        "| `process.env.<NAME>` | string | {} |",
        kinds_label(crate::kinds::PROCESS)
    );
    for of in [
        crate::fields::LabelOf::Container,
        crate::fields::LabelOf::Pod,
    ] {
        let _ = writeln!(
            out,
            "| `{}<KEY>` | string | {} |",
            of.prefix(),
            kinds_label(crate::kinds::PROCESS)
        );
    }
    out
}

/// A policy's rules as Markdown (`| id | severity | mitre | kinds | name |`).
pub fn rules_markdown(policy: &Policy) -> String {
    let mut out =
        String::from("| id | severity | ATT&CK | kinds | rule |\n|---|---|---|---|---|\n");
    for r in policy.rules() {
        let kinds: Vec<&str> = r.kinds.iter().map(|k| k.as_str()).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.id,
            r.severity,
            r.mitre.join(", "),
            kinds.join(", "),
            r.name
        );
    }
    out
}
