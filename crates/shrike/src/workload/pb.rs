//! Protocol Buffers wire format: just enough to write CRI requests and read CRI answers.
//!
//! Messages are built with [`Writer`] by field number and read with [`fields`], which yields
//! each field's number and value; the field numbers are those of the CRI `api.proto`
//! (k8s.io/cri-api, package `runtime.v1`), noted where each message is built or read.

use std::collections::BTreeMap;

/// A message being written.
#[derive(Default, Debug, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    fn key(&mut self, field: u32, wire: u8) {
        varint(&mut self.buf, (u64::from(field) << 3) | u64::from(wire));
    }

    pub fn uint(&mut self, field: u32, v: u64) -> &mut Self {
        if v != 0 {
            self.key(field, 0);
            varint(&mut self.buf, v);
        }
        self
    }

    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, 2);
        varint(&mut self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn string(&mut self, field: u32, v: &str) -> &mut Self {
        if v.is_empty() {
            return self;
        }
        self.bytes(field, v.as_bytes())
    }

    pub fn message(&mut self, field: u32, m: &Writer) -> &mut Self {
        self.bytes(field, &m.buf)
    }

    /// A `map<string, string>` field: one entry message (key 1, value 2) per pair.
    pub fn map(&mut self, field: u32, m: &BTreeMap<String, String>) -> &mut Self {
        for (k, v) in m {
            let mut entry = Writer::new();
            entry.string(1, k).string(2, v);
            self.message(field, &entry);
        }
        self
    }
}

/// A field's value as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Value<'a> {
    pub fn bytes(self) -> &'a [u8] {
        match self {
            Value::Bytes(b) => b,
            _ => &[],
        }
    }

    pub fn text(self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    pub fn uint(self) -> u64 {
        match self {
            Value::Varint(v) => v,
            _ => 0,
        }
    }
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of a message in order; stops at the first malformed byte.
pub fn fields(buf: &[u8]) -> Vec<(u32, Value<'_>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let Some(key) = read_varint(buf, &mut pos) else {
            break;
        };
        let field = (key >> 3) as u32;
        let value = match key & 7 {
            0 => match read_varint(buf, &mut pos) {
                Some(v) => Value::Varint(v),
                None => break,
            },
            1 => {
                pos += 8;
                Value::Fixed
            }
            2 => {
                let Some(len) = read_varint(buf, &mut pos) else {
                    break;
                };
                let end = pos.saturating_add(len as usize);
                let Some(b) = buf.get(pos..end) else { break };
                pos = end;
                Value::Bytes(b)
            }
            5 => {
                pos += 4;
                Value::Fixed
            }
            _ => break,
        };
        out.push((field, value));
    }
    out
}

/// The first value of `field` in `buf`.
pub fn field(buf: &[u8], number: u32) -> Option<Value<'_>> {
    fields(buf)
        .into_iter()
        .find(|(n, _)| *n == number)
        .map(|(_, v)| v)
}

/// The entries of a `map<string, string>` field.
pub fn map(buf: &[u8], number: u32) -> BTreeMap<String, String> {
    fields(buf)
        .into_iter()
        .filter(|(n, _)| *n == number)
        .map(|(_, v)| {
            let entry = v.bytes();
            let get = |i| field(entry, i).map(Value::text).unwrap_or_default();
            (get(1), get(2))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the writer writes the reader reads back: strings, varints, nested maps.
    #[test]
    fn writes_and_reads_back() {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let mut inner = Writer::new();
        inner.string(1, "name");
        let mut m = Writer::new();
        m.string(1, "abc")
            .uint(2, 300)
            .message(3, &inner)
            .map(6, &labels);
        let buf = &m.buf;
        assert_eq!(field(buf, 1).map(Value::text).as_deref(), Some("abc"));
        assert_eq!(field(buf, 2).map(Value::uint), Some(300));
        let nested = field(buf, 3).map(Value::bytes).unwrap_or_default();
        assert_eq!(field(nested, 1).map(Value::text).as_deref(), Some("name"));
        assert_eq!(map(buf, 6), labels);
    }
}
