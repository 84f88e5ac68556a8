//! Reading overrides: the `override:` map (or the older `append: true`) of a rule, list or
//! macro, an appended condition's leading `and`/`or`, and a rule override with the fields it
//! replaces or appends to. Applying them to earlier rules is [`crate::overrides`].

use super::scalars::value_of;
use super::{blank_lead, Merge, Reader, RuleOverride, Text, RULE_KEYS};
use crate::meta::{Action, Mode, Severity};
use crate::suggest;
use crate::yaml::{Node, NodeValue};

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

impl Reader<'_, '_> {
    /// What `override:` (or the older `append: true`) says for an item: each overridable key
    /// present and how it merges. Keys given without a merge mode, modes for absent keys, and
    /// modes a key does not take are errors.
    pub(super) fn merge_of(
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
    pub(super) fn appended(&mut self, text: Text) -> Option<(bool, Text)> {
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
    pub(super) fn rule_override(&mut self, node: &Node) -> Option<RuleOverride> {
        let entries = self.entries(node, RULE_KEYS, "a rule override");
        let get = |key: &str| value_of(&entries, key);
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
            let texts = self.strings(v, "mitre")?;
            let ids = self.techniques(texts, &mut ok);
            o.mitre = Some((m, ids));
        }
        ok.then_some(o)
    }
}
