//! Necessary conjunctions: the constraints on each dimension that every event a rule matches
//! satisfies, whether they are exact, and the residual condition user space still checks.

use std::collections::BTreeMap;

use super::atoms::atom;
use super::dims::{list_dim, Dim};
use super::nnf::Nnf;
use super::DimConstraint;
use crate::cond::Cond;

pub(super) type Conj = BTreeMap<Dim, DimConstraint>;

/// Adds `c` to `into` (both must hold). Returns false when information was dropped.
pub(super) fn and_into(into: &mut Conj, dim: Dim, c: DimConstraint) -> bool {
    let slot = into.entry(dim).or_default();
    let mut lossless = true;
    slot.include = match (slot.include.take(), c.include) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => match (!list_dim(dim)).then(|| a.intersect(&b)).flatten() {
            Some(r) => Some(r),
            None => {
                lossless = false;
                Some(a)
            }
        },
    };
    slot.exclude = match (slot.exclude.take(), c.exclude) {
        (None, x) | (x, None) => x,
        (Some(mut a), Some(b)) => {
            lossless &= a.union(&b);
            Some(a)
        }
    };
    lossless
}

/// One of `a` or `b` holds: keeps what both branches require.
pub(super) fn or_merge(a: &Conj, b: &Conj) -> Conj {
    let mut out = Conj::new();
    for (dim, ca) in a {
        let Some(cb) = b.get(dim) else { continue };
        let include = match (&ca.include, &cb.include) {
            (Some(x), Some(y)) => {
                let mut u = x.clone();
                u.union(y).then_some(u)
            }
            _ => None,
        };
        let exclude = match (&ca.exclude, &cb.exclude) {
            (Some(x), Some(y)) if x == y => Some(x.clone()),
            _ => None,
        };
        if include.is_some() || exclude.is_some() {
            out.insert(*dim, DimConstraint { include, exclude });
        }
    }
    out
}

/// What the kernel can check of a specialised condition.
pub(super) struct Split<'n, 'c> {
    pub(super) conj: Conj,
    pub(super) exact: bool,
    pub(super) residual: Vec<&'n Nnf<'c>>,
    /// Parts that read only the container identity (see [`crate::scope`]).
    pub(super) workload: Vec<&'n Nnf<'c>>,
}

/// `None` when the condition can never be true on this kind.
pub(super) fn split<'n, 'c>(n: &'n Nnf<'c>) -> Option<Split<'n, 'c>> {
    let mut s = Split {
        conj: Conj::new(),
        exact: true,
        residual: Vec::new(),
        workload: Vec::new(),
    };
    match n {
        Nnf::Const(false) => return None,
        Nnf::Const(true) => {}
        Nnf::And(parts) => {
            for p in parts {
                s.add(p)?;
            }
        }
        other => s.add(other)?,
    }
    Some(s)
}

impl<'n, 'c> Split<'n, 'c> {
    fn add(&mut self, n: &'n Nnf<'c>) -> Option<()> {
        if workload_only(n) {
            self.workload.push(n);
            return Some(());
        }
        match n {
            Nnf::Const(false) => return None,
            Nnf::Const(true) => {}
            Nnf::Atom(p, neg) => match atom(p, *neg) {
                Some((dim, c, exact)) => {
                    let lossless = and_into(&mut self.conj, dim, c);
                    if !(exact && lossless) {
                        self.exact = false;
                        self.residual.push(n);
                    }
                }
                None => {
                    self.exact = false;
                    self.residual.push(n);
                }
            },
            Nnf::Or(branches) => {
                let mut merged: Option<Conj> = None;
                for b in branches {
                    let Some(bs) = split(b) else { continue };
                    merged = Some(match merged {
                        None => bs.conj,
                        Some(m) => or_merge(&m, &bs.conj),
                    });
                }
                let merged = merged?;
                for (dim, c) in merged {
                    and_into(&mut self.conj, dim, c);
                }
                self.exact = false;
                self.residual.push(n);
            }
            Nnf::And(parts) => {
                for p in parts {
                    self.add(p)?;
                }
            }
        }
        Some(())
    }
}

/// Whether every comparison in `n` reads only the container identity.
pub(super) fn workload_only(n: &Nnf<'_>) -> bool {
    match n {
        Nnf::Const(_) => false,
        Nnf::Atom(p, _) => crate::scope::is_workload_field(&p.field),
        Nnf::And(parts) | Nnf::Or(parts) => parts.iter().all(workload_only),
    }
}

/// `n` as a condition again (for evaluating a workload part on its own).
pub(super) fn to_cond(n: &Nnf<'_>) -> Cond {
    match n {
        Nnf::Const(true) => Cond::And(Vec::new()),
        Nnf::Const(false) => Cond::Or(Vec::new()),
        Nnf::Atom(p, neg) => {
            let c = Cond::Pred(Box::new((*p).clone()));
            if *neg {
                Cond::Not(Box::new(c))
            } else {
                c
            }
        }
        Nnf::And(parts) => Cond::And(parts.iter().map(to_cond).collect()),
        Nnf::Or(parts) => Cond::Or(parts.iter().map(to_cond).collect()),
    }
}

pub(super) fn conj_text(parts: &[&Nnf<'_>]) -> String {
    parts
        .iter()
        .map(|r| match r {
            Nnf::Or(_) => format!("({r})"),
            _ => r.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" and ")
}
