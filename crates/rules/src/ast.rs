//! The parsed form of a condition, before names are resolved or types checked. Every node keeps
//! the byte offset of its token in the condition text, for error positions.

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    StartsWith,
    EndsWith,
    Glob,
    Cidr,
}

impl Op {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::Contains => "contains",
            Op::StartsWith => "startswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::Cidr => "cidr",
        }
    }

    /// The word operators, by keyword.
    pub fn keyword(word: &str) -> Option<Op> {
        Some(match word {
            "in" => Op::In,
            "contains" => Op::Contains,
            "startswith" => Op::StartsWith,
            "endswith" => Op::EndsWith,
            "glob" => Op::Glob,
            "cidr" => Op::Cidr,
            _ => return None,
        })
    }
}

/// A name as written (field, macro or list) and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub at: usize,
}

/// A literal value: a bare word or a quoted string.
#[derive(Debug, Clone, PartialEq)]
pub struct Lit {
    pub text: String,
    /// Quoted literals are never taken as list names.
    pub quoted: bool,
    pub at: usize,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    One(Lit),
    /// `(a, b, c)`; bare items naming a list are expanded when compiled.
    List(Vec<Lit>, usize),
}

/// A condition expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp {
        field: Name,
        op: Op,
        op_at: usize,
        value: Operand,
    },
    Exists {
        field: Name,
    },
    /// A bare name: a macro, or a boolean field used as a predicate.
    Ref(Name),
}
