//! One unary gRPC call over HTTP/2 on a unix socket, for the CRI.
//!
//! kubelet talks to containerd and CRI-O with gRPC; so does this, with the least of HTTP/2 a
//! unary call needs: the preface, one stream, HPACK literals (no table) for the request
//! headers, flow-control window updates for the answer, and SETTINGS/PING acknowledgements.
//! Response headers are not decoded: a call whose answer carries no message (a gRPC error,
//! e.g. NotFound) returns `None`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::RuntimeError;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
/// The most of an answer read (a verbose container status is some tens of KiB).
const MAX_ANSWER: usize = 8 << 20;

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), first byte ORed with `high`.
fn hpack_int(out: &mut Vec<u8>, high: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(high | v as u8);
        return;
    }
    out.push(high | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A header as a literal without indexing, new name (RFC 7541 §6.2.2).
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    hpack_int(out, 0, 7, name.len());
    out.extend_from_slice(name.as_bytes());
    hpack_int(out, 0, 7, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// Calls `method` (e.g. `/runtime.v1.RuntimeService/ContainerStatus`) with the encoded
/// `request`; the answer's message, or `None` when the call ended without one.
pub fn call(
    socket: &Path,
    method: &str,
    request: &[u8],
    timeout: Duration,
) -> Result<Option<Vec<u8>>, RuntimeError> {
    let name = socket.display().to_string();
    let io = |e: std::io::Error| RuntimeError::Io(name.clone(), e);
    let protocol = |what: &str| RuntimeError::Protocol(name.clone(), what.to_string());
    let mut stream = UnixStream::connect(socket).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;

    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(&mut out, SETTINGS, 0, 0, &[]);
    let mut headers = vec![0x83, 0x86]; // :method POST, :scheme http (static table 3 and 6)
    literal(&mut headers, ":path", method);
    literal(&mut headers, ":authority", "localhost");
    literal(&mut headers, "content-type", "application/grpc");
    literal(&mut headers, "te", "trailers");
    frame(&mut out, HEADERS, END_HEADERS, 1, &headers);
    let mut message = vec![0];
    message.extend_from_slice(&(request.len() as u32).to_be_bytes());
    message.extend_from_slice(request);
    for (i, chunk) in message.chunks(16_384).enumerate() {
        let last = (i + 1) * 16_384 >= message.len();
        frame(&mut out, DATA, if last { END_STREAM } else { 0 }, 1, chunk);
    }
    stream.write_all(&out).map_err(io)?;

    let mut body = Vec::new();
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).map_err(io)?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        if len > MAX_ANSWER || body.len() + len > MAX_ANSWER {
            return Err(protocol("answer too large"));
        }
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).map_err(io)?;
        match kind {
            DATA if id == 1 => {
                let data = if flags & PADDED != 0 {
                    let pad = usize::from(*payload.first().unwrap_or(&0));
                    payload.get(1..len.saturating_sub(pad)).unwrap_or(&[])
                } else {
                    &payload[..]
                };
                body.extend_from_slice(data);
                if len > 0 {
                    let mut update = Vec::new();
                    let inc = (len as u32).to_be_bytes();
                    frame(&mut update, WINDOW_UPDATE, 0, 0, &inc);
                    frame(&mut update, WINDOW_UPDATE, 0, 1, &inc);
                    stream.write_all(&update).map_err(io)?;
                }
                if flags & END_STREAM != 0 {
                    break;
                }
            }
            HEADERS if id == 1 && flags & END_STREAM != 0 => break,
            SETTINGS if flags & ACK == 0 => {
                let mut ack = Vec::new();
                frame(&mut ack, SETTINGS, ACK, 0, &[]);
                stream.write_all(&ack).map_err(io)?;
            }
            PING if flags & ACK == 0 => {
                let mut pong = Vec::new();
                frame(&mut pong, PING, ACK, 0, &payload);
                stream.write_all(&pong).map_err(io)?;
            }
            RST_STREAM if id == 1 => return Err(protocol("the call was reset")),
            GOAWAY => return Err(protocol("the server went away")),
            _ => {}
        }
    }
    // gRPC message framing: compressed flag, big-endian length, message.
    if body.len() < 5 {
        return Ok(None);
    }
    if body[0] != 0 {
        return Err(protocol("compressed gRPC answer (not asked for)"));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    body.get(5..5 + len)
        .map(|m| Some(m.to_vec()))
        .ok_or_else(|| protocol("truncated gRPC message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HPACK integers past the prefix continue in 7-bit groups (RFC 7541 C.1.2: 1337 in 5 bits).
    #[test]
    fn hpack_integers_follow_the_rfc_example() {
        let mut out = Vec::new();
        hpack_int(&mut out, 0, 5, 1337);
        assert_eq!(out, vec![31, 154, 10]);
        out.clear();
        hpack_int(&mut out, 0, 7, 10);
        assert_eq!(out, vec![10]);
    }
}
