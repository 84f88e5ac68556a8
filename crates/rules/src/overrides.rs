//! Rule overrides: a later file changes an earlier rule in place (disable it, append to its
//! condition or exceptions, replace its severity, …) instead of copying it. Overrides apply in
//! load order to rules defined before them; one that names no earlier rule is an error at the
//! name, with the nearest rule names as the suggestion. Lists and macros are overridden where
//! they are defined (`compile/lists.rs`, `compile/macros.rs`).

use crate::diag::Diags;
use crate::document::{Merge, RuleDecl, RuleOverride};
use crate::suggest;

/// Applies `o` to the rule it names among `rules` (those defined before it).
pub(crate) fn apply(rules: &mut [RuleDecl], o: RuleOverride, diags: &mut Diags<'_>) {
    let found = match &o.id {
        Some(id) => rules.iter().position(|r| r.id.value == id.value),
        None => rules
            .iter()
            .position(|r| r.name.value == o.target.value)
            .or_else(|| rules.iter().position(|r| r.id.value == o.target.value)),
    };
    let Some(i) = found else {
        let (what, text, loc) = match &o.id {
            Some(id) => ("id", id.value.as_str(), id.loc),
            None => ("name or id", o.target.value.as_str(), o.target.loc),
        };
        let candidates: Vec<&str> = rules
            .iter()
            .flat_map(|r| [r.name.value.as_str(), r.id.value.as_str()])
            .collect();
        let hint = suggest::hint(text, candidates.iter().copied()).unwrap_or_else(|| {
            "an override changes a rule of an earlier file (the default pack loads first)".into()
        });
        diags.error(
            loc,
            format!("no rule with {what} '{text}' is defined before this override"),
            Some(hint),
        );
        return;
    };
    if let Some(id) = &o.id {
        let rule = &rules[i];
        if o.target.value != rule.name.value && o.target.value != rule.id.value {
            diags.error(
                o.target.loc,
                format!(
                    "rule '{}' is not the rule with id '{}' ('{}')",
                    o.target.value, id.value, rule.name.value
                ),
                Some("give the rule's name, or leave out `id:`".into()),
            );
            return;
        }
    }
    let rule = &mut rules[i];
    if let Some((merge, and, text)) = o.condition {
        match merge {
            Merge::Append => rule.appended.push((and, text)),
            Merge::Replace => {
                rule.condition = text;
                rule.appended.clear();
            }
        }
    }
    if let Some((merge, list)) = o.exceptions {
        if merge == Merge::Replace {
            rule.exceptions.clear();
        }
        rule.exceptions.extend(list);
    }
    if let Some(d) = o.description {
        rule.description = d;
    }
    if let Some(s) = o.severity {
        rule.severity = s;
    }
    if let Some(a) = o.action {
        rule.action = a;
    }
    if let Some(m) = o.mode {
        rule.mode = m;
    }
    if let Some(e) = o.enabled {
        rule.enabled = e;
    }
    if let Some(r) = o.rate {
        rule.rate = Some(r);
    }
    if let Some(t) = o.throttle {
        rule.throttle = Some(t);
    }
    if let Some((merge, tags)) = o.tags {
        if merge == Merge::Replace {
            rule.tags.clear();
        }
        rule.tags.extend(tags);
    }
    if let Some((merge, ids)) = o.mitre {
        if merge == Merge::Replace {
            rule.mitre.clear();
        }
        for id in ids {
            if !rule.mitre.contains(&id) {
                rule.mitre.push(id);
            }
        }
    }
}

/// The condition as `list`/`explain` show it: the original, then each appended part.
pub(crate) fn condition_text(rule: &RuleDecl) -> String {
    let base = rule.condition.value.trim().to_string();
    if rule.appended.is_empty() {
        return base;
    }
    let mut out = format!("({base})");
    for (and, text) in &rule.appended {
        out.push_str(if *and { " and (" } else { " or (" });
        out.push_str(crate::document::blank_lead(&text.value).trim());
        out.push(')');
    }
    out
}
