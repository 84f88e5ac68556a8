//! Condition text to [`Expr`]: recursive descent with `or` binding loosest, then `and`, then
//! `not`, and parentheses. Nesting is bounded so hostile input cannot exhaust the stack.
//!
//! ```text
//! expr    := and ('or' and)*
//! and     := unary ('and' unary)*
//! unary   := 'not' unary | '(' expr ')' | pred
//! pred    := NAME op operand | NAME 'exists' | NAME           (macro or boolean field)
//! op      := = | == | != | < | <= | > | >= | in | contains | startswith | endswith | glob | cidr
//! operand := value | '(' value (',' value)* ','? ')'           (after `in`, a bare list name too)
//! ```

use crate::ast::{Expr, Lit, Name, Op, Operand};
use crate::lexer::{lex, Tok, Token};

/// Deepest allowed nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 64;

/// A syntax error at a byte offset of the condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub at: usize,
    pub message: String,
    pub hint: Option<String>,
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "contains",
    "startswith",
    "endswith",
    "glob",
    "cidr",
    "exists",
];

/// Whether `word` is a keyword of the condition language (a value spelled like one must be
/// quoted).
pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

struct Parser<'t> {
    toks: &'t [Token],
    pos: usize,
    end: usize,
}

/// Parses a whole condition.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let toks = lex(text).map_err(|e| ParseError {
        at: e.at,
        message: e.to_string(),
        hint: None,
    })?;
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        end: text.len(),
    };
    if toks.is_empty() {
        return Err(ParseError {
            at: 0,
            message: "empty condition".into(),
            hint: Some("write e.g. `kind = process_exec and process.name = nc`".into()),
        });
    }
    let expr = p.expr(0)?;
    if let Some(t) = p.peek() {
        return Err(p.unexpected(t, "'and', 'or' or the end of the condition"));
    }
    Ok(expr)
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
        Tok::Eq => "'='".into(),
        Tok::Ne => "'!='".into(),
        Tok::Lt => "'<'".into(),
        Tok::Le => "'<='".into(),
        Tok::Gt => "'>'".into(),
        Tok::Ge => "'>='".into(),
        Tok::Word(w) => format!("'{w}'"),
        Tok::Str(s) => format!("string \"{s}\""),
    }
}

impl<'t> Parser<'t> {
    fn peek(&self) -> Option<&'t Token> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<&'t Token> {
        let t = self.toks.get(self.pos);
        self.pos += 1;
        t
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w == word)
    }

    fn unexpected(&self, t: &Token, expected: &str) -> ParseError {
        ParseError {
            at: t.start,
            message: format!("unexpected {}: expected {expected}", describe(&t.tok)),
            hint: None,
        }
    }

    fn eof(&self, expected: &str) -> ParseError {
        ParseError {
            at: self.end,
            message: format!("condition ends early: expected {expected}"),
            hint: None,
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut items = vec![self.and(depth)?];
        while self.peek_word("or") {
            self.next();
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut items = vec![self.unary(depth)?];
        while self.peek_word("and") {
            self.next();
            items.push(self.unary(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if depth >= MAX_DEPTH {
            let at = self.peek().map(|t| t.start).unwrap_or(self.end);
            return Err(ParseError {
                at,
                message: format!("condition nests deeper than {MAX_DEPTH} levels"),
                hint: Some("split it into macros".into()),
            });
        }
        let Some(t) = self.next() else {
            return Err(self.eof("a condition"));
        };
        match &t.tok {
            Tok::Word(w) if w == "not" => Ok(Expr::Not(Box::new(self.unary(depth + 1)?))),
            Tok::LParen => {
                let inner = self.expr(depth + 1)?;
                match self.next() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => Ok(inner),
                    Some(other) => Err(self.unexpected(other, "')'")),
                    None => Err(self.eof("')'")),
                }
            }
            Tok::Word(w) if !is_keyword(w) => self.predicate(Name {
                text: w.clone(),
                at: t.start,
            }),
            _ => Err(self.unexpected(t, "a field, a macro, 'not' or '('")),
        }
    }

    fn predicate(&mut self, field: Name) -> Result<Expr, ParseError> {
        let Some(t) = self.peek() else {
            return Ok(Expr::Ref(field));
        };
        let op = match &t.tok {
            Tok::Eq => Op::Eq,
            Tok::Ne => Op::Ne,
            Tok::Lt => Op::Lt,
            Tok::Le => Op::Le,
            Tok::Gt => Op::Gt,
            Tok::Ge => Op::Ge,
            Tok::Word(w) if w == "exists" => {
                self.next();
                return Ok(Expr::Exists { field });
            }
            Tok::Word(w) => match Op::keyword(w) {
                Some(op) => op,
                None if is_keyword(w) => return Ok(Expr::Ref(field)),
                None => {
                    return Err(ParseError {
                        at: t.start,
                        message: format!("expected an operator after '{}', found '{w}'", field.text),
                        hint: Some(
                            "operators: = != < <= > >= in contains startswith endswith glob cidr exists"
                                .into(),
                        ),
                    })
                }
            },
            Tok::Str(_) => {
                return Err(ParseError {
                    at: t.start,
                    message: format!("expected an operator after '{}'", field.text),
                    hint: None,
                })
            }
            _ => return Ok(Expr::Ref(field)),
        };
        let op_at = t.start;
        self.next();
        let value = self.operand(op)?;
        Ok(Expr::Cmp {
            field,
            op,
            op_at,
            value,
        })
    }

    fn literal(&mut self, expected: &str) -> Result<Lit, ParseError> {
        match self.next() {
            Some(Token {
                tok: Tok::Word(w),
                start,
                ..
            }) if !is_keyword(w) => Ok(Lit {
                text: w.clone(),
                quoted: false,
                at: *start,
            }),
            Some(Token {
                tok: Tok::Str(s),
                start,
                ..
            }) => Ok(Lit {
                text: s.clone(),
                quoted: true,
                at: *start,
            }),
            Some(t) => {
                let mut err = self.unexpected(t, expected);
                if let Tok::Word(w) = &t.tok {
                    err.hint = Some(format!("quote '{w}' to use the keyword as a value"));
                }
                Err(err)
            }
            None => Err(self.eof(expected)),
        }
    }

    fn operand(&mut self, op: Op) -> Result<Operand, ParseError> {
        let Some(t) = self.peek() else {
            return Err(self.eof(&format!("a value after '{}'", op.as_str())));
        };
        if t.tok != Tok::LParen {
            return Ok(Operand::One(self.literal("a value")?));
        }
        let open = t.start;
        self.next();
        let mut items = Vec::new();
        loop {
            if let Some(Token {
                tok: Tok::RParen, ..
            }) = self.peek()
            {
                self.next();
                break;
            }
            items.push(self.literal("a list item")?);
            match self.next() {
                Some(Token {
                    tok: Tok::Comma, ..
                }) => {}
                Some(Token {
                    tok: Tok::RParen, ..
                }) => break,
                Some(other) => return Err(self.unexpected(other, "',' or ')'")),
                None => return Err(self.eof("')' to close the list")),
            }
        }
        if items.is_empty() {
            return Err(ParseError {
                at: open,
                message: "empty list".into(),
                hint: Some("a list needs at least one item".into()),
            });
        }
        Ok(Operand::List(items, open))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_or_below_and_below_not() {
        let e = parse("a = 1 or not b = 2 and c").unwrap();
        let Expr::Or(items) = e else {
            panic!("expected or")
        };
        assert!(matches!(items[0], Expr::Cmp { op: Op::Eq, .. }));
        let Expr::And(parts) = &items[1] else {
            panic!("expected and")
        };
        assert!(matches!(parts[0], Expr::Not(_)));
        assert!(matches!(&parts[1], Expr::Ref(n) if n.text == "c"));
    }

    #[test]
    fn lists_exists_and_parentheses() {
        let e = parse("(x in (a, 'b',) and y exists)").unwrap();
        let Expr::And(parts) = e else {
            panic!("expected and")
        };
        let Expr::Cmp {
            value: Operand::List(items, _),
            ..
        } = &parts[0]
        else {
            panic!("expected list")
        };
        assert_eq!(items.len(), 2);
        assert!(items[1].quoted);
        assert!(matches!(parts[1], Expr::Exists { .. }));
        assert!(matches!(
            parse("x in shells").unwrap(),
            Expr::Cmp {
                value: Operand::One(_),
                ..
            }
        ));
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = parse("x = 1 and").unwrap_err();
        assert_eq!(e.at, 9);
        let e = parse("x = 1 y").unwrap_err();
        assert_eq!(
            (e.at, e.message.as_str()),
            (
                6,
                "unexpected 'y': expected 'and', 'or' or the end of the condition"
            )
        );
        let e = parse("x foo 1").unwrap_err();
        assert_eq!(e.at, 2);
        let e = parse("x in ()").unwrap_err();
        assert_eq!(e.message, "empty list");
        let e = parse("x = in").unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("quote 'in' to use the keyword as a value")
        );
        assert!(parse("").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("{}x{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&text).unwrap_err().message.contains("nests deeper"));
        let text = format!("{}x", "not ".repeat(5000));
        assert!(parse(&text).is_err());
    }
}
