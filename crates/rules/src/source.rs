//! Policy sources as text, and the mapping from an offset inside a YAML scalar back to a line and
//! column of the file, so that an error inside a condition points at the offending token.
//!
//! YAML hands us a scalar's *value* (folded, unquoted, unescaped) and the position where the
//! scalar starts. [`SourceFile::scalar_map`] aligns the value with the raw text after that
//! position: every non-blank character of the value is found again in order, skipping only
//! blanks, line breaks, quotes and backslashes. This is exact for plain, single- and
//! double-quoted, literal (`|`) and folded (`>`) scalars; for a character written as an escape
//! (`\x41`, `\u00e9`) the position falls back to the last aligned character — the documented
//! approximation.

/// One policy file (or in-memory source) with its line table.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name errors are reported with, e.g. `policies/default/persistence.yaml`.
    pub name: String,
    pub text: String,
    chars: Vec<char>,
    /// The char index at which each line starts.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let chars: Vec<char> = text.chars().collect();
        let mut line_starts = vec![0];
        for (i, c) in chars.iter().enumerate() {
            if *c == '\n' {
                line_starts.push(i + 1);
            }
        }
        SourceFile {
            name: name.into(),
            text,
            chars,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of the char index `at`.
    pub fn line_col(&self, at: usize) -> (u32, u32) {
        let line = match self.line_starts.binary_search(&at) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        (line as u32 + 1, at.saturating_sub(start) as u32 + 1)
    }

    /// For each byte offset of `value` (and one past its end), the char index in this file where
    /// that part of the value was written, given that the scalar starts at char index `start`.
    pub fn scalar_map(&self, start: usize, value: &str) -> Vec<usize> {
        let mut map = Vec::with_capacity(value.len() + 1);
        let mut next = start.min(self.chars.len());
        let mut last = next;
        for ch in value.chars() {
            let at = if ch.is_whitespace() {
                next
            } else {
                match self.find_from(next, ch) {
                    Some(found) => {
                        next = found + 1;
                        last = found;
                        found
                    }
                    None => last,
                }
            };
            for _ in 0..ch.len_utf8() {
                map.push(at);
            }
        }
        map.push(next);
        map
    }

    /// The first index at or after `from` holding `ch`, skipping only what YAML may put between
    /// two characters of a value (blanks, line breaks, quotes, escape backslashes).
    fn find_from(&self, from: usize, ch: char) -> Option<usize> {
        let mut i = from;
        while let Some(&c) = self.chars.get(i) {
            if c == ch {
                return Some(i);
            }
            if !(c.is_whitespace() || c == '\'' || c == '"' || c == '\\') {
                return None;
            }
            i += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based() {
        let src = SourceFile::new("f", "ab\ncd\n");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(1), (1, 2));
        assert_eq!(src.line_col(3), (2, 1));
        assert_eq!(src.line_col(4), (2, 2));
    }

    #[test]
    fn folded_scalar_offsets_map_to_their_lines() {
        let text = "c: >\n  kind = a\n  and x\n";
        let src = SourceFile::new("f", text);
        // yaml-rust2 marks a block scalar at its first content character.
        let start = text.find("kind").unwrap();
        let value = "kind = a and x\n";
        let map = src.scalar_map(start, value);
        let x = value.find('x').unwrap();
        assert_eq!(src.line_col(map[x]), (3, 7));
        let and = value.find("and").unwrap();
        assert_eq!(src.line_col(map[and]), (3, 3));
    }

    #[test]
    fn quoted_scalar_skips_quotes_and_escapes() {
        let text = r#"c: "a \"b\" c""#;
        let src = SourceFile::new("f", text);
        let map = src.scalar_map(3, r#"a "b" c"#);
        assert_eq!(src.line_col(map[6]), (1, 13));
    }
}
