//! The event kinds of a condition: the exact set of a `kind`-only condition, the set its `kind`
//! comparisons allow, the set on which it can be true once fields narrow it, and the check that
//! every field is used where some allowed kind has it.

use crate::cond::Cond;
use crate::diag::Diags;
use crate::kinds::KindSet;

/// The exact kind set of a condition that depends on `kind` alone, or `None`.
fn kind_only(c: &Cond) -> Option<KindSet> {
    match c {
        Cond::Kind(s) => Some(*s),
        Cond::Pred(_) => None,
        Cond::Not(x) => kind_only(x).map(|s| KindSet::ALL.without(s)),
        Cond::And(cs) => cs
            .iter()
            .try_fold(KindSet::ALL, |acc, c| Some(acc.intersect(kind_only(c)?))),
        Cond::Or(cs) => cs
            .iter()
            .try_fold(KindSet::EMPTY, |acc, c| Some(acc.union(kind_only(c)?))),
    }
}

/// The kinds a condition's `kind` comparisons allow (fields ignored).
pub(super) fn constraint(c: &Cond) -> KindSet {
    if let Some(s) = kind_only(c) {
        return s;
    }
    match c {
        Cond::And(cs) => cs
            .iter()
            .fold(KindSet::ALL, |acc, c| acc.intersect(constraint(c))),
        Cond::Or(cs) => cs
            .iter()
            .fold(KindSet::EMPTY, |acc, c| acc.union(constraint(c))),
        _ => KindSet::ALL,
    }
}

/// The kinds on which a condition can be true: its `kind` comparisons, narrowed by the fields
/// it requires (a comparison on a field is false where the field does not exist).
pub(super) fn possible_kinds(c: &Cond) -> KindSet {
    match c {
        Cond::Kind(s) => *s,
        Cond::Pred(p) => p.field.kinds(),
        Cond::Not(x) => kind_only(x)
            .map(|s| KindSet::ALL.without(s))
            .unwrap_or(KindSet::ALL),
        Cond::And(cs) => cs
            .iter()
            .fold(KindSet::ALL, |acc, c| acc.intersect(possible_kinds(c))),
        Cond::Or(cs) => cs
            .iter()
            .fold(KindSet::EMPTY, |acc, c| acc.union(possible_kinds(c))),
    }
}

/// Reports each field used where none of the allowed kinds has it. Returns false on an error.
pub(super) fn check_kinds(c: &Cond, allowed: KindSet, diags: &mut Diags<'_>) -> bool {
    match c {
        Cond::And(cs) => {
            let narrowed = cs
                .iter()
                .fold(allowed, |acc, c| acc.intersect(constraint(c)));
            let mut ok = true;
            for c in cs {
                ok &= check_kinds(c, narrowed, diags);
            }
            ok
        }
        Cond::Or(cs) => {
            let mut ok = true;
            for c in cs {
                ok &= check_kinds(c, allowed, diags);
            }
            ok
        }
        Cond::Not(x) => check_kinds(x, allowed, diags),
        Cond::Pred(p) => {
            let kinds = p.field.kinds();
            if !allowed.is_empty() && kinds.intersect(allowed).is_empty() {
                let shown = if kinds.len() > 7 {
                    format!("{} kinds", kinds.len())
                } else {
                    kinds.to_string()
                };
                diags.error(
                    p.loc,
                    format!(
                        "field '{}' does not exist for kind{} {}",
                        p.field.name(),
                        if allowed.len() == 1 { "" } else { "s" },
                        allowed
                    ),
                    Some(format!("it exists for {shown}")),
                );
                return false;
            }
            true
        }
        Cond::Kind(_) => true,
    }
}
