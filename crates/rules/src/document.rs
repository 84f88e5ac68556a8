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
    pub exceptions: Vec<Text>,
    pub action: Action,
    pub mode: Mode,
    pub enabled: bool,
    pub tags: Vec<String>,
    /// `throttle: N/min`: at most that many of the rule's alerts are reported per window.
    pub throttle: Option<Rate>,
    /// False when the metadata had errors (already reported); the condition is still checked.
    pub valid: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct ListDecl {
    pub name: Text,
    pub items: Vec<Text>,
    pub append: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct MacroDecl {
    pub name: Text,
    pub condition: Text,
}

#[derive(Debug, Clone)]
pub(crate) enum Item {
    Rule(RuleDecl),
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
];
const LIST_KEYS: &[&str] = &["list", "items", "append"];
const MACRO_KEYS: &[&str] = &["macro", "condition"];
const EXCEPTION_KEYS: &[&str] = &["name", "condition"];

/// True for a name usable for a list or macro: a letter or `_`, then letters, digits, `_`, `-`.
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
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
        match heads.as_slice() {
            ["rule"] => self.rule(node).map(Item::Rule),
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
            && throttle.is_some();
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
            exceptions,
            action: action.unwrap_or(Action::Alert),
            mode: mode.unwrap_or(Mode::Enforce),
            enabled: enabled.unwrap_or(true),
            tags: tags.unwrap_or_default(),
            throttle: throttle.flatten(),
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
        let append = match get("append") {
            Some(v) => self.boolean(v, "append"),
            None => Some(false),
        };
        Some(ListDecl {
            name: name?,
            items: items?,
            append: append?,
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
        Some(MacroDecl {
            name: name?,
            condition: condition?,
        })
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
