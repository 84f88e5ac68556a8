//! The YAML layout of a policy file: a list of `- rule:`, `- list:` and `- macro:` items, read
//! from the positioned YAML tree into declarations, with every layout mistake reported at its
//! key or value (unknown keys get the nearest valid key as a suggestion).
//!
//! ```yaml
//! - list: shells
//!   items: [sh, bash, dash]
//! - macro: spawned_shell
//!   condition: kind = process_exec and process.name in (shells)
//! - rule: Shell spawned by a web server
//!   id: SHR-EXEC-006
//!   description: …
//!   severity: high                 # info | low | medium | high | critical
//!   mitre: [T1505.003, T1059.004]
//!   condition: spawned_shell and parent.name in (web_servers)
//!   exceptions:                    # optional; any one that matches suppresses the rule
//!     - process.args contains healthcheck
//!     - name: monitoring probes    # or a named form
//!       condition: ancestors.name = monit
//!   action: alert                  # alert | deny | kill (default alert)
//!   mode: enforce                  # enforce | audit (default enforce)
//!   enabled: true                  # default true
//!   tags: [web]                    # optional, free text
//!   throttle: 10/min               # optional: at most N alerts per s|min|h (reporting only)
//! ```
//! A list may say `append: true` to add items to a list of the same name from an earlier file.
//!
//! **Overrides** change an earlier rule, list or macro without copying it (Falco's `override`):
//!
//! ```yaml
//! - rule: SHR-PERS-001             # a rule's name or id (or give `id:`)
//!   enabled: false                 # shorthand: only `enabled` changes
//! - rule: Cron job created or modified
//!   condition: and not process.binary = /opt/acme/bin/agent
//!   exceptions:
//!     - ancestors.binary = /opt/acme/bin/deployer
//!   override:
//!     condition: append            # `and …` / `or …` added to the condition
//!     exceptions: append           # or replace
//! - list: package_manager_binaries
//!   items: [/opt/acme/bin/installer]
//!   override:
//!     items: append                # or replace
//! - macro: package_management
//!   condition: or process.binary = /opt/acme/bin/installer
//!   override:
//!     condition: append            # or replace
//! ```
//! A rule override may also replace `severity`, `action`, `mode`, `enabled`, `description`,
//! `rate` and `throttle`, and append to or replace `tags` and `mitre`. `append: true` on a rule
//! or macro is the older spelling of appending its condition (and a rule's exceptions).
//!
//! This file holds the declarations the reader produces, the keys each item may have and the
//! dispatch of one item; `scalars` reads typed values, `rule` rules with their rates and
//! exceptions, `list_macro` lists and macros, and `overrides` `override:` items.

mod list_macro;
mod overrides;
mod rule;
mod scalars;

use crate::diag::{Diags, Loc};
use crate::meta::{Action, Mode, Severity};
use crate::rate::Rate;
use crate::suggest;
use crate::yaml::{Node, NodeValue};

/// A scalar value and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    pub value: String,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub(crate) struct RuleDecl {
    pub name: Text,
    pub id: Text,
    pub description: String,
    pub severity: Severity,
    pub mitre: Vec<String>,
    pub condition: Text,
    /// Conditions later overrides appended: `(true, …)` joins with `and`, `(false, …)` with `or`.
    /// The text starts with that keyword (see [`blank_lead`]).
    pub appended: Vec<(bool, Text)>,
    pub exceptions: Vec<Text>,
    pub action: Action,
    pub mode: Mode,
    pub enabled: bool,
    pub tags: Vec<String>,
    /// `throttle: N/min`: at most that many of the rule's alerts are reported per window.
    pub throttle: Option<Rate>,
    /// `rate:`, when the rule alerts on a rate of matches (`counting.rs`).
    pub rate: Option<RateDecl>,
    /// False when the metadata had errors (already reported); the condition is still checked.
    pub valid: bool,
}

/// A rule's `rate:` as written; the fields are resolved by the compiler.
#[derive(Debug, Clone)]
pub(crate) struct RateDecl {
    pub count: u32,
    pub within_secs: u64,
    pub by: Vec<Text>,
    pub distinct: Vec<Text>,
    /// Where `rate:` is written.
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub(crate) struct ListDecl {
    pub name: Text,
    pub items: Vec<Text>,
    /// `None`: a new list; otherwise how it changes the earlier list of that name.
    pub merge: Option<Merge>,
}

#[derive(Debug, Clone)]
pub(crate) struct MacroDecl {
    pub name: Text,
    /// For [`Merge::Append`], the appended part, starting with `and`/`or` (see [`blank_lead`]).
    pub condition: Text,
    /// `None`: a new macro; otherwise how it changes the earlier macro of that name.
    pub merge: Option<Merge>,
    /// For an append: true for `and`, false for `or`.
    pub and: bool,
}

/// How an override changes one key of an earlier definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    Append,
    Replace,
}

/// A change to an earlier rule (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct RuleOverride {
    /// The value of `rule:`: the target's name, or its id.
    pub target: Text,
    /// `id:`, which identifies the target when given.
    pub id: Option<Text>,
    pub condition: Option<(Merge, bool, Text)>,
    pub exceptions: Option<(Merge, Vec<Text>)>,
    pub description: Option<String>,
    pub severity: Option<Severity>,
    pub mitre: Option<(Merge, Vec<String>)>,
    pub action: Option<Action>,
    pub mode: Option<Mode>,
    pub enabled: Option<bool>,
    pub tags: Option<(Merge, Vec<String>)>,
    pub rate: Option<RateDecl>,
    pub throttle: Option<Rate>,
}

#[derive(Debug, Clone)]
pub(crate) enum Item {
    Rule(Box<RuleDecl>),
    RuleOverride(Box<RuleOverride>),
    List(ListDecl),
    Macro(MacroDecl),
}

const RULE_KEYS: &[&str] = &[
    "rule",
    "id",
    "description",
    "severity",
    "mitre",
    "condition",
    "exceptions",
    "action",
    "mode",
    "enabled",
    "tags",
    "throttle",
    "rate",
    "override",
    "append",
];
const RATE_KEYS: &[&str] = &["count", "within", "by", "distinct"];
const LIST_KEYS: &[&str] = &["list", "items", "append", "override"];
const MACRO_KEYS: &[&str] = &["macro", "condition", "append", "override"];

const EXCEPTION_KEYS: &[&str] = &["name", "condition"];

/// An appended condition with its leading `and`/`or` replaced by blanks: the same length, so
/// offsets into it are offsets into the text as written (and map to its file).
pub(crate) fn blank_lead(text: &str) -> String {
    let trimmed = text.trim_start();
    let lead = text.len() - trimmed.len();
    let word = if trimmed.starts_with("and") {
        3
    } else if trimmed.starts_with("or") {
        2
    } else {
        0
    };
    let mut out = text.to_string();
    out.replace_range(lead..lead + word, &" ".repeat(word));
    out
}

struct Reader<'d, 's> {
    file: usize,
    diags: &'d mut Diags<'s>,
}

/// Reads every item of one file's documents.
pub(crate) fn read(file: usize, docs: &[Node], diags: &mut Diags<'_>) -> Vec<Item> {
    let mut r = Reader { file, diags };
    let mut items = Vec::new();
    for doc in docs {
        match &doc.value {
            NodeValue::Seq(entries) => {
                for entry in entries {
                    if let Some(item) = r.item(entry) {
                        items.push(item);
                    }
                }
            }
            _ if doc.is_null() => {}
            _ => r.error(
                doc,
                format!(
                    "a policy file must be a list of items, found {}",
                    doc.describe()
                ),
                Some("start each item with `- rule:`, `- list:` or `- macro:`".into()),
            ),
        }
    }
    items
}

impl Reader<'_, '_> {
    fn item(&mut self, node: &Node) -> Option<Item> {
        let NodeValue::Map(entries) = &node.value else {
            self.error(
                node,
                format!("expected a rule, list or macro, found {}", node.describe()),
                Some("start the item with `- rule:`, `- list:` or `- macro:`".into()),
            );
            return None;
        };
        let heads: Vec<&str> = entries
            .iter()
            .filter_map(|(k, _)| k.as_scalar())
            .filter(|k| matches!(*k, "rule" | "list" | "macro"))
            .collect();
        let has = |key: &str| entries.iter().any(|(k, _)| k.as_scalar() == Some(key));
        match heads.as_slice() {
            ["rule"]
                if has("override") || has("append") || (has("enabled") && !has("condition")) =>
            {
                self.rule_override(node)
                    .map(|o| Item::RuleOverride(Box::new(o)))
            }
            ["rule"] => self.rule(node).map(|r| Item::Rule(Box::new(r))),
            ["list"] => self.list(node).map(Item::List),
            ["macro"] => self.macro_(node).map(Item::Macro),
            [] => {
                let first = entries
                    .first()
                    .and_then(|(k, _)| k.as_scalar())
                    .unwrap_or_default();
                let hint = suggest::hint(first, ["rule", "list", "macro"]).unwrap_or_else(|| {
                    "start the item with `- rule:`, `- list:` or `- macro:`".into()
                });
                self.error(node, "item is not a rule, list or macro".into(), Some(hint));
                None
            }
            _ => {
                self.error(
                    node,
                    format!(
                        "item has more than one of rule/list/macro ({})",
                        heads.join(", ")
                    ),
                    Some("split it into separate items".into()),
                );
                None
            }
        }
    }
}
