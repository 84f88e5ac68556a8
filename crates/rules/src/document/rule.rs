//! A `- rule:` item: its metadata, condition, exceptions (plain or named), action and mode, and
//! its `rate:` (a count of events within a window, optionally by a field and distinct values).

use super::scalars::{parse_duration, value_of};
use super::{RateDecl, Reader, RuleDecl, Text, EXCEPTION_KEYS, RATE_KEYS, RULE_KEYS};
use crate::diag::Loc;
use crate::meta::{Action, Mode, Severity};
use crate::rate::Rate;
use crate::yaml::{Node, NodeValue};

impl Reader<'_, '_> {
    pub(super) fn rule(&mut self, node: &Node) -> Option<RuleDecl> {
        let entries = self.entries(node, RULE_KEYS, "a rule");
        let get = |key: &str| value_of(&entries, key);
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
            let texts = self.strings(v, "mitre").unwrap_or_default();
            mitre = self.techniques(texts, &mut ok);
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
    pub(super) fn rate(&mut self, node: &Node, what: &str) -> Option<Rate> {
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
    pub(super) fn rate_rule(&mut self, node: &Node) -> Option<RateDecl> {
        if !matches!(node.value, NodeValue::Map(_)) {
            self.error(
                node,
                format!("rate must be a mapping, found {}", node.describe()),
                Some("write e.g. `rate: {count: 20, within: 10s, by: [process]}`".into()),
            );
            return None;
        }
        let entries = self.entries(node, RATE_KEYS, "a rate");
        let get = |key: &str| value_of(&entries, key);
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

    pub(super) fn exception(&mut self, node: &Node) -> Option<Text> {
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
}
