//! A minimal HTTP/1.1 GET over a unix socket, for the Docker and Podman APIs.
//!
//! Both speak plain HTTP on a local socket; one request per connection (`Connection: close`),
//! a bounded body, and chunked transfer decoding is all they need. Not a general client.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::RuntimeError;

/// The most of a response body read (an inspect answer is a few KiB).
const MAX_BODY: usize = 4 << 20;

/// `GET path` on the socket at `socket`: the status code and the body.
pub fn get(socket: &Path, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>), RuntimeError> {
    let io = |e: std::io::Error| RuntimeError::Io(socket.display().to_string(), e);
    let mut stream = UnixStream::connect(socket).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: shrike\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut raw = Vec::new();
    stream
        .take((MAX_BODY + 64 * 1024) as u64)
        .read_to_end(&mut raw)
        .map_err(io)?;
    parse(&raw).ok_or_else(|| {
        RuntimeError::Protocol(
            socket.display().to_string(),
            "malformed HTTP response".into(),
        )
    })
}

fn parse(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some((status, body))
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        if out.len() > MAX_BODY {
            return None;
        }
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Podman answers chunked; Docker with a length: both bodies come out whole.
    #[test]
    fn reads_chunked_and_plain_bodies() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse(chunked), Some((200, b"abcde".to_vec())));
        let plain = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse(plain), Some((404, b"{}".to_vec())));
        assert_eq!(parse(b"garbage"), None);
    }
}
