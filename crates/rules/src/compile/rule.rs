//! One rule declaration to a compiled rule: its condition with appended parts, its exceptions,
//! its event kinds (which must be constrained and must leave some kind possible) and its rate,
//! with the [`RuleInfo`] that listings and alerts show.

use std::sync::Arc;

use super::expr::join;
use super::kind_check::{check_kinds, constraint, possible_kinds};
use super::{Compiler, CondSrc, MAX_EXPANSION};
use crate::cond::Cond;
use crate::document::{self, RuleDecl, Text};
use crate::kinds::KindSet;
use crate::parser;
use crate::policy::{CompiledRule, RuleInfo};

impl Compiler<'_, '_> {
    /// Parses and compiles one condition text.
    fn condition(&mut self, text: &Text) -> Option<Cond> {
        self.condition_parsed(text, &text.value)
    }

    /// Compiles `parse_text`, which has the offsets of `text` (an appended condition with its
    /// leading `and`/`or` blanked out).
    fn condition_parsed(&mut self, text: &Text, parse_text: &str) -> Option<Cond> {
        self.budget = MAX_EXPANSION;
        let src = CondSrc::new(self.diags.sources(), text);
        match parser::parse(parse_text) {
            Ok(expr) => self.expr(&expr, &src, &mut Vec::new(), 0),
            Err(e) => {
                self.diags.error(src.loc(e.at), e.message, e.hint);
                None
            }
        }
    }

    pub(super) fn rule(&mut self, decl: RuleDecl, index: usize) -> Option<CompiledRule> {
        let mut cond = self.condition(&decl.condition);
        for (and, text) in &decl.appended {
            let extra = self.condition_parsed(text, &document::blank_lead(&text.value));
            cond = join(cond, extra, *and);
        }
        let exceptions: Vec<Option<Cond>> =
            decl.exceptions.iter().map(|e| self.condition(e)).collect();
        let cond = cond?;
        let mut errors = false;
        let possible = possible_kinds(&cond);
        if constraint(&cond) == KindSet::ALL {
            let hint = if possible == KindSet::ALL || possible.len() > 8 {
                "add e.g. `kind = process_exec and …`".to_string()
            } else {
                format!(
                    "add e.g. `kind = {} and …`; its fields exist for: {possible}",
                    possible
                        .iter()
                        .next()
                        .map(|k| k.as_str())
                        .unwrap_or("process_exec")
                )
            };
            self.diags.error(
                decl.condition.loc,
                format!("rule '{}' does not constrain `kind`", decl.id.value),
                Some(hint),
            );
            errors = true;
        }
        if !check_kinds(&cond, KindSet::ALL, self.diags) {
            errors = true;
        } else if possible.is_empty() && !errors {
            self.diags.error(
                decl.condition.loc,
                format!(
                    "rule '{}' can never match: its `kind` comparisons exclude each other",
                    decl.id.value
                ),
                None,
            );
            errors = true;
        }
        let mut compiled_exceptions = Vec::new();
        for exc in exceptions {
            match exc {
                Some(c) => {
                    if !check_kinds(&c, possible, self.diags) {
                        errors = true;
                    }
                    compiled_exceptions.push(c);
                }
                None => errors = true,
            }
        }
        let rate = match &decl.rate {
            Some(r) => match crate::counting::resolve(r, possible, decl.action, self.diags) {
                Some(spec) => Some(spec),
                None => {
                    errors = true;
                    None
                }
            },
            None => None,
        };
        if errors || !decl.valid {
            return None;
        }
        let (file, line, col) = self.position(decl.id.loc);
        let condition = crate::overrides::condition_text(&decl);
        let info = RuleInfo {
            index: index as u16,
            id: decl.id.value,
            name: decl.name.value,
            description: decl.description,
            severity: decl.severity,
            mitre: decl.mitre,
            action: decl.action,
            mode: decl.mode,
            enabled: decl.enabled,
            tags: decl.tags,
            throttle: decl.throttle,
            kinds: possible.iter().collect(),
            condition,
            rate: rate.as_ref().map(crate::counting::RateSpec::describe),
            exceptions: decl
                .exceptions
                .iter()
                .map(|e| e.value.trim().to_string())
                .collect(),
            file,
            line,
            col,
        };
        Some(CompiledRule::new(
            Arc::new(info),
            cond,
            compiled_exceptions,
            possible,
            rate,
        ))
    }
}
