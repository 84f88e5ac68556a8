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
/// Keys a rule override may change, and whether each may be appended to.
const RULE_OVERRIDABLE: &[(&str, bool)] = &[
    ("condition", true),
    ("exceptions", true),
    ("tags", true),
    ("mitre", true),
    ("description", false),
    ("severity", false),
    ("action", false),
    ("mode", false),
    ("enabled", false),
    ("rate", false),
    ("throttle", false),
];
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

/// True for a name usable for a list or macro: a letter or `_`, then letters, digits, `_`, `-`.
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `10s`, `2m`, `1h` or plain seconds.
fn parse_duration(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// True for an ATT&CK technique id: `T1234` or `T1234.567`.
pub(crate) fn valid_technique(id: &str) -> bool {
    let b = id.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b'T' && digits(&b[1..]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..]),
        _ => false,
    }
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
    fn loc(&self, node: &Node) -> Loc {
        Loc::new(self.file, node.at)
    }

    fn error(&mut self, node: &Node, message: String, hint: Option<String>) {
        let loc = self.loc(node);
        self.diags.error(loc, message, hint);
    }

    fn text(&mut self, node: &Node, what: &str) -> Option<Text> {
        match node.as_scalar() {
            Some(value) if !node.is_null() => Some(Text {
                value: value.to_string(),
                loc: self.loc(node),
            }),
            _ => {
                self.error(
                    node,
                    format!(
                        "{what} must be a non-empty text value, found {}",
                        if node.is_null() {
                            "nothing"
                        } else {
                            node.describe()
                        }
                    ),
                    None,
                );
                None
            }
        }
    }

    fn strings(&mut self, node: &Node, what: &str) -> Option<Vec<Text>> {
        match &node.value {
            NodeValue::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.push(self.text(item, &format!("each item of {what}"))?);
                }
                Some(out)
            }
            _ if node.is_null() => Some(Vec::new()),
            _ => {
                self.error(
                    node,
                    format!("{what} must be a list, found {}", node.describe()),
                    Some("write it as [a, b] or as lines starting with '- '".into()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.as_scalar() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => {
                self.error(node, format!("{what} must be true or false"), None);
                None
            }
        }
    }

    fn word<T>(
        &mut self,
        node: &Node,
        what: &str,
        parse: fn(&str) -> Option<T>,
        choices: String,
    ) -> Option<T> {
        let text = node.as_scalar().unwrap_or_default();
        match parse(text) {
            Some(v) => Some(v),
            None => {
                let valid: Vec<&str> = choices.split('|').collect();
                let hint = suggest::hint(text, valid.iter().copied())
                    .map(|h| format!("{h} one of {choices}"))
                    .unwrap_or_else(|| format!("use one of {choices}"));
                self.error(node, format!("invalid {what} '{text}'"), Some(hint));
                None
            }
        }
    }

    /// The entries of a mapping, with unknown and duplicate keys reported.
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        allowed: &[&str],
        what: &str,
    ) -> Vec<(&'n str, &'n Node, &'n Node)> {
        let NodeValue::Map(entries) = &node.value else {
            return Vec::new();
        };
        let mut out: Vec<(&str, &Node, &Node)> = Vec::new();
        for (k, v) in entries {
            let key = k.as_scalar().unwrap_or_default();
            if !allowed.contains(&key) {
                let hint = suggest::hint(key, allowed.iter().copied())
                    .unwrap_or_else(|| format!("valid keys: {}", allowed.join(", ")));
                self.error(k, format!("unknown key '{key}' in {what}"), Some(hint));
                continue;
            }
            if out.iter().any(|(seen, _, _)| *seen == key) {
                self.error(
                    k,
                    format!("duplicate key '{key}' in {what}"),
                    Some("keep only one".into()),
                );
                continue;
            }
            out.push((key, k, v));
        }
        out
    }

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

    fn rule(&mut self, node: &Node) -> Option<RuleDecl> {
        let entries = self.entries(node, RULE_KEYS, "a rule");
        let get = |key: &str| {
            entries
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, _, v)| *v)
        };
        let mut ok = true;
        let name = get("rule").and_then(|v| self.text(v, "the rule name"));
        let required = |key: &str, r: &mut Self| -> Option<&Node> {
            let v = get(key);
            if v.is_none() {
                r.error(
                    node,
                    format!("rule is missing '{key}'"),
                    Some(format!("add `{key}: …`")),
                );
            }
            v
        };
        let id_node = required("id", self);
        let cond_node = required("condition", self);
        let sev_node = required("severity", self);
        let id = id_node.and_then(|v| self.text(v, "id"));
        if let Some(id) = &id {
            if id.value.chars().any(char::is_whitespace) {
                self.diags.error(
                    id.loc,
                    format!("rule id '{}' contains blanks", id.value),
                    Some("use e.g. SHR-CRED-001".into()),
                );
                ok = false;
            }
        }
        let condition = cond_node.and_then(|v| self.text(v, "condition"));
        let severity =
            sev_node.and_then(|v| self.word(v, "severity", Severity::parse, Severity::choices()));
        let description = match get("description") {
            Some(v) => self
                .text(v, "description")
                .map(|t| t.value)
                .unwrap_or_default(),
            None => String::new(),
        };
        let mut mitre = Vec::new();
        if let Some(v) = get("mitre") {
            for t in self.strings(v, "mitre").unwrap_or_default() {
                if valid_technique(&t.value) {
                    mitre.push(t.value);
                } else {
                    self.diags.error(
                        t.loc,
                        format!("'{}' is not an ATT&CK technique id", t.value),
                        Some("write e.g. T1003 or T1003.008".into()),
                    );
                    ok = false;
                }
            }
        }
        let mut exceptions = Vec::new();
        if let Some(v) = get("exceptions") {
            match &v.value {
                NodeValue::Seq(items) => {
                    for item in items {
                        if let Some(t) = self.exception(item) {
                            exceptions.push(t);
                        } else {
                            ok = false;
                        }
                    }
                }
                _ if v.is_null() => {}
                _ => {
                    self.error(
                        v,
                        format!(
                            "exceptions must be a list of conditions, found {}",
                            v.describe()
                        ),
                        None,
                    );
                    ok = false;
                }
            }
        }
        let action = match get("action") {
            Some(v) => self.word(v, "action", Action::parse, Action::choices()),
            None => Some(Action::Alert),
        };
        let mode = match get("mode") {
            Some(v) => self.word(v, "mode", Mode::parse, Mode::choices()),
            None => Some(Mode::Enforce),
        };
        let enabled = match get("enabled") {
            Some(v) => self.boolean(v, "enabled"),
            None => Some(true),
        };
        let tags = match get("tags") {
            Some(v) => self
                .strings(v, "tags")
                .map(|t| t.into_iter().map(|t| t.value).collect()),
            None => Some(Vec::new()),
        };
        let throttle = match get("throttle") {
            Some(v) => self.rate(v, "throttle").map(Some),
            None => Some(None),
        };
        let rate = match get("rate") {
            Some(v) => self.rate_rule(v).map(Some),
            None => Some(None),
        };
        // A rule with bad metadata is still returned (marked invalid) so that its condition is
        // checked too and every mistake is reported in one run.
        let valid = ok
            && name.is_some()
            && id.is_some()
            && severity.is_some()
            && action.is_some()
            && mode.is_some()
            && enabled.is_some()
            && tags.is_some()
            && throttle.is_some()
            && rate.is_some();
        let placeholder = || Text {
            value: String::new(),
            loc: Loc::new(self.file, node.at),
        };
        Some(RuleDecl {
            name: name.unwrap_or_else(placeholder),
            id: id.unwrap_or_else(placeholder),
            description,
            severity: severity.unwrap_or(Severity::Info),
            mitre,
            condition: condition?,
            appended: Vec::new(),
            exceptions,
            action: action.unwrap_or(Action::Alert),
            mode: mode.unwrap_or(Mode::Enforce),
            enabled: enabled.unwrap_or(true),
            tags: tags.unwrap_or_default(),
            throttle: throttle.flatten(),
            rate: rate.flatten(),
            valid,
        })
    }

    /// A rate such as `10/min`, reported at the value when it is not one.
    fn rate(&mut self, node: &Node, what: &str) -> Option<Rate> {
        let text = node.as_scalar().unwrap_or_default();
        match Rate::parse(text) {
            Ok(rate) => Some(rate),
            Err(err) => {
                self.error(node, format!("invalid {what}: {err}"), None);
                None
            }
        }
    }

    /// `rate: {count, within, by, distinct}`.
    fn rate_rule(&mut self, node: &Node) -> Option<RateDecl> {
        if !matches!(node.value, NodeValue::Map(_)) {
            self.error(
                node,
                format!("rate must be a mapping, found {}", node.describe()),
                Some("write e.g. `rate: {count: 20, within: 10s, by: [process]}`".into()),
            );
            return None;
        }
        let entries = self.entries(node, RATE_KEYS, "a rate");
        let get = |key: &str| {
            entries
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, _, v)| *v)
        };
        let mut ok = true;
        let count = match get("count") {
            Some(v) => match v.as_scalar().and_then(|t| t.parse::<u32>().ok()) {
                Some(n) if (2..=crate::counting::MAX_COUNT).contains(&n) => Some(n),
                _ => {
                    self.error(
                        v,
                        format!(
                            "rate count must be a whole number from 2 to {}",
                            crate::counting::MAX_COUNT
                        ),
                        Some("a count of 1 is an ordinary rule: leave out `rate:`".into()),
                    );
                    None
                }
            },
            None => {
                self.error(
                    node,
                    "rate is missing 'count'".into(),
                    Some("add `count: N`".into()),
                );
                None
            }
        };
        let within = match get("within") {
            Some(v) => match v.as_scalar().and_then(parse_duration) {
                Some(s) if (1..=crate::counting::MAX_WITHIN_SECS).contains(&s) => Some(s),
                _ => {
                    self.error(
                        v,
                        format!(
                            "invalid rate window '{}'",
                            v.as_scalar().unwrap_or_default()
                        ),
                        Some(format!(
                            "write seconds, minutes or hours up to {}s: 10s, 2m, 1h",
                            crate::counting::MAX_WITHIN_SECS
                        )),
                    );
                    None
                }
            },
            None => {
                self.error(
                    node,
                    "rate is missing 'within'".into(),
                    Some("add `within: 10s`".into()),
                );
                None
            }
        };
        let mut words = |key: &str, r: &mut Self| -> Vec<Text> {
            match get(key) {
                Some(v) if v.as_scalar().is_some() => r.text(v, key).into_iter().collect(),
                Some(v) => r.strings(v, key).unwrap_or_else(|| {
                    ok = false;
                    Vec::new()
                }),
                None => Vec::new(),
            }
        };
        let by = words("by", self);
        let distinct = words("distinct", self);
        Some(RateDecl {
            count: count?,
            within_secs: within?,
            by,
            distinct,
            loc: self.loc(node),
        })
        .filter(|_| ok)
    }

    fn exception(&mut self, node: &Node) -> Option<Text> {
        match &node.value {
            NodeValue::Scalar { .. } => self.text(node, "an exception"),
            NodeValue::Map(_) => {
                let entries = self.entries(node, EXCEPTION_KEYS, "an exception");
                match entries.iter().find(|(k, _, _)| *k == "condition") {
                    Some((_, _, v)) => self.text(v, "an exception's condition"),
                    None => {
                        self.error(
                            node,
                            "exception is missing 'condition'".into(),
                            Some("add `condition: …`".into()),
                        );
                        None
                    }
                }
            }
            NodeValue::Seq(_) => {
                self.error(
                    node,
                    "an exception must be a condition or {name, condition}, found a list".into(),
                    None,
                );
                None
            }
        }
    }

    fn name(&mut self, node: &Node, what: &str) -> Option<Text> {
        let t = self.text(node, what)?;
        if !valid_name(&t.value) {
            self.diags.error(
                t.loc,
                format!("invalid {what} '{}'", t.value),
                Some("use letters, digits, '_' and '-', starting with a letter (no '.', which fields use)".into()),
            );
            return None;
        }
        Some(t)
    }

    fn list(&mut self, node: &Node) -> Option<ListDecl> {
        let entries = self.entries(node, LIST_KEYS, "a list");
        let get = |key: &str| {
            entries
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, _, v)| *v)
        };
        let name = get("list").and_then(|v| self.name(v, "list name"));
        let items = match get("items") {
            Some(v) => self.strings(v, "items"),
            None => {
                self.error(
                    node,
                    "list is missing 'items'".into(),
                    Some("add `items: [a, b]`".into()),
                );
                None
            }
        };
        let merge = self.merge_of(&entries, &[("items", true)], "a list")?;
        let merge = match merge.as_slice() {
            [] => None,
            [(_, m)] => Some(*m),
            _ => None,
        };
        Some(ListDecl {
            name: name?,
            items: items?,
            merge,
        })
    }

    fn macro_(&mut self, node: &Node) -> Option<MacroDecl> {
        let entries = self.entries(node, MACRO_KEYS, "a macro");
        let get = |key: &str| {
            entries
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, _, v)| *v)
        };
        let name = get("macro").and_then(|v| self.name(v, "macro name"));
        let condition = match get("condition") {
            Some(v) => self.text(v, "condition"),
            None => {
                self.error(
                    node,
                    "macro is missing 'condition'".into(),
                    Some("add `condition: …`".into()),
                );
                None
            }
        };
        let merge = self.merge_of(&entries, &[("condition", true)], "a macro")?;
        let merge = merge.first().map(|(_, m)| *m);
        let mut condition = condition?;
        let mut and = true;
        if merge == Some(Merge::Append) {
            let (a, text) = self.appended(condition)?;
            and = a;
            condition = text;
        }
        Some(MacroDecl {
            name: name?,
            condition,
            merge,
            and,
        })
    }

    /// What `override:` (or the older `append: true`) says for an item: each overridable key
    /// present and how it merges. Keys given without a merge mode, modes for absent keys, and
    /// modes a key does not take are errors.
    fn merge_of(
        &mut self,
        entries: &[(&str, &Node, &Node)],
        allowed: &[(&str, bool)],
        what: &str,
    ) -> Option<Vec<(String, Merge)>> {
        let present = |key: &str| entries.iter().any(|(k, _, _)| *k == key);
        let mut out: Vec<(String, Merge)> = Vec::new();
        let mut ok = true;
        if let Some((_, _, v)) = entries.iter().find(|(k, _, _)| *k == "append") {
            if self.boolean(v, "append")? {
                for (key, appendable) in allowed {
                    if *appendable && present(key) {
                        out.push((key.to_string(), Merge::Append));
                    }
                }
                if out.is_empty() {
                    self.error(
                        v,
                        format!("`append: true` on {what} with nothing to append"),
                        Some("give the items or condition to add".into()),
                    );
                    return None;
                }
            }
        }
        let Some((_, okey, ovalue)) = entries.iter().find(|(k, _, _)| *k == "override") else {
            return Some(out);
        };
        if !out.is_empty() {
            self.error(
                okey,
                "both `append: true` and `override:`".into(),
                Some("keep `override:`".into()),
            );
            return None;
        }
        let NodeValue::Map(pairs) = &ovalue.value else {
            self.error(
                ovalue,
                format!("override must be a mapping, found {}", ovalue.describe()),
                Some("write e.g. `override: {condition: append}`".into()),
            );
            return None;
        };
        let mut mentioned: Vec<&str> = Vec::new();
        for (k, v) in pairs {
            let key = k.as_scalar().unwrap_or_default();
            mentioned.push(key);
            let Some((_, appendable)) = allowed.iter().find(|(a, _)| *a == key) else {
                let names: Vec<&str> = allowed.iter().map(|(a, _)| *a).collect();
                let hint = suggest::hint(key, names.iter().copied())
                    .unwrap_or_else(|| format!("{what} can override: {}", names.join(", ")));
                self.error(
                    k,
                    format!("'{key}' cannot be overridden in {what}"),
                    Some(hint),
                );
                ok = false;
                continue;
            };
            let merge = match v.as_scalar() {
                Some("append") if *appendable => Merge::Append,
                Some("replace") => Merge::Replace,
                Some("append") => {
                    self.error(
                        v,
                        format!("'{key}' can only be replaced"),
                        Some("write `replace`".into()),
                    );
                    ok = false;
                    continue;
                }
                _ => {
                    let text = v.as_scalar().unwrap_or_default();
                    let choices = if *appendable {
                        "append|replace"
                    } else {
                        "replace"
                    };
                    let hint = suggest::hint(text, choices.split('|'))
                        .map(|h| format!("{h} one of {choices}"))
                        .unwrap_or_else(|| format!("use one of {choices}"));
                    self.error(
                        v,
                        format!("invalid override '{text}' for '{key}'"),
                        Some(hint),
                    );
                    ok = false;
                    continue;
                }
            };
            if !present(key) {
                self.error(
                    k,
                    format!("override of '{key}' but {what} gives no '{key}'"),
                    Some(format!("add `{key}: …` with the new value")),
                );
                ok = false;
                continue;
            }
            out.push((key.to_string(), merge));
        }
        for (key, appendable) in allowed {
            if present(key) && !mentioned.contains(key) {
                if let Some((_, k, _)) = entries.iter().find(|(k, _, _)| k == key) {
                    let how = if *appendable {
                        format!("`{key}: append` or `{key}: replace`")
                    } else {
                        format!("`{key}: replace`")
                    };
                    self.error(
                        k,
                        format!("'{key}' given in an override without saying how it merges"),
                        Some(format!("add {how} under override")),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// Checks that an appended condition starts with `and` or `or` (true for `and`).
    fn appended(&mut self, text: Text) -> Option<(bool, Text)> {
        let trimmed = text.value.trim_start();
        let word = trimmed
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or_default();
        let and = match word {
            "and" => true,
            "or" => false,
            _ => {
                self.diags.error(
                    text.loc,
                    "an appended condition must start with `and` or `or`".to_string(),
                    Some("write e.g. `and not process.binary = /opt/acme/bin/agent`".into()),
                );
                return None;
            }
        };
        if blank_lead(&text.value).trim().is_empty() {
            self.diags.error(
                text.loc,
                format!("nothing after `{word}` in the appended condition"),
                None,
            );
            return None;
        }
        Some((and, text))
    }

    /// A `- rule:` item that changes an earlier rule.
    fn rule_override(&mut self, node: &Node) -> Option<RuleOverride> {
        let entries = self.entries(node, RULE_KEYS, "a rule override");
        let get = |key: &str| {
            entries
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, _, v)| *v)
        };
        let target = get("rule").and_then(|v| self.text(v, "the rule name"))?;
        let id = match get("id") {
            Some(v) => Some(self.text(v, "id")?),
            None => None,
        };
        let mut merges = self.merge_of(&entries, RULE_OVERRIDABLE, "a rule override")?;
        // The Falco shorthand: `enabled` alone, with no `override:`, replaces it.
        if merges.is_empty() && get("enabled").is_some() && get("override").is_none() {
            for key in [
                "condition",
                "exceptions",
                "severity",
                "action",
                "mode",
                "tags",
                "mitre",
                "description",
            ] {
                if let Some((_, k, _)) = entries.iter().find(|(k, _, _)| *k == key) {
                    self.error(
                        k,
                        format!("'{key}' in a rule item without a condition"),
                        Some("to change an earlier rule, say how under `override:`; to define a rule, give its condition".into()),
                    );
                    return None;
                }
            }
            merges.push(("enabled".into(), Merge::Replace));
        }
        let merge = |key: &str| merges.iter().find(|(k, _)| k == key).map(|(_, m)| *m);
        let mut o = RuleOverride {
            target,
            id,
            condition: None,
            exceptions: None,
            description: None,
            severity: None,
            mitre: None,
            action: None,
            mode: None,
            enabled: None,
            tags: None,
            rate: None,
            throttle: None,
        };
        let mut ok = true;
        if let (Some(m), Some(v)) = (merge("condition"), get("condition")) {
            let text = self.text(v, "condition")?;
            o.condition = if m == Merge::Append {
                let (and, text) = self.appended(text)?;
                Some((m, and, text))
            } else {
                Some((m, true, text))
            };
        }
        if let (Some(m), Some(v)) = (merge("exceptions"), get("exceptions")) {
            let mut list = Vec::new();
            match &v.value {
                NodeValue::Seq(items) => {
                    for item in items {
                        match self.exception(item) {
                            Some(t) => list.push(t),
                            None => ok = false,
                        }
                    }
                }
                _ => {
                    self.error(v, "exceptions must be a list of conditions".into(), None);
                    ok = false;
                }
            }
            o.exceptions = Some((m, list));
        }
        if let (Some(_), Some(v)) = (merge("description"), get("description")) {
            o.description = self.text(v, "description").map(|t| t.value);
        }
        if let (Some(_), Some(v)) = (merge("severity"), get("severity")) {
            o.severity = self.word(v, "severity", Severity::parse, Severity::choices());
            ok &= o.severity.is_some();
        }
        if let (Some(_), Some(v)) = (merge("action"), get("action")) {
            o.action = self.word(v, "action", Action::parse, Action::choices());
            ok &= o.action.is_some();
        }
        if let (Some(_), Some(v)) = (merge("mode"), get("mode")) {
            o.mode = self.word(v, "mode", Mode::parse, Mode::choices());
            ok &= o.mode.is_some();
        }
        if let (Some(_), Some(v)) = (merge("enabled"), get("enabled")) {
            o.enabled = self.boolean(v, "enabled");
            ok &= o.enabled.is_some();
        }
        if let (Some(_), Some(v)) = (merge("rate"), get("rate")) {
            o.rate = self.rate_rule(v);
            ok &= o.rate.is_some();
        }
        if let (Some(_), Some(v)) = (merge("throttle"), get("throttle")) {
            o.throttle = self.rate(v, "throttle");
            ok &= o.throttle.is_some();
        }
        if let (Some(m), Some(v)) = (merge("tags"), get("tags")) {
            let tags = self.strings(v, "tags")?;
            o.tags = Some((m, tags.into_iter().map(|t| t.value).collect()));
        }
        if let (Some(m), Some(v)) = (merge("mitre"), get("mitre")) {
            let mut ids = Vec::new();
            for t in self.strings(v, "mitre")? {
                if valid_technique(&t.value) {
                    ids.push(t.value);
                } else {
                    self.diags.error(
                        t.loc,
                        format!("'{}' is not an ATT&CK technique id", t.value),
                        Some("write e.g. T1003 or T1003.008".into()),
                    );
                    ok = false;
                }
            }
            o.mitre = Some((m, ids));
        }
        ok.then_some(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_ids_and_names() {
        assert!(valid_technique("T1003"));
        assert!(valid_technique("T1003.008"));
        assert!(!valid_technique("T1003.8"));
        assert!(!valid_technique("TA0001"));
        assert!(valid_name("shell_binaries"));
        assert!(!valid_name("process.name"));
        assert!(!valid_name("1x"));
    }
}
