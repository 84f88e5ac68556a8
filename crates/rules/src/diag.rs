//! Diagnostics: every problem the loader and compiler find, with the file, line and column it is
//! about, rendered as `file:line:col: message (hint)`.
//!
//! The compiler collects diagnostics instead of stopping at the first, so one `validate` run shows
//! every mistake in a policy. A [`Loc`] is a char index into one source; it becomes a line and
//! column only when the diagnostic is made.

use std::collections::BTreeSet;
use std::fmt;

use shrike_event::text::escape_controls;

use crate::source::SourceFile;

/// A place in a policy source: which file and which character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc {
    /// Index of the source in the list the policy was compiled from.
    pub file: u32,
    /// Char index into that source's text.
    pub at: u32,
}

impl Loc {
    pub fn new(file: usize, at: usize) -> Loc {
        Loc {
            file: file as u32,
            at: at as u32,
        }
    }
}

/// One problem in a policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub struct Diagnostic {
    /// The file name as given to the loader.
    pub file: String,
    /// 1-based line; `None` for problems with the file as a whole (e.g. it cannot be read).
    pub line: Option<u32>,
    /// 1-based column in characters.
    pub col: Option<u32>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, e.g. `did you mean 'process.name'?`.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_controls(&self.file))?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        // Messages quote the policy's own text: a control character there must not reach the
        // terminal (nor split the diagnostic over two lines).
        write!(f, ": {}", escape_controls(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, " ({})", escape_controls(hint))?;
        }
        Ok(())
    }
}

impl Diagnostic {
    /// A problem with a whole file (no position).
    pub fn file_level(file: &str, message: impl Into<String>, hint: Option<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line: None,
            col: None,
            message: message.into(),
            hint,
        }
    }
}

/// Collects diagnostics for a set of sources, deduplicated and in file/line/column order.
pub(crate) struct Diags<'s> {
    sources: &'s [SourceFile],
    found: BTreeSet<(u32, u32, u32, Diagnostic)>,
}

impl<'s> Diags<'s> {
    pub fn new(sources: &'s [SourceFile]) -> Self {
        Diags {
            sources,
            found: BTreeSet::new(),
        }
    }

    pub fn sources(&self) -> &'s [SourceFile] {
        self.sources
    }

    /// Records an error at `loc` with an optional hint.
    pub fn error(&mut self, loc: Loc, message: impl Into<String>, hint: Option<String>) {
        let (file, line, col) = match self.sources.get(loc.file as usize) {
            Some(src) => {
                let (line, col) = src.line_col(loc.at as usize);
                (src.name.clone(), line, col)
            }
            None => (String::from("<unknown>"), 0, 0),
        };
        let diag = Diagnostic {
            file,
            line: Some(line),
            col: Some(col),
            message: message.into(),
            hint,
        };
        self.found.insert((loc.file, line, col, diag));
    }

    /// Records an error at an explicit 1-based line and column of file `file`.
    pub fn error_at_line(&mut self, file: usize, line: u32, col: u32, message: String) {
        let name = self
            .sources
            .get(file)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let diag = Diagnostic {
            file: name,
            line: Some(line),
            col: Some(col),
            message,
            hint: None,
        };
        self.found.insert((file as u32, line, col, diag));
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.found.into_iter().map(|(_, _, _, d)| d).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_col_message_and_hint() {
        let d = Diagnostic {
            file: "policy.yaml".into(),
            line: Some(12),
            col: Some(7),
            message: "unknown field 'proc.nmae'".into(),
            hint: Some("did you mean 'process.name'?".into()),
        };
        assert_eq!(
            d.to_string(),
            "policy.yaml:12:7: unknown field 'proc.nmae' (did you mean 'process.name'?)"
        );
        let whole = Diagnostic::file_level("x.yaml", "cannot read file", None);
        assert_eq!(whole.to_string(), "x.yaml: cannot read file");
    }
}
