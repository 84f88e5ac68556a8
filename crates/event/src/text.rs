//! Kernel bytes to JSON text without losing evidence.
//!
//! Arguments and paths on Linux are bytes, not UTF-8, and JSON strings must be UTF-8. Replacing
//! bad bytes with U+FFFD would destroy exactly what an investigator needs, so every byte that is
//! not part of valid UTF-8 is written as the four characters `\xNN` (lower-case hex), the
//! convention of Python's `backslashreplace`. Valid UTF-8 passes through unchanged; a literal
//! backslash is not escaped, so the rendering is readable but, for text that already contains
//! `\x`, not reversible — a documented limit.
//!
//! Text a person reads (the compact output, `policy test`, diagnostics, logs) must not carry
//! what a terminal acts on: [`escape_controls`] writes control characters (C0, DEL, C1), the
//! Unicode bidi controls that reorder what is shown, and the line and paragraph separators as
//! JSON escapes (`\n`, `\u001b`, `\u202e`), so an argv with `\x1b]0;pwned\x07` or a file name
//! with a newline shows as text on one line. [`TerminalSafe`] makes JSON output do the same for
//! the characters JSON itself leaves raw.

use std::borrow::Cow;
use std::io;

/// Renders bytes as a `String`, escaping each byte that is not valid UTF-8 as `\xNN`.
pub fn lossless_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// Splits a NUL-terminated block (as in `/proc/PID/cmdline` or the kernel's argv area) into
/// arguments. The final NUL ends the last argument rather than starting a new one; empty
/// arguments are kept (`\0` alone is one empty argument), because `prog "" x` is a different command from `prog x`.
pub fn split_nul_separated(block: &[u8]) -> Vec<String> {
    if block.is_empty() {
        return Vec::new();
    }
    let block = block.strip_suffix(&[0]).unwrap_or(block);
    block.split(|&b| b == 0).map(lossless_utf8).collect()
}

/// Whether `c` must not reach a terminal raw: C0 controls and DEL, C1 controls (U+0080–U+009F,
/// some terminals read U+009B as CSI), the bidi controls (U+061C, U+200E, U+200F, U+202A–U+202E,
/// U+2066–U+2069) and the line and paragraph separators (U+2028, U+2029).
pub fn is_unsafe_char(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with every [unsafe](is_unsafe_char) character escaped the way JSON writes it: `\n`,
/// `\r`, `\t`, and `\uXXXX` for the others. Borrowed when there is nothing to escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    escape_where(text, is_unsafe_char)
}

/// Like [`escape_controls`], but keeps line feeds and tabs: for text that is several lines on
/// purpose (a log record with a list of errors).
pub fn escape_controls_keep_lines(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c != '\n' && c != '\t' && is_unsafe_char(c))
}

fn escape_where(text: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    // Most text is printable ASCII: one pass over the bytes, before the per-character search.
    if printable_ascii(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    let Some(first) = text.find(&unsafe_char) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if !unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Whether every byte is printable ASCII (0x20–0x7e). A chunk at a time with no early exit
/// inside it, so the compiler compares a vector of bytes at once (an early-exit `all` is a
/// byte-by-byte loop).
fn printable_ascii(bytes: &[u8]) -> bool {
    let printable = |b: &u8| b.wrapping_sub(0x20) < 0x5f;
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        if !chunk.iter().fold(true, |ok, b| ok & printable(b)) {
            return false;
        }
    }
    chunks.remainder().iter().all(printable)
}

/// A `serde_json` formatter that also writes the [unsafe](is_unsafe_char) characters JSON
/// leaves raw (DEL, C1, bidi controls, U+2028/U+2029) as `\uXXXX`: the same string to a JSON
/// reader, inert on a terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json has already escaped C0 controls, quotes and backslashes.
        writer.write_all(escape_controls(fragment).as_bytes())
    }

    /// Raw JSON (pre-serialized contexts): the characters escaped here can only occur inside
    /// its strings, where `\uXXXX` is the same character.
    fn write_raw_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        writer.write_all(escape_controls(fragment).as_bytes())
    }
}

/// Like [`to_writer_terminal_safe`], into a `String`.
pub fn to_string_terminal_safe<T: serde::Serialize + ?Sized>(
    value: &T,
) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(128);
    to_writer_terminal_safe(&mut out, value)?;
    // serde_json writes UTF-8 only (the formatter escapes, never cuts, a character).
    String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

/// Serializes `value` as one line of JSON with [`TerminalSafe`] escaping.
pub fn to_writer_terminal_safe<W: io::Write, T: serde::Serialize + ?Sized>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(writer, TerminalSafe);
    value.serialize(&mut ser)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19 case 6: terminal sequences, newlines, C1 controls and bidi overrides are
    /// escaped as JSON escapes them; ordinary text (including non-ASCII) is untouched.
    #[test]
    fn control_characters_are_escaped_as_json_escapes_them() {
        assert!(matches!(
            escape_controls("/usr/bin/grüße"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("a\x1b]0;pwned\x07b"),
            "a\\u001b]0;pwned\\u0007b"
        );
        assert_eq!(escape_controls("x\ny\r\tz\x7f"), "x\\ny\\r\\tz\\u007f");
        // The chunked ASCII check: an unsafe byte in a full chunk and in the remainder.
        let long = "a".repeat(70);
        for at in [0, 31, 32, 63, 64, 69] {
            let mut text = long.clone();
            text.replace_range(at..=at, "\x1b");
            assert_eq!(escape_controls(&text).len(), 75, "{at}");
            assert!(!printable_ascii(text.as_bytes()), "{at}");
        }
        assert!(printable_ascii(long.as_bytes()) && printable_ascii(b" ~"));
        assert!(!printable_ascii(b"\x7f") && !printable_ascii("é".as_bytes()));
        assert_eq!(escape_controls("\u{9b}2J \u{85}"), "\\u009b2J \\u0085");
        assert_eq!(
            escape_controls("evil\u{202e}txt.exe\u{2066}\u{2028}"),
            "evil\\u202etxt.exe\\u2066\\u2028"
        );
        assert_eq!(escape_controls_keep_lines("a\nb\x1b"), "a\nb\\u001b");
    }

    /// JSON output: the same strings when read back, with nothing a terminal acts on.
    #[test]
    fn terminal_safe_json_reads_back_the_same_string() {
        let text = "a\x1b[2J\u{9b}\u{202e}\n\u{7f}é";
        let mut out = Vec::new();
        to_writer_terminal_safe(&mut out, &text).unwrap();
        let json = String::from_utf8(out).unwrap();
        assert_eq!(json, "\"a\\u001b[2J\\u009b\\u202e\\n\\u007fé\"");
        assert!(!json.chars().any(is_unsafe_char), "{json:?}");
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), text);
    }

    #[test]
    fn valid_utf8_passes_through_and_bad_bytes_are_escaped() {
        assert_eq!(lossless_utf8(b"/usr/bin/env"), "/usr/bin/env");
        assert_eq!(lossless_utf8("grüße".as_bytes()), "grüße");
        assert_eq!(lossless_utf8(b"a\xffb\xc3"), "a\\xffb\\xc3");
    }

    #[test]
    fn nul_separated_args_keep_empty_middle_args() {
        assert_eq!(
            split_nul_separated(b"env\0true\0a b\0"),
            ["env", "true", "a b"]
        );
        assert_eq!(split_nul_separated(b"x\0\0y\0"), ["x", "", "y"]);
        assert_eq!(split_nul_separated(b"unterminated"), ["unterminated"]);
        assert!(split_nul_separated(b"").is_empty());
        assert_eq!(split_nul_separated(b"\0"), [""]);
    }
}
