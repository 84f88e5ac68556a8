//! A parsed expression to a condition: `and`/`or`/`not` and `exists`, field names resolved to
//! table fields, `env.` variables and labels, list names in operands expanded to their values,
//! and the per-condition and policy-wide expansion budgets enforced.

use super::{Compiler, CondSrc, MAX_EXPANSION, MAX_EXPANSION_TOTAL, MAX_VALUES_TOTAL};
use crate::ast::{Expr, Lit, Name, Op, Operand};
use crate::cond::{Cond, FieldRef, Pred, Test};
use crate::diag::Loc;
use crate::fields::{self, Base, FieldType, FIELDS};
use crate::suggest;

/// A value to compare with, and where it was written.
pub(super) struct Val {
    pub(super) text: String,
    pub(super) loc: Loc,
}

impl Compiler<'_, '_> {
    pub(super) fn expr(
        &mut self,
        e: &Expr,
        src: &CondSrc,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Option<Cond> {
        if self.budget == 0 || self.over_total {
            return None;
        }
        if let Expr::Cmp { field, .. } | Expr::Exists { field } | Expr::Ref(field) = e {
            if self.comparisons_left == 0 {
                self.total_exceeded(src.loc(field.at), "comparisons", MAX_EXPANSION_TOTAL);
                return None;
            }
            self.comparisons_left -= 1;
            self.budget -= 1;
            if self.budget == 0 {
                self.diags.error(
                    src.loc(field.at),
                    format!(
                        "condition expands to more than {MAX_EXPANSION} comparisons through macros"
                    ),
                    Some("use lists instead of macros that repeat other macros".into()),
                );
                return None;
            }
        }
        match e {
            Expr::And(items) | Expr::Or(items) => {
                let parts: Vec<Option<Cond>> = items
                    .iter()
                    .map(|i| self.expr(i, src, stack, depth))
                    .collect();
                let parts: Option<Vec<Cond>> = parts.into_iter().collect();
                let parts = parts?;
                Some(if matches!(e, Expr::And(_)) {
                    Cond::And(flatten(parts, true))
                } else {
                    Cond::Or(flatten(parts, false))
                })
            }
            Expr::Not(inner) => Some(Cond::Not(Box::new(self.expr(inner, src, stack, depth)?))),
            Expr::Exists { field } => {
                let (fref, ty) = self.field(field, src)?;
                if ty.base == Base::Kind {
                    self.diags.error(
                        src.loc(field.at),
                        "'kind exists' is always true".to_string(),
                        Some("compare kind with a value, e.g. `kind = file_open`".into()),
                    );
                    return None;
                }
                Some(self.pred(fref, Test::Exists, src.loc(field.at)))
            }
            Expr::Ref(name) => self.reference(name, src, stack, depth),
            Expr::Cmp {
                field,
                op,
                op_at,
                value,
            } => self.compare(field, *op, *op_at, value, src),
        }
    }

    /// Reports, once, that the whole policy expands past a bound.
    fn total_exceeded(&mut self, loc: Loc, what: &str, bound: usize) {
        if !self.over_total {
            self.over_total = true;
            self.diags.error(
                loc,
                format!("the policy's conditions expand to more than {bound} {what} through lists and macros"),
                Some("use a list once in one rule instead of repeating large lists or macros in many rules".into()),
            );
        }
    }

    /// Takes `n` values from the policy-wide budget; false (reported) when it is spent.
    fn take_values(&mut self, n: usize, loc: Loc) -> bool {
        if self.over_total {
            return false;
        }
        if n > self.values_left {
            self.total_exceeded(loc, "values", MAX_VALUES_TOTAL);
            return false;
        }
        self.values_left -= n;
        true
    }

    pub(super) fn pred(&self, field: FieldRef, test: Test, loc: Loc) -> Cond {
        Cond::Pred(Box::new(Pred { field, test, loc }))
    }

    pub(super) fn field(&mut self, name: &Name, src: &CondSrc) -> Option<(FieldRef, FieldType)> {
        if let Some(i) = fields::lookup(&name.text) {
            return Some((FieldRef::Table(i), FIELDS[i].ty));
        }
        if let Some(var) = name.text.strip_prefix(fields::ENV_PREFIX) {
            if valid_env_name(var) {
                return Some((
                    FieldRef::Env(var.into()),
                    FieldType {
                        base: Base::Str,
                        list: false,
                    },
                ));
            }
        }
        if let Some((of, key)) = fields::label_field(&name.text) {
            return Some((
                FieldRef::Label(of, key.into()),
                FieldType {
                    base: Base::Str,
                    list: false,
                },
            ));
        }
        let hint = if self.macros.contains_key(&name.text) {
            Some(format!(
                "'{}' is a macro: use it on its own, not with an operator",
                name.text
            ))
        } else {
            suggest::hint(&name.text, fields::all_names())
        };
        self.diags.error(
            src.loc(name.at),
            format!("unknown field '{}'", name.text),
            hint,
        );
        None
    }

    /// The values of an operand, with list names expanded.
    pub(super) fn values(&mut self, op: Op, value: &Operand, src: &CondSrc) -> Option<Vec<Val>> {
        let lit = |l: &Lit| Val {
            text: l.text.clone(),
            loc: src.loc(l.at),
        };
        match value {
            Operand::One(l) if op == Op::In => {
                if !l.quoted {
                    let size = self.lists.get(&l.text).map(Vec::len);
                    if let Some(size) = size {
                        if !self.take_values(size, src.loc(l.at)) {
                            return None;
                        }
                    }
                    if let Some(items) = self.lists.get(&l.text) {
                        return Some(
                            items
                                .iter()
                                .map(|t| Val {
                                    text: t.value.clone(),
                                    loc: t.loc,
                                })
                                .collect(),
                        );
                    }
                }
                let mut names: Vec<&str> = self.lists.keys().map(String::as_str).collect();
                names.sort();
                let hint = suggest::hint(&l.text, names)
                    .unwrap_or_else(|| format!("write a list: `in ({})`", l.text));
                self.diags.error(
                    src.loc(l.at),
                    format!("unknown list '{}'", l.text),
                    Some(hint),
                );
                None
            }
            Operand::One(l) => Some(vec![lit(l)]),
            Operand::List(items, _) => {
                let mut out = Vec::new();
                for item in items {
                    let size = match self.lists.get(&item.text) {
                        Some(list) if !item.quoted => list.len(),
                        _ => 1,
                    };
                    if !self.take_values(size, src.loc(item.at)) {
                        return None;
                    }
                    match self.lists.get(&item.text) {
                        Some(list) if !item.quoted => out.extend(list.iter().map(|t| Val {
                            text: t.value.clone(),
                            loc: t.loc,
                        })),
                        _ => out.push(lit(item)),
                    }
                }
                Some(out)
            }
        }
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `a and b` (or `a or b`), when both compiled.
pub(super) fn join(a: Option<Cond>, b: Option<Cond>, and: bool) -> Option<Cond> {
    let (a, b) = (a?, b?);
    Some(if and {
        Cond::And(flatten(vec![a, b], true))
    } else {
        Cond::Or(vec![a, b])
    })
}

/// Merges nested `and`s into one list (and nested `or`s), so long chains do not nest.
fn flatten(parts: Vec<Cond>, and: bool) -> Vec<Cond> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Cond::And(inner) if and => out.extend(inner),
            Cond::Or(inner) if !and => out.extend(inner),
            other => out.push(other),
        }
    }
    out
}
