//! Typed values out of the positioned YAML tree: strings, string lists, booleans, keywords and
//! the key/value entries of an item (unknown keys reported with the nearest valid one), plus
//! the checks on names, durations and ATT&CK technique ids.

use super::{Reader, Text};
use crate::diag::Loc;
use crate::suggest;
use crate::yaml::{Node, NodeValue};

/// True for a name usable for a list or macro: a letter or `_`, then letters, digits, `_`, `-`.
pub(super) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `10s`, `2m`, `1h` or plain seconds.
pub(super) fn parse_duration(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// True for an ATT&CK technique id: `T1234` or `T1234.567`.
fn valid_technique(id: &str) -> bool {
    let b = id.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b'T' && digits(&b[1..]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..]),
        _ => false,
    }
}

impl Reader<'_, '_> {
    pub(super) fn loc(&self, node: &Node) -> Loc {
        Loc::new(self.file, node.at)
    }

    pub(super) fn error(&mut self, node: &Node, message: String, hint: Option<String>) {
        let loc = self.loc(node);
        self.diags.error(loc, message, hint);
    }

    pub(super) fn text(&mut self, node: &Node, what: &str) -> Option<Text> {
        match node.as_scalar() {
            Some(value) if !node.is_null() => Some(Text {
                value: value.to_string(),
                loc: self.loc(node),
            }),
            _ => {
                self.error(
                    node,
                    format!(
                        "{what} must be a non-empty text value, found {}",
                        if node.is_null() {
                            "nothing"
                        } else {
                            node.describe()
                        }
                    ),
                    None,
                );
                None
            }
        }
    }

    pub(super) fn strings(&mut self, node: &Node, what: &str) -> Option<Vec<Text>> {
        match &node.value {
            NodeValue::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.push(self.text(item, &format!("each item of {what}"))?);
                }
                Some(out)
            }
            _ if node.is_null() => Some(Vec::new()),
            _ => {
                self.error(
                    node,
                    format!("{what} must be a list, found {}", node.describe()),
                    Some("write it as [a, b] or as lines starting with '- '".into()),
                );
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.as_scalar() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => {
                self.error(node, format!("{what} must be true or false"), None);
                None
            }
        }
    }

    pub(super) fn word<T>(
        &mut self,
        node: &Node,
        what: &str,
        parse: fn(&str) -> Option<T>,
        choices: String,
    ) -> Option<T> {
        let text = node.as_scalar().unwrap_or_default();
        match parse(text) {
            Some(v) => Some(v),
            None => {
                let valid: Vec<&str> = choices.split('|').collect();
                let hint = suggest::hint(text, valid.iter().copied())
                    .map(|h| format!("{h} one of {choices}"))
                    .unwrap_or_else(|| format!("use one of {choices}"));
                self.error(node, format!("invalid {what} '{text}'"), Some(hint));
                None
            }
        }
    }

    /// The ATT&CK technique ids among `texts`; each text that is not one is reported and
    /// clears `ok`.
    pub(super) fn techniques(&mut self, texts: Vec<Text>, ok: &mut bool) -> Vec<String> {
        let mut ids = Vec::new();
        for t in texts {
            if valid_technique(&t.value) {
                ids.push(t.value);
            } else {
                self.diags.error(
                    t.loc,
                    format!("'{}' is not an ATT&CK technique id", t.value),
                    Some("write e.g. T1003 or T1003.008".into()),
                );
                *ok = false;
            }
        }
        ids
    }

    /// The entries of a mapping, with unknown and duplicate keys reported.
    pub(super) fn entries<'n>(
        &mut self,
        node: &'n Node,
        allowed: &[&str],
        what: &str,
    ) -> Vec<(&'n str, &'n Node, &'n Node)> {
        let NodeValue::Map(entries) = &node.value else {
            return Vec::new();
        };
        let mut out: Vec<(&str, &Node, &Node)> = Vec::new();
        for (k, v) in entries {
            let key = k.as_scalar().unwrap_or_default();
            if !allowed.contains(&key) {
                let hint = suggest::hint(key, allowed.iter().copied())
                    .unwrap_or_else(|| format!("valid keys: {}", allowed.join(", ")));
                self.error(k, format!("unknown key '{key}' in {what}"), Some(hint));
                continue;
            }
            if out.iter().any(|(seen, _, _)| *seen == key) {
                self.error(
                    k,
                    format!("duplicate key '{key}' in {what}"),
                    Some("keep only one".into()),
                );
                continue;
            }
            out.push((key, k, v));
        }
        out
    }
}

/// The value of `key` among the entries [`Reader::entries`] returned.
pub(super) fn value_of<'n>(
    entries: &[(&'n str, &'n Node, &'n Node)],
    key: &str,
) -> Option<&'n Node> {
    entries
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, _, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_ids_and_names() {
        assert!(valid_technique("T1003"));
        assert!(valid_technique("T1003.008"));
        assert!(!valid_technique("T1003.8"));
        assert!(!valid_technique("TA0001"));
        assert!(valid_name("shell_binaries"));
        assert!(!valid_name("process.name"));
        assert!(!valid_name("1x"));
    }
}
