//! Atoms to constraints: one comparison on a pushable field as a constraint on its dimension
//! (an include or exclude set, or a range), and whether that constraint says all the
//! comparison says.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::dims::{Dim, PathSet, Role, ValueSet, ACCESS_WORDS, PUSHABLE};
use super::DimConstraint;
use crate::cidr::{canonical, Cidr};
use crate::cond::{CmpOp, FieldRef, Pred, Test};
use crate::fields::FIELDS;

pub(super) fn pushable(field: &FieldRef) -> Option<(Dim, Role)> {
    let FieldRef::Table(i) = field else {
        return None;
    };
    let name = FIELDS.get(*i)?.name;
    PUSHABLE
        .iter()
        .find(|(f, _, _)| *f == name)
        .map(|(_, d, r)| (*d, *r))
}

pub(super) fn paths(
    exact: impl IntoIterator<Item = String>,
    prefixes: impl IntoIterator<Item = String>,
) -> ValueSet {
    ValueSet::Paths(PathSet {
        exact: exact.into_iter().collect(),
        prefixes: prefixes.into_iter().collect(),
        names: BTreeSet::new(),
    })
}

pub(super) fn names(items: impl IntoIterator<Item = String>) -> ValueSet {
    ValueSet::Paths(PathSet {
        names: items.into_iter().collect(),
        ..PathSet::default()
    })
}

/// `(set, positive, exact)`: the constraint an atom puts on its dimension.
pub(super) fn atom_set(test: &Test, role: Role, list: bool) -> Option<(ValueSet, bool, bool)> {
    let strs = |xs: &[Box<str>]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Some(match (role, test) {
        (Role::Whole, Test::StrEq(x)) => (paths([x.to_string()], []), true, true),
        (Role::Whole, Test::StrIn(s)) => (paths(s.iter().map(|x| x.to_string()), []), true, true),
        (Role::Whole, Test::StrNe(x)) if !list => (paths([x.to_string()], []), false, true),
        (Role::Whole, Test::StartsWith(xs)) => {
            if xs.iter().any(|x| x.is_empty()) {
                return None;
            }
            (paths([], strs(xs)), true, true)
        }
        (Role::Whole, Test::EndsWith(xs)) => {
            // `endswith /name` is exactly "the last component is name".
            let mut out = Vec::new();
            for x in xs.iter() {
                let name = x.strip_prefix('/')?;
                if name.is_empty() || name.contains('/') {
                    return None;
                }
                out.push(name.to_string());
            }
            (names(out), true, true)
        }
        (Role::Whole, Test::Glob(gs)) => {
            let mut exact = Vec::new();
            let mut prefixes = Vec::new();
            let mut precise = true;
            for g in gs.iter() {
                if g.is_literal() {
                    exact.push(g.literal_prefix());
                } else {
                    let p = g.literal_prefix();
                    if p.is_empty() {
                        return None;
                    }
                    precise &= g.is_prefix_pattern();
                    prefixes.push(p);
                }
            }
            (paths(exact, prefixes), true, precise)
        }
        (Role::Word, Test::StrEq(x)) => (paths([x.to_string()], []), true, true),
        (Role::Word, Test::StrIn(s)) => (paths(s.iter().map(|x| x.to_string()), []), true, true),
        (Role::Word, Test::Contains(xs)) => {
            // Each access word contains no other, so `contains read` is `= read`.
            if !xs.iter().all(|x| ACCESS_WORDS.contains(&&**x)) {
                return None;
            }
            (paths(strs(xs), []), true, true)
        }
        (Role::Bit(word), Test::Bool(set)) => (paths([word.to_string()], []), *set, true),
        (Role::Name, Test::StrEq(x)) => (names([x.to_string()]), true, true),
        (Role::Name, Test::StrIn(s)) => (names(s.iter().map(|x| x.to_string())), true, true),
        (Role::Name, Test::StrNe(x)) if !list => (names([x.to_string()]), false, true),
        (Role::Num, Test::Num(CmpOp::Eq, x)) => (ValueSet::Numbers([*x].into()), true, true),
        (Role::Num, Test::Num(CmpOp::Ne, x)) if !list => {
            (ValueSet::Numbers([*x].into()), false, true)
        }
        (Role::Num, Test::NumIn(s)) => (ValueSet::Numbers(s.iter().copied().collect()), true, true),
        (Role::Addr, Test::AddrEq(a)) => (host(*a), true, true),
        (Role::Addr, Test::AddrNe(a)) if !list => (host(*a), false, true),
        (Role::Addr, Test::AddrIn(s)) => {
            let mut set = BTreeSet::new();
            for a in s {
                if let ValueSet::Networks(n) = host(*a) {
                    set.extend(n);
                }
            }
            (ValueSet::Networks(set), true, true)
        }
        (Role::Addr, Test::Cidr(nets)) => (
            ValueSet::Networks(nets.iter().copied().collect()),
            true,
            true,
        ),
        _ => return None,
    })
}

pub(super) fn host(a: IpAddr) -> ValueSet {
    let a = canonical(a);
    let prefix = if a.is_ipv4() { 32 } else { 128 };
    ValueSet::Networks([Cidr { addr: a, prefix }].into())
}

/// The constraint an atom (possibly negated) puts on its dimension, and whether it is exact.
pub(super) fn atom(p: &Pred, negated: bool) -> Option<(Dim, DimConstraint, bool)> {
    let (dim, role) = pushable(&p.field)?;
    let list = p.field.is_list();
    let (set, positive, exact) = atom_set(&p.test, role, list)?;
    // `not (x != v)` is `x = v` only for single-valued fields; a negated inexact set says nothing.
    if negated && (!exact || (!positive && list)) {
        return None;
    }
    let include = positive != negated;
    let c = if include {
        DimConstraint {
            include: Some(set),
            exclude: None,
        }
    } else {
        DimConstraint {
            include: None,
            exclude: Some(set),
        }
    };
    Some((dim, c, exact))
}
