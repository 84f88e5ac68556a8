//! Kernel bytes to JSON text without losing evidence.
//!
//! Arguments and paths on Linux are bytes, not UTF-8, and JSON strings must be UTF-8. Replacing
//! bad bytes with U+FFFD would destroy exactly what an investigator needs, so every byte that is
//! not part of valid UTF-8 is written as the four characters `\xNN` (lower-case hex), the
//! convention of Python's `backslashreplace`. Valid UTF-8 passes through unchanged; a literal
//! backslash is not escaped, so the rendering is readable but, for text that already contains
//! `\x`, not reversible — a documented limit.

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

#[cfg(test)]
mod tests {
    use super::*;

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
