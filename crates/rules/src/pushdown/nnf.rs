//! Negation normal form, specialised to one kind: a condition with exceptions folded in,
//! negations pushed to the leaves and `kind` comparisons decided, plus its rendering as the
//! user-space residual.

use std::fmt;

use shrike_event::EventKind;

use crate::cond::{Cond, Pred};

#[derive(Debug, Clone)]
pub(super) enum Nnf<'c> {
    Const(bool),
    Atom(&'c Pred, bool),
    And(Vec<Nnf<'c>>),
    Or(Vec<Nnf<'c>>),
}

pub(super) fn nnf(c: &Cond, neg: bool, kind: EventKind) -> Nnf<'_> {
    match c {
        Cond::Kind(set) => Nnf::Const(set.contains(kind) != neg),
        Cond::Pred(p) => {
            if p.field.kinds().contains(kind) {
                Nnf::Atom(p, neg)
            } else {
                // The field never exists on this kind: the comparison is false.
                Nnf::Const(neg)
            }
        }
        Cond::Not(x) => nnf(x, !neg, kind),
        Cond::And(cs) | Cond::Or(cs) => {
            let and = matches!(c, Cond::And(_)) != neg;
            let parts = cs.iter().map(|x| nnf(x, neg, kind));
            junction(and, parts)
        }
    }
}

pub(super) fn junction<'c>(and: bool, parts: impl Iterator<Item = Nnf<'c>>) -> Nnf<'c> {
    let mut out = Vec::new();
    for p in parts {
        match p {
            Nnf::Const(b) if b == and => {}
            Nnf::Const(b) => return Nnf::Const(b),
            Nnf::And(inner) if and => out.extend(inner),
            Nnf::Or(inner) if !and => out.extend(inner),
            other => out.push(other),
        }
    }
    match out.len() {
        0 => Nnf::Const(and),
        1 => out.remove(0),
        _ if and => Nnf::And(out),
        _ => Nnf::Or(out),
    }
}

impl fmt::Display for Nnf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Nnf::Const(b) => write!(f, "{b}"),
            Nnf::Atom(p, false) => write!(f, "{p}"),
            Nnf::Atom(p, true) => write!(f, "not {p}"),
            Nnf::And(parts) | Nnf::Or(parts) => {
                let sep = if matches!(self, Nnf::And(_)) {
                    " and "
                } else {
                    " or "
                };
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    match p {
                        Nnf::And(_) | Nnf::Or(_) => write!(f, "({p})")?,
                        _ => write!(f, "{p}")?,
                    }
                }
                Ok(())
            }
        }
    }
}
