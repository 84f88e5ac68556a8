//! The compiled condition: names resolved, literals typed and pre-built into hash sets, prefix
//! lists and globs, ready to evaluate against an event without allocating.
//!
//! List-valued fields (`process.args`, `ancestors.binary`, `file.access`, …) are existential:
//! a comparison is true when **any** element satisfies it, and false when the list is empty.
//! So `ancestors.name = nginx` means "some ancestor is nginx", `not ancestors.name = nginx`
//! means "no ancestor is nginx", and `ancestors.name != nginx` means "some ancestor is not
//! nginx" (rarely what you want). A comparison on a field the event does not have (no parent, no
//! `file` object, an unset env variable) is false; `not` of it is true.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use shrike_event::Event;

use crate::cidr::{canonical, Cidr};
use crate::diag::Loc;
use crate::fields::{self, Value, FIELDS};
use crate::glob::Glob;
use crate::kinds::KindSet;

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// Which field a predicate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldRef {
    /// An index into [`FIELDS`].
    Table(usize),
    /// `process.env.NAME`.
    Env(Box<str>),
    /// `container.labels.KEY` or `k8s.labels.KEY`.
    Label(fields::LabelOf, Box<str>),
}

impl FieldRef {
    pub fn name(&self) -> String {
        match self {
            FieldRef::Table(i) => FIELDS.get(*i).map(|f| f.name).unwrap_or("?").to_string(),
            FieldRef::Env(n) => format!("{}{n}", fields::ENV_PREFIX),
            FieldRef::Label(of, k) => format!("{}{k}", of.prefix()),
        }
    }

    /// Kinds on which the field can have a value.
    pub fn kinds(&self) -> KindSet {
        match self {
            FieldRef::Table(i) => FIELDS.get(*i).map(|f| f.kinds).unwrap_or(KindSet::EMPTY),
            FieldRef::Env(_) | FieldRef::Label(..) => crate::kinds::PROCESS,
        }
    }

    /// Whether the field is list-valued.
    pub fn is_list(&self) -> bool {
        match self {
            FieldRef::Table(i) => FIELDS.get(*i).is_some_and(|f| f.ty.list),
            FieldRef::Env(_) | FieldRef::Label(..) => false,
        }
    }
}

/// What a predicate checks on each value of its field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Exists,
    Bool(bool),
    StrEq(Box<str>),
    StrNe(Box<str>),
    StrIn(HashSet<Box<str>>),
    Contains(Box<[Box<str>]>),
    StartsWith(Box<[Box<str>]>),
    EndsWith(Box<[Box<str>]>),
    Glob(Box<[Glob]>),
    Num(CmpOp, i64),
    NumIn(HashSet<i64>),
    AddrEq(IpAddr),
    AddrNe(IpAddr),
    AddrIn(HashSet<IpAddr>),
    Cidr(Box<[Cidr]>),
}

fn parse_addr(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(canonical)
}

impl Test {
    fn matches(&self, v: Value<'_>) -> bool {
        match (self, v) {
            (Test::Exists, _) => true,
            (Test::Bool(want), Value::Bool(b)) => *want == b,
            (Test::StrEq(x), Value::Str(s)) => **x == *s,
            (Test::StrNe(x), Value::Str(s)) => **x != *s,
            (Test::StrIn(set), Value::Str(s)) => set.contains(s),
            (Test::Contains(xs), Value::Str(s)) => xs.iter().any(|x| s.contains(&**x)),
            (Test::StartsWith(xs), Value::Str(s)) => xs.iter().any(|x| s.starts_with(&**x)),
            (Test::EndsWith(xs), Value::Str(s)) => xs.iter().any(|x| s.ends_with(&**x)),
            (Test::Glob(gs), Value::Str(s)) => gs.iter().any(|g| g.matches(s)),
            (Test::Num(op, x), Value::Num(n)) => match op {
                CmpOp::Eq => n == *x,
                CmpOp::Ne => n != *x,
                CmpOp::Lt => n < *x,
                CmpOp::Le => n <= *x,
                CmpOp::Gt => n > *x,
                CmpOp::Ge => n >= *x,
            },
            (Test::NumIn(set), Value::Num(n)) => set.contains(&n),
            (Test::AddrEq(a), Value::Str(s)) => parse_addr(s) == Some(*a),
            (Test::AddrNe(a), Value::Str(s)) => parse_addr(s).is_some_and(|x| x != *a),
            (Test::AddrIn(set), Value::Str(s)) => parse_addr(s).is_some_and(|x| set.contains(&x)),
            (Test::Cidr(nets), Value::Str(s)) => {
                parse_addr(s).is_some_and(|x| nets.iter().any(|n| n.contains(x)))
            }
            _ => false,
        }
    }
}

/// One comparison of one field.
#[derive(Debug, Clone)]
pub(crate) struct Pred {
    pub field: FieldRef,
    pub test: Test,
    /// Where it was written (for type and kind errors).
    pub loc: Loc,
}

/// Two comparisons are equal when they test the same field the same way, wherever they were
/// written (a reload compares a rule's meaning, not its line).
impl PartialEq for Pred {
    fn eq(&self, other: &Pred) -> bool {
        self.field == other.field && self.test == other.test
    }
}

impl Pred {
    pub fn eval(&self, e: &Event) -> bool {
        let mut visit = |v: Value<'_>| self.test.matches(v);
        let found = match &self.field {
            // A field does not exist on kinds outside its table entry, whatever the event holds:
            // the compiler and the kernel plan rely on exactly that.
            FieldRef::Table(i) => match FIELDS.get(*i) {
                Some(f) if f.kinds.contains(e.kind) => (f.get)(e, &mut visit),
                _ => None,
            },
            FieldRef::Env(_) if !crate::kinds::PROCESS.contains(e.kind) => None,
            FieldRef::Env(name) => fields::get_env(e, name, &mut visit),
            FieldRef::Label(..) if !crate::kinds::PROCESS.contains(e.kind) => None,
            FieldRef::Label(of, key) => fields::get_label(e, *of, key, &mut visit),
        };
        found.unwrap_or(false)
    }
}

/// A compiled condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Kind(KindSet),
    Pred(Box<Pred>),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

impl Cond {
    pub fn eval(&self, e: &Event) -> bool {
        match self {
            Cond::Kind(set) => set.contains(e.kind),
            Cond::Pred(p) => p.eval(e),
            Cond::Not(c) => !c.eval(e),
            Cond::And(cs) => cs.iter().all(|c| c.eval(e)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(e)),
        }
    }
}

/// A three-valued answer, for events whose `process.binary` or `process.cwd` was cut at the
/// root end (too deep for a record): a comparison that depends on the missing start is
/// `Unknown`, never a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    No,
    Yes,
    Unknown,
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::No => Tri::Yes,
            Tri::Yes => Tri::No,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

/// Whether a string ending in `tail`, and longer than it, could equal `x`.
fn eq_cut(x: &str, tail: &str) -> Tri {
    if x.len() > tail.len() && x.ends_with(tail) {
        Tri::Unknown
    } else {
        Tri::No
    }
}

impl Test {
    /// The test on a string known only by its end `tail` (the start was cut off).
    fn on_cut(&self, tail: &str) -> Tri {
        let any = |xs: &mut dyn Iterator<Item = Tri>| {
            xs.fold(Tri::No, |acc, t| match (acc, t) {
                (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
                (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
                _ => Tri::No,
            })
        };
        match self {
            Test::Exists => Tri::Yes,
            Test::StrEq(x) => eq_cut(x, tail),
            Test::StrNe(x) => eq_cut(x, tail).not(),
            Test::StrIn(set) => any(&mut set.iter().map(|x| eq_cut(x, tail))),
            Test::EndsWith(xs) => any(&mut xs.iter().map(|x| {
                if x.len() <= tail.len() {
                    Tri::of(tail.ends_with(&**x))
                } else {
                    eq_cut(x, tail)
                }
            })),
            Test::Contains(xs) => any(&mut xs.iter().map(|x| {
                if tail.contains(&**x) {
                    Tri::Yes
                } else {
                    Tri::Unknown
                }
            })),
            // A prefix or a pattern is about the part that is missing.
            _ => Tri::Unknown,
        }
    }
}

impl Pred {
    /// Like [`Pred::eval`], three-valued for a cut `process.binary` or `process.cwd`.
    fn eval_cut(&self, e: &Event) -> Tri {
        let cut = match &self.field {
            FieldRef::Table(i) if crate::kinds::PROCESS.contains(e.kind) => {
                match FIELDS.get(*i).map(|f| f.name) {
                    Some("process.binary") if e.process.binary_truncated => {
                        Some(&*e.process.binary)
                    }
                    Some("process.cwd") if e.process.cwd_truncated => Some(&*e.process.cwd),
                    _ => None,
                }
            }
            _ => None,
        };
        match cut {
            Some(tail) => self.test.on_cut(tail),
            None => Tri::of(self.eval(e)),
        }
    }
}

impl Cond {
    /// Like [`Cond::eval`], three-valued for events with a cut path ([`Tri`]).
    pub fn eval_cut(&self, e: &Event) -> Tri {
        match self {
            Cond::Kind(set) => Tri::of(set.contains(e.kind)),
            Cond::Pred(p) => p.eval_cut(e),
            Cond::Not(c) => c.eval_cut(e).not(),
            Cond::And(cs) => cs.iter().fold(Tri::Yes, |acc, c| match acc {
                Tri::No => Tri::No,
                _ => match c.eval_cut(e) {
                    Tri::No => Tri::No,
                    Tri::Unknown => Tri::Unknown,
                    Tri::Yes => acc,
                },
            }),
            Cond::Or(cs) => cs.iter().fold(Tri::No, |acc, c| match acc {
                Tri::Yes => Tri::Yes,
                _ => match c.eval_cut(e) {
                    Tri::Yes => Tri::Yes,
                    Tri::Unknown => Tri::Unknown,
                    Tri::No => acc,
                },
            }),
        }
    }
}

/// Writes a value so that the condition parser reads it back as the same value.
pub(crate) fn quote(text: &str) -> String {
    let bare = !text.is_empty()
        && !text.chars().any(|c| {
            c.is_whitespace() || matches!(c, '(' | ')' | ',' | '=' | '<' | '>' | '\'' | '"' | '!')
        })
        && !crate::parser::is_keyword(text);
    if bare {
        text.to_string()
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn list<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let mut v: Vec<String> = items.into_iter().map(|i| quote(&i.to_string())).collect();
    v.sort();
    if v.len() == 1 {
        v.remove(0)
    } else {
        format!("({})", v.join(", "))
    }
}

impl fmt::Display for Pred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.field.name();
        match &self.test {
            Test::Exists => write!(f, "{name} exists"),
            Test::Bool(true) => write!(f, "{name}"),
            Test::Bool(false) => write!(f, "{name} = false"),
            Test::StrEq(x) => write!(f, "{name} = {}", quote(x)),
            Test::StrNe(x) => write!(f, "{name} != {}", quote(x)),
            Test::StrIn(s) => write!(
                f,
                "{name} in ({})",
                list(s.iter()).trim_start_matches('(').trim_end_matches(')')
            ),
            Test::Contains(xs) => write!(f, "{name} contains {}", list(xs.iter())),
            Test::StartsWith(xs) => write!(f, "{name} startswith {}", list(xs.iter())),
            Test::EndsWith(xs) => write!(f, "{name} endswith {}", list(xs.iter())),
            Test::Glob(gs) => write!(f, "{name} glob {}", list(gs.iter())),
            Test::Num(op, x) => write!(f, "{name} {} {x}", op.as_str()),
            Test::NumIn(s) => {
                let mut v: Vec<i64> = s.iter().copied().collect();
                v.sort_unstable();
                let v: Vec<String> = v.iter().map(i64::to_string).collect();
                write!(f, "{name} in ({})", v.join(", "))
            }
            Test::AddrEq(a) => write!(f, "{name} = {a}"),
            Test::AddrNe(a) => write!(f, "{name} != {a}"),
            Test::AddrIn(s) => write!(
                f,
                "{name} in ({})",
                list(s.iter()).trim_start_matches('(').trim_end_matches(')')
            ),
            Test::Cidr(nets) => write!(f, "{name} cidr {}", list(nets.iter())),
        }
    }
}

/// Renders a kind set as a condition.
pub(crate) fn kind_text(set: KindSet) -> String {
    match set.len() {
        0 => "false".into(),
        1 => format!("kind = {set}"),
        _ => format!("kind in ({set})"),
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn inner(c: &Cond, f: &mut fmt::Formatter<'_>, parent_and: bool) -> fmt::Result {
            match c {
                Cond::Kind(set) => f.write_str(&kind_text(*set)),
                Cond::Pred(p) => write!(f, "{p}"),
                Cond::Not(c) => {
                    f.write_str("not ")?;
                    match **c {
                        Cond::And(_) | Cond::Or(_) => {
                            f.write_str("(")?;
                            inner(c, f, false)?;
                            f.write_str(")")
                        }
                        _ => inner(c, f, true),
                    }
                }
                Cond::And(cs) => {
                    for (i, c) in cs.iter().enumerate() {
                        if i > 0 {
                            f.write_str(" and ")?;
                        }
                        inner(c, f, true)?;
                    }
                    Ok(())
                }
                Cond::Or(cs) => {
                    if parent_and {
                        f.write_str("(")?;
                    }
                    for (i, c) in cs.iter().enumerate() {
                        if i > 0 {
                            f.write_str(" or ")?;
                        }
                        inner(c, f, false)?;
                    }
                    if parent_and {
                        f.write_str(")")?;
                    }
                    Ok(())
                }
            }
        }
        inner(self, f, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_the_lexer() {
        assert_eq!(quote("/etc/shadow"), "/etc/shadow");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("in"), "\"in\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("x\"y"), "\"x\\\"y\"");
    }
}
