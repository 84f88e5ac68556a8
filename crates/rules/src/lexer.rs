//! Splits a condition into tokens, each with its byte offset in the condition text.
//!
//! A bare word runs until blank space or one of `( ) , = < > ' "` (and `!` when it starts `!=`),
//! so paths (`/etc/shadow`), options (`-e`), globs (`*.so`), networks (`10.0.0.0/8`) and
//! capability names need no quotes. Quote a value that contains those characters or that is a
//! keyword (`and or not in contains startswith endswith glob cidr exists`). Quoted strings take
//! `\\`, `\'` and `\"` escapes.

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    LParen,
    RParen,
    Comma,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// A bare word (keywords are words; the parser tells them apart).
    Word(String),
    /// A quoted string's value.
    Str(String),
}

/// A token and where it starts and ends (byte offsets).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// A string that never ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unterminated string: add the closing {quote}")]
pub struct LexError {
    pub at: usize,
    pub quote: char,
}

fn ends_word(c: char, next: Option<char>) -> bool {
    c.is_whitespace()
        || matches!(c, '(' | ')' | ',' | '=' | '<' | '>' | '\'' | '"')
        || (c == '!' && next == Some('='))
}

/// Tokenizes `text`.
pub fn lex(text: &str) -> Result<Vec<Token>, LexError> {
    let mut out = Vec::new();
    let mut it = text.char_indices().peekable();
    while let Some((start, c)) = it.next() {
        let next = it.peek().map(|(_, c)| *c);
        let simple = |tok, len: usize| Token {
            tok,
            start,
            end: start + len,
        };
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(simple(Tok::LParen, 1)),
            ')' => out.push(simple(Tok::RParen, 1)),
            ',' => out.push(simple(Tok::Comma, 1)),
            '=' => {
                if next == Some('=') {
                    it.next();
                    out.push(simple(Tok::Eq, 2));
                } else {
                    out.push(simple(Tok::Eq, 1));
                }
            }
            '!' if next == Some('=') => {
                it.next();
                out.push(simple(Tok::Ne, 2));
            }
            '<' | '>' => {
                let or_equal = next == Some('=');
                if or_equal {
                    it.next();
                }
                let tok = match (c, or_equal) {
                    ('<', false) => Tok::Lt,
                    ('<', true) => Tok::Le,
                    (_, false) => Tok::Gt,
                    (_, true) => Tok::Ge,
                };
                out.push(simple(tok, 1 + usize::from(or_equal)));
            }
            '\'' | '"' => {
                let quote = c;
                let mut value = String::new();
                let mut end = None;
                while let Some((i, ch)) = it.next() {
                    if ch == quote {
                        end = Some(i + 1);
                        break;
                    }
                    if ch == '\\' {
                        match it.peek() {
                            Some((_, e)) if matches!(e, '\\' | '\'' | '"') => {
                                value.push(*e);
                                it.next();
                                continue;
                            }
                            _ => {}
                        }
                    }
                    value.push(ch);
                }
                let Some(end) = end else {
                    return Err(LexError { at: start, quote });
                };
                out.push(Token {
                    tok: Tok::Str(value),
                    start,
                    end,
                });
            }
            _ => {
                let mut word = String::from(c);
                let mut end = start + c.len_utf8();
                while let Some(&(i, ch)) = it.peek() {
                    let mut ahead = text[i..].chars();
                    ahead.next();
                    if ends_word(ch, ahead.next()) {
                        break;
                    }
                    word.push(ch);
                    end = i + ch.len_utf8();
                    it.next();
                }
                out.push(Token {
                    tok: Tok::Word(word),
                    start,
                    end,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        lex(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.into())
    }

    #[test]
    fn paths_options_and_operators_without_spaces() {
        assert_eq!(
            toks("file.path=/etc/shadow and process.args contains -e"),
            vec![
                w("file.path"),
                Tok::Eq,
                w("/etc/shadow"),
                w("and"),
                w("process.args"),
                w("contains"),
                w("-e")
            ]
        );
        assert_eq!(
            toks("a!=b c>=1 d<2 (x,'y z')"),
            vec![
                w("a"),
                Tok::Ne,
                w("b"),
                w("c"),
                Tok::Ge,
                w("1"),
                w("d"),
                Tok::Lt,
                w("2"),
                Tok::LParen,
                w("x"),
                Tok::Comma,
                Tok::Str("y z".into()),
                Tok::RParen
            ]
        );
    }

    #[test]
    fn offsets_and_escapes() {
        let t = lex(r#"x = "a\"b""#).unwrap();
        assert_eq!(t[2].tok, Tok::Str("a\"b".into()));
        assert_eq!((t[2].start, t[2].end), (4, 10));
        assert_eq!(
            lex("x = 'open").unwrap_err(),
            LexError { at: 4, quote: '\'' }
        );
        assert_eq!(toks("a!b"), vec![w("a!b")]);
    }
}
