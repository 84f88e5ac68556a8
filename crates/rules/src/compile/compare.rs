//! One comparison to a predicate: the operator checked against the field's type, the values
//! parsed as the field's type (strings, globs, numbers, booleans, addresses, networks, event
//! kinds), and every value that does not parse reported where it was written.

use super::expr::Val;
use super::{Compiler, CondSrc};
use crate::ast::{Name, Op, Operand};
use crate::cidr::{canonical, Cidr};
use crate::cond::{CmpOp, Cond, Test};
use crate::fields::Base;
use crate::glob::Glob;
use crate::kinds::{self, KindSet};
use crate::suggest;
use shrike_event::EventKind;

fn allowed_ops(base: Base) -> &'static [Op] {
    match base {
        Base::Str => &[
            Op::Eq,
            Op::Ne,
            Op::In,
            Op::Contains,
            Op::StartsWith,
            Op::EndsWith,
            Op::Glob,
        ],
        Base::Num => &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::In],
        Base::Bool => &[Op::Eq, Op::Ne],
        Base::Addr => &[Op::Eq, Op::Ne, Op::In, Op::Cidr],
        Base::Kind => &[Op::Eq, Op::Ne, Op::In],
    }
}

/// Parses an integer: decimal (optionally negative), `0x…` hex, `0o…` octal or `0b…` binary.
fn parse_number(text: &str) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = if let Some(h) = digits.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = digits.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else {
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i64>().ok()?
    };
    Some(if neg { -value } else { value })
}

impl Compiler<'_, '_> {
    pub(super) fn compare(
        &mut self,
        field: &Name,
        op: Op,
        op_at: usize,
        value: &Operand,
        src: &CondSrc,
    ) -> Option<Cond> {
        let (fref, ty) = self.field(field, src)?;
        let op_loc = src.loc(op_at);
        if !allowed_ops(ty.base).contains(&op) {
            let ops: Vec<&str> = allowed_ops(ty.base).iter().map(|o| o.as_str()).collect();
            let hint = if op == Op::Cidr {
                "cidr applies to address fields: network.saddr, network.daddr, process.stdio_sockets.peer_addr".to_string()
            } else {
                format!("a {} field takes {}", ty.describe(), ops.join(" "))
            };
            self.diags.error(
                op_loc,
                format!(
                    "operator '{}' does not apply to {} field '{}'",
                    op.as_str(),
                    ty.describe(),
                    field.text
                ),
                Some(hint),
            );
            return None;
        }
        let vals = self.values(op, value, src)?;
        let single =
            matches!(op, Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge) || ty.base == Base::Bool;
        if single && vals.len() != 1 {
            let hint = if op == Op::Ne {
                "use `not … in (…)` to exclude several values"
            } else {
                "compare with one value"
            };
            self.diags.error(
                op_loc,
                format!("'{}' takes a single value, found a list", op.as_str()),
                Some(hint.into()),
            );
            return None;
        }
        let floc = src.loc(field.at);
        match ty.base {
            Base::Kind => self.kind_compare(op, &vals),
            Base::Str => {
                let texts = || vals.iter().map(|v| Box::<str>::from(v.text.as_str()));
                let test = match op {
                    Op::Eq if vals.len() == 1 => Test::StrEq(vals[0].text.as_str().into()),
                    Op::Eq | Op::In => Test::StrIn(texts().collect()),
                    Op::Ne => Test::StrNe(vals[0].text.as_str().into()),
                    Op::Contains => Test::Contains(texts().collect()),
                    Op::StartsWith => Test::StartsWith(texts().collect()),
                    Op::EndsWith => Test::EndsWith(texts().collect()),
                    Op::Glob => {
                        let mut globs = Vec::new();
                        let mut ok = true;
                        for v in &vals {
                            match Glob::new(&v.text) {
                                Ok(g) => globs.push(g),
                                Err(e) => {
                                    self.diags.error(
                                        v.loc,
                                        format!("invalid glob: {e}"),
                                        Some("escape a literal '[' as '\\['".into()),
                                    );
                                    ok = false;
                                }
                            }
                        }
                        if !ok {
                            return None;
                        }
                        Test::Glob(globs.into())
                    }
                    _ => return None,
                };
                Some(self.pred(fref, test, floc))
            }
            Base::Num => {
                let mut nums = Vec::new();
                for v in &vals {
                    match parse_number(&v.text) {
                        Some(n) => nums.push(n),
                        None => self.diags.error(
                            v.loc,
                            format!(
                                "'{}' is not a number (field '{}' is a {})",
                                v.text,
                                field.text,
                                ty.describe()
                            ),
                            Some("write e.g. 0, 1000, 0x10 or 0o4000".into()),
                        ),
                    }
                }
                if nums.len() != vals.len() {
                    return None;
                }
                let test = match op {
                    Op::Eq if nums.len() == 1 => Test::Num(CmpOp::Eq, nums[0]),
                    Op::Eq | Op::In => Test::NumIn(nums.into_iter().collect()),
                    Op::Ne => Test::Num(CmpOp::Ne, nums[0]),
                    Op::Lt => Test::Num(CmpOp::Lt, nums[0]),
                    Op::Le => Test::Num(CmpOp::Le, nums[0]),
                    Op::Gt => Test::Num(CmpOp::Gt, nums[0]),
                    Op::Ge => Test::Num(CmpOp::Ge, nums[0]),
                    _ => return None,
                };
                Some(self.pred(fref, test, floc))
            }
            Base::Bool => {
                let v = &vals[0];
                let b = match v.text.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        self.diags.error(
                            v.loc,
                            format!(
                                "'{}' is not true or false (field '{}' is a boolean)",
                                v.text, field.text
                            ),
                            None,
                        );
                        return None;
                    }
                };
                Some(self.pred(fref, Test::Bool(if op == Op::Ne { !b } else { b }), floc))
            }
            Base::Addr => {
                if op == Op::Cidr {
                    let mut nets = Vec::new();
                    for v in &vals {
                        match Cidr::parse(&v.text) {
                            Ok(n) => nets.push(n),
                            Err(e) => {
                                self.diags
                                    .error(v.loc, format!("invalid network: {e}"), e.hint())
                            }
                        }
                    }
                    if nets.len() != vals.len() {
                        return None;
                    }
                    return Some(self.pred(fref, Test::Cidr(nets.into()), floc));
                }
                let mut addrs = Vec::new();
                for v in &vals {
                    match v.text.parse::<std::net::IpAddr>() {
                        Ok(a) => addrs.push(canonical(a)),
                        Err(_) => {
                            let hint = if v.text.contains('/') {
                                "use `cidr` to compare with a network"
                            } else {
                                "write e.g. 10.0.0.1 or ::1"
                            };
                            self.diags.error(
                                v.loc,
                                format!("'{}' is not an IP address", v.text),
                                Some(hint.into()),
                            );
                        }
                    }
                }
                if addrs.len() != vals.len() {
                    return None;
                }
                let test = match op {
                    Op::Eq if addrs.len() == 1 => Test::AddrEq(addrs[0]),
                    Op::Eq | Op::In => Test::AddrIn(addrs.into_iter().collect()),
                    Op::Ne => Test::AddrNe(addrs[0]),
                    _ => return None,
                };
                Some(self.pred(fref, test, floc))
            }
        }
    }

    fn kind_compare(&mut self, op: Op, vals: &[Val]) -> Option<Cond> {
        let mut set = KindSet::EMPTY;
        let mut ok = true;
        for v in vals {
            match EventKind::from_name(&v.text) {
                Some(k) => set = set.union(kinds::one(k)),
                None => {
                    let hint = suggest::hint(&v.text, EventKind::ALL.iter().map(|k| k.as_str()));
                    self.diags
                        .error(v.loc, format!("unknown event kind '{}'", v.text), hint);
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        Some(Cond::Kind(if op == Op::Ne {
            KindSet::ALL.without(set)
        } else {
            set
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_every_base() {
        assert_eq!(parse_number("1000"), Some(1000));
        assert_eq!(parse_number("-1"), Some(-1));
        assert_eq!(parse_number("0x10"), Some(16));
        assert_eq!(parse_number("0o4000"), Some(2048));
        assert_eq!(parse_number("0b101"), Some(5));
        assert_eq!(parse_number("12a"), None);
        assert_eq!(parse_number("+1"), None);
    }
}
