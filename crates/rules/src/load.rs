//! Ways to get a [`Policy`]: from in-memory sources (reload, tests), from files, and from the
//! embedded default pack plus extra files. All of them compile everything or nothing, so a bad
//! reload leaves the running policy untouched.

use std::path::Path;

use crate::compile;
use crate::diag::Diagnostic;
use crate::pack;
use crate::policy::Policy;
use crate::source::SourceFile;

impl Policy {
    /// Compiles `(name, text)` sources, in order (lists and macros are shared across sources;
    /// a later source may `append` to an earlier list).
    pub fn compile<N, T>(
        sources: impl IntoIterator<Item = (N, T)>,
    ) -> Result<Policy, Vec<Diagnostic>>
    where
        N: Into<String>,
        T: Into<String>,
    {
        let sources = sources
            .into_iter()
            .map(|(n, t)| SourceFile::new(n, t))
            .collect();
        compile::compile(sources)
    }

    /// Reads and compiles policy files. Unreadable files are reported as diagnostics too.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Policy, Vec<Diagnostic>> {
        Policy::compile(read_files(paths)?)
    }

    /// The embedded default pack alone.
    pub fn default_pack() -> Result<Policy, Vec<Diagnostic>> {
        Policy::compile(pack::sources())
    }

    /// The embedded default pack followed by `paths` (which may use and extend its lists and
    /// macros).
    pub fn default_pack_with<P: AsRef<Path>>(paths: &[P]) -> Result<Policy, Vec<Diagnostic>> {
        let mut sources: Vec<(String, String)> = pack::sources()
            .into_iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        sources.extend(read_files(paths)?);
        Policy::compile(sources)
    }
}

/// Reads each file, collecting every read error.
pub(crate) fn read_files<P: AsRef<Path>>(
    paths: &[P],
) -> Result<Vec<(String, String)>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let name = p.display().to_string();
        match std::fs::read(p) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => out.push((name, text)),
                Err(e) => errors.push(not_utf8(&name, e.as_bytes(), e.utf8_error())),
            },
            Err(e) => errors.push(Diagnostic::file_level(
                &name,
                format!("cannot read policy file: {e}"),
                Some("check the path and its permissions".into()),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A policy file that is not UTF-8, reported at the line and column of its first bad byte.
fn not_utf8(name: &str, bytes: &[u8], err: std::str::Utf8Error) -> Diagnostic {
    let at = err.valid_up_to();
    let before = &bytes[..at];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // The bytes before `at` are valid UTF-8: count characters, as other columns do.
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Diagnostic {
        file: name.to_string(),
        line: Some(line as u32),
        col: Some(col as u32),
        message: format!(
            "the policy file is not UTF-8 text: byte 0x{:02x} cannot start or continue a character",
            bytes[at]
        ),
        hint: Some(
            "save the file as UTF-8; write other bytes in a double-quoted string as \\xNN".into(),
        ),
    }
}
