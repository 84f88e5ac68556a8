//! First-stage interest: per rule, alternatives (one dimension's set each), any of which an
//! event the rule matches satisfies; the kind's filter is their union.

use std::collections::BTreeMap;

use super::atoms::atom;
use super::dims::{Dim, ValueSet, INTEREST_ORDER};
use super::nnf::Nnf;

pub(super) type Alternatives = BTreeMap<Dim, ValueSet>;

/// Adds `b`'s alternatives to `a`. False when two sets of one dimension cannot be merged.
pub(super) fn union_into(a: &mut Alternatives, b: &Alternatives) -> bool {
    for (dim, set) in b {
        match a.get_mut(dim) {
            Some(existing) => {
                if !existing.union(set) {
                    return false;
                }
            }
            None => {
                a.insert(*dim, set.clone());
            }
        }
    }
    true
}

/// How good a set of alternatives is as a first-stage filter (lower is better): the worst
/// dimension it uses, then how many it uses.
pub(super) fn score(alts: &Alternatives) -> (usize, usize) {
    let worst = alts
        .keys()
        .map(|d| {
            INTEREST_ORDER
                .iter()
                .position(|x| x == d)
                .unwrap_or(usize::MAX)
        })
        .max()
        .unwrap_or(0);
    (worst, alts.len())
}

/// Alternatives such that every event the condition can be true for matches one of them;
/// `None` when no such set exists (every event of the kind is needed). An empty map means the
/// condition is never true.
pub(super) fn interest(n: &Nnf<'_>) -> Option<Alternatives> {
    match n {
        Nnf::Const(false) => Some(Alternatives::new()),
        Nnf::Const(true) => None,
        Nnf::Atom(p, neg) => {
            let (dim, c, _) = atom(p, *neg)?;
            Some([(dim, c.include?)].into())
        }
        Nnf::And(parts) => parts.iter().filter_map(interest).min_by_key(score),
        Nnf::Or(parts) => {
            let mut out = Alternatives::new();
            for p in parts {
                if !union_into(&mut out, &interest(p)?) {
                    return None;
                }
            }
            Some(out)
        }
    }
}
