//! Path globs for the `glob` operator, compiled once and matched without allocating.
//!
//! Syntax (shell path globs): `*` matches any run of characters except `/`; `**` matches any
//! run including `/`; `?` matches one character except `/`; `[abc]`, `[a-z]` and `[!abc]` (or
//! `[^abc]`) match one character from (or not from) a class; `\` makes the next character
//! literal. The whole string must match. Matching follows git's wildmatch: a `*` that would have
//! to cross a `/` gives up back to the nearest `**`, which keeps the work polynomial.

use std::fmt;

/// A compiled glob pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    source: Box<str>,
    toks: Box<[Tok]>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `*` (false) or `**` (true)
    Star(bool),
    Class {
        negated: bool,
        ranges: Box<[(char, char)]>,
    },
}

/// Why a pattern is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("unclosed '[' at character {at} of glob '{pattern}'")]
    UnclosedClass { pattern: String, at: usize },
    #[error("glob '{pattern}' ends with a lone '\\'")]
    TrailingEscape { pattern: String },
    #[error("empty character class '[]' in glob '{pattern}'")]
    EmptyClass { pattern: String },
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Res {
    Match,
    NoMatch,
    AbortAll,
    AbortToStarStar,
}

impl Glob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if chars.get(i + 1) == Some(&'*') {
                        toks.push(Tok::Star(true));
                        i += 2;
                        while chars.get(i) == Some(&'*') {
                            i += 1;
                        }
                    } else {
                        toks.push(Tok::Star(false));
                        i += 1;
                    }
                }
                '?' => {
                    toks.push(Tok::One);
                    i += 1;
                }
                '\\' => match chars.get(i + 1) {
                    Some(c) => {
                        toks.push(Tok::Lit(*c));
                        i += 2;
                    }
                    None => {
                        return Err(GlobError::TrailingEscape {
                            pattern: pattern.to_string(),
                        })
                    }
                },
                '[' => {
                    let start = i;
                    i += 1;
                    let negated = matches!(chars.get(i), Some('!') | Some('^'));
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(&c) = chars.get(i) else {
                            return Err(GlobError::UnclosedClass {
                                pattern: pattern.to_string(),
                                at: start + 1,
                            });
                        };
                        if c == ']' && !first {
                            i += 1;
                            break;
                        }
                        if c == ']' && first && chars.get(i + 1).is_none() {
                            return Err(GlobError::EmptyClass {
                                pattern: pattern.to_string(),
                            });
                        }
                        first = false;
                        let lo = c;
                        if chars.get(i + 1) == Some(&'-')
                            && chars.get(i + 2).is_some_and(|c| *c != ']')
                        {
                            let hi = chars[i + 2];
                            ranges.push((lo.min(hi), lo.max(hi)));
                            i += 3;
                        } else {
                            ranges.push((lo, lo));
                            i += 1;
                        }
                    }
                    toks.push(Tok::Class {
                        negated,
                        ranges: ranges.into_boxed_slice(),
                    });
                }
                c => {
                    toks.push(Tok::Lit(c));
                    i += 1;
                }
            }
        }
        Ok(Glob {
            source: pattern.into(),
            toks: toks.into_boxed_slice(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The literal text every match starts with (everything before the first wildcard).
    pub fn literal_prefix(&self) -> String {
        self.toks
            .iter()
            .map_while(|t| match t {
                Tok::Lit(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// True when the pattern has no wildcard at all (it matches exactly one string).
    pub fn is_literal(&self) -> bool {
        self.toks.iter().all(|t| matches!(t, Tok::Lit(_)))
    }

    /// True when the pattern is a literal prefix followed by a single trailing `**`, i.e. it is
    /// exactly "starts with the prefix".
    pub fn is_prefix_pattern(&self) -> bool {
        match self.toks.split_last() {
            Some((Tok::Star(true), rest)) => rest.iter().all(|t| matches!(t, Tok::Lit(_))),
            _ => false,
        }
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        match_here(&self.toks, text) == Res::Match
    }
}

fn match_here(toks: &[Tok], text: &str) -> Res {
    let mut t = text;
    for (i, tok) in toks.iter().enumerate() {
        match tok {
            Tok::Lit(c) => {
                let mut it = t.chars();
                if it.next() != Some(*c) {
                    return Res::NoMatch;
                }
                t = it.as_str();
            }
            Tok::One => {
                let mut it = t.chars();
                match it.next() {
                    Some(c) if c != '/' => t = it.as_str(),
                    _ => return Res::NoMatch,
                }
            }
            Tok::Class { negated, ranges } => {
                let mut it = t.chars();
                let Some(c) = it.next() else {
                    return Res::NoMatch;
                };
                let inside = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                if inside == *negated || c == '/' {
                    return Res::NoMatch;
                }
                t = it.as_str();
            }
            Tok::Star(double) => {
                let rest = &toks[i + 1..];
                if rest.is_empty() {
                    return if *double || !t.contains('/') {
                        Res::Match
                    } else {
                        Res::NoMatch
                    };
                }
                let mut offsets = t.char_indices().map(|(o, _)| o).chain([t.len()]);
                loop {
                    let Some(o) = offsets.next() else {
                        return Res::AbortAll;
                    };
                    let r = match_here(rest, &t[o..]);
                    if r != Res::NoMatch && (!*double || r != Res::AbortToStarStar) {
                        return r;
                    }
                    if !*double && t[o..].starts_with('/') {
                        return Res::AbortToStarStar;
                    }
                }
            }
        }
    }
    if t.is_empty() {
        Res::Match
    } else {
        Res::NoMatch
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().matches(t)
    }

    #[test]
    fn star_stays_within_one_path_component() {
        assert!(m(
            "/home/*/.ssh/authorized_keys",
            "/home/ann/.ssh/authorized_keys"
        ));
        assert!(!m(
            "/home/*/.ssh/authorized_keys",
            "/home/a/b/.ssh/authorized_keys"
        ));
        assert!(m("/etc/cron*", "/etc/cron.d"));
        assert!(!m("/etc/cron*", "/etc/cron.d/x"));
        assert!(m("*.so", "libx.so"));
        assert!(!m("*.so", "/lib/libx.so"));
    }

    #[test]
    fn double_star_crosses_slashes() {
        assert!(m(
            "/sys/fs/cgroup/**/release_agent",
            "/sys/fs/cgroup/a/b/release_agent"
        ));
        assert!(m("/tmp/**", "/tmp/a/b"));
        assert!(m("**/.ssh/id_*", "/root/.ssh/id_rsa"));
        assert!(!m("**/.ssh/id_*", "/root/.ssh/x/id_rsa"));
    }

    #[test]
    fn classes_questions_and_escapes() {
        assert!(m("/dev/sd[a-z]", "/dev/sdb"));
        assert!(!m("/dev/sd[!a-c]", "/dev/sdb"));
        assert!(m("/dev/sd[!a-c]", "/dev/sdx"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a/c"));
        assert!(m(r"a\*c", "a*c"));
        assert!(!m(r"a\*c", "abc"));
        assert!(m("é?", "éü"));
    }

    #[test]
    fn invalid_patterns_are_errors() {
        assert!(matches!(
            Glob::new("/dev/[a-"),
            Err(GlobError::UnclosedClass { .. })
        ));
        assert!(matches!(
            Glob::new("x\\"),
            Err(GlobError::TrailingEscape { .. })
        ));
    }

    #[test]
    fn prefixes_for_pushdown() {
        let g = Glob::new("/home/*/.ssh/x").unwrap();
        assert_eq!(g.literal_prefix(), "/home/");
        assert!(!g.is_literal());
        assert!(Glob::new("/etc/x").unwrap().is_literal());
        assert!(Glob::new("/etc/**").unwrap().is_prefix_pattern());
        assert!(!Glob::new("/etc/*").unwrap().is_prefix_pattern());
    }

    #[test]
    fn pathological_pattern_finishes() {
        let text = "a".repeat(200);
        assert!(!m("*a*a*a*a*a*a*a*a*b", &text));
        assert!(!m("**a**a**a**a**a**a**b", &text));
    }
}
