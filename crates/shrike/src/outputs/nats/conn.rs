//! The NATS connection under the JetStream transport: TCP (upgraded to TLS when the URL or
//! the server asks), the `INFO`/`CONNECT`/`PING` handshake with the configured credentials,
//! a reply inbox subscription, request/reply over it, reading the server's protocol lines
//! (`MSG`, `HMSG`, `PING`, `-ERR`, …), and the stream check or creation at connect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::{NatsConfig, NatsTransport};
use crate::outputs::tls::TlsConfig;

/// Why a connection-level step failed; `Retry` also means the connection is dropped.
pub(super) enum NetError {
    Retry(String),
    Rejected(String),
}

impl From<std::io::Error> for NetError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                NetError::Retry("timed out waiting for the server".into())
            }
            _ => NetError::Retry(e.to_string()),
        }
    }
}

/// A message the server delivered to our inbox.
pub(super) struct Msg {
    pub(super) subject: String,
    pub(super) headers: Vec<u8>,
    pub(super) payload: Vec<u8>,
}

impl Msg {
    /// The status code of a header block like `NATS/1.0 503`, if it carries one.
    pub(super) fn status(&self) -> Option<u16> {
        let first = self.headers.split(|&b| b == b'\n').next()?;
        let first = std::str::from_utf8(first).ok()?.trim();
        let code = first.strip_prefix("NATS/1.0")?.split_whitespace().next()?;
        code.parse().ok()
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.write(buf),
            Io::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Io::Plain(s) => s.flush(),
            Io::Tls(s) => s.flush(),
        }
    }
}

/// One connection to the server, subscribed to its own reply inbox.
pub(super) struct Conn {
    io: BufReader<Io>,
    tcp: TcpStream,
    pub(super) inbox: String,
    pub(super) next_reply: u64,
    pub(super) max_payload: u64,
}

impl Conn {
    pub(super) fn open(t: &NatsTransport, deadline: Instant) -> Result<Conn, NetError> {
        let addrs: Vec<_> = (t.host.as_str(), t.port)
            .to_socket_addrs()
            .map_err(|e| NetError::Retry(format!("resolving {}: {e}", t.host)))?
            .collect();
        let mut last = NetError::Retry(format!("{} resolves to no address", t.host));
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = NetError::Retry(format!("connecting: {e}")),
            }
        }
        let tcp = tcp.ok_or(last)?;
        tcp.set_nodelay(true)?;
        let mut conn = Conn {
            io: BufReader::new(Io::Plain(tcp.try_clone()?)),
            tcp,
            inbox: format!("_INBOX.{:016x}", random_u64()),
            next_reply: 1,
            max_payload: 1024 * 1024,
        };
        let info = match conn.next_op(deadline)? {
            Op::Info(info) => info,
            _ => {
                return Err(NetError::Retry(
                    "the server did not start with INFO: is this a NATS server?".into(),
                ))
            }
        };
        let info: serde_json::Value = serde_json::from_str(&info)
            .map_err(|e| NetError::Retry(format!("server INFO is not JSON: {e}")))?;
        if let Some(max) = info.get("max_payload").and_then(serde_json::Value::as_u64) {
            conn.max_payload = max;
        }
        if info.get("headers").and_then(serde_json::Value::as_bool) == Some(false) {
            return Err(NetError::Retry(
                "the server does not support headers (NATS 2.2 or later is needed)".into(),
            ));
        }
        let tls_required = info
            .get("tls_required")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        if t.force_tls || tls_required {
            let config = match &t.tls {
                Some(c) => c.clone(),
                None => TlsConfig::default()
                    .client_config()
                    .map_err(|e| NetError::Retry(e.to_string()))?,
            };
            let name = rustls::pki_types::ServerName::try_from(t.host.clone())
                .map_err(|e| NetError::Retry(format!("TLS server name {:?}: {e}", t.host)))?;
            let session = rustls::ClientConnection::new(config, name)
                .map_err(|e| NetError::Retry(format!("TLS setup: {e}")))?;
            let plain = conn.tcp.try_clone()?;
            conn.io = BufReader::new(Io::Tls(Box::new(rustls::StreamOwned::new(session, plain))));
        }
        let mut connect = serde_json::json!({
            "verbose": false,
            "pedantic": false,
            "tls_required": t.force_tls || tls_required,
            "name": "shrike",
            "lang": "rust",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1,
            "headers": true,
            "no_responders": true,
        });
        if let Some(user) = &t.config.user {
            connect["user"] = user.clone().into();
            connect["pass"] = t.config.password.clone().unwrap_or_default().into();
        }
        if let Some(token) = &t.config.token {
            connect["auth_token"] = token.clone().into();
        }
        if let Some(creds) = &t.credentials {
            let Some(nonce) = info.get("nonce").and_then(serde_json::Value::as_str) else {
                return Err(NetError::Retry(
                    "credentials are configured but the server sent no nonce to sign: it does not use nkey or JWT authentication".into(),
                ));
            };
            connect["sig"] = creds.sign(nonce).into();
            match &creds.jwt {
                Some(jwt) => connect["jwt"] = jwt.clone().into(),
                None => connect["nkey"] = creds.public_key().into(),
            }
        }
        let hello = format!("CONNECT {connect}\r\nPING\r\nSUB {}.* 1\r\n", conn.inbox);
        conn.send(hello.as_bytes(), deadline)?;
        loop {
            match conn.next_op(deadline)? {
                Op::Pong => break,
                Op::Err(e) => {
                    return Err(NetError::Retry(format!(
                        "server refused the connection: {e}"
                    )))
                }
                _ => {}
            }
        }
        Ok(conn)
    }

    /// Looks the stream up and creates it when missing (and allowed).
    pub(super) fn ensure_stream(
        &mut self,
        config: &NatsConfig,
        deadline: Instant,
    ) -> Result<(), NetError> {
        let info_subject = format!("$JS.API.STREAM.INFO.{}", config.stream);
        let info = self.request(&info_subject, b"", deadline)?;
        if info.status() == Some(503) {
            return Err(NetError::Retry(
                "JetStream is not enabled on the server (start nats-server with -js)".into(),
            ));
        }
        let info: serde_json::Value = serde_json::from_slice(&info.payload)
            .map_err(|e| NetError::Retry(format!("stream info is not JSON: {e}")))?;
        if let Some(err) = info.get("error") {
            let code = err.get("code").and_then(serde_json::Value::as_u64);
            if code != Some(404) {
                return Err(NetError::Retry(format!(
                    "looking up stream {}: {err}",
                    config.stream
                )));
            }
            if !config.create_stream {
                return Err(NetError::Retry(format!(
                    "stream {} does not exist and create_stream is off: create it (capturing {}) or turn create_stream on",
                    config.stream, config.subject
                )));
            }
            let nanos = |secs: u64| secs.saturating_mul(1_000_000_000);
            let create = serde_json::json!({
                "name": config.stream,
                "subjects": [config.subject],
                "retention": "limits",
                "storage": "file",
                "discard": "old",
                "num_replicas": 1,
                "duplicate_window": nanos(config.duplicate_window_secs),
                "max_age": config.max_age_secs.map_or(0, nanos),
                "max_bytes": config.max_bytes.map_or(-1, |b| b as i64),
                "max_msgs": -1,
                "max_consumers": -1,
            });
            let subject = format!("$JS.API.STREAM.CREATE.{}", config.stream);
            let reply = self.request(&subject, create.to_string().as_bytes(), deadline)?;
            let reply: serde_json::Value = serde_json::from_slice(&reply.payload)
                .map_err(|e| NetError::Retry(format!("stream create answer is not JSON: {e}")))?;
            // 10058: created meanwhile by another publisher; fine.
            if let Some(err) = reply.get("error") {
                if err.get("err_code").and_then(serde_json::Value::as_u64) != Some(10058) {
                    return Err(NetError::Retry(format!(
                        "creating stream {}: {err}",
                        config.stream
                    )));
                }
            }
            return Ok(());
        }
        let subjects: Vec<&str> = info
            .pointer("/config/subjects")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        if !subjects
            .iter()
            .any(|pattern| subject_matches(pattern, &config.subject))
        {
            return Err(NetError::Retry(format!(
                "stream {} captures {subjects:?}, not {}: add the subject to the stream or publish on one it captures",
                config.stream, config.subject
            )));
        }
        Ok(())
    }

    pub(super) fn request(
        &mut self,
        subject: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Msg, NetError> {
        let reply = self.next_reply;
        self.next_reply += 1;
        let mut out =
            format!("PUB {subject} {}.{reply} {}\r\n", self.inbox, body.len()).into_bytes();
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
        self.send(&out, deadline)?;
        let want = format!("{}.{reply}", self.inbox);
        loop {
            let msg = self.next_msg(deadline)?;
            if msg.subject == want {
                return Ok(msg);
            }
        }
    }

    pub(super) fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), NetError> {
        self.tcp.set_write_timeout(Some(remaining(deadline)?))?;
        let io = self.io.get_mut();
        io.write_all(bytes)?;
        io.flush()?;
        Ok(())
    }

    /// The next message for us, answering the server's pings on the way.
    pub(super) fn next_msg(&mut self, deadline: Instant) -> Result<Msg, NetError> {
        loop {
            match self.next_op(deadline)? {
                Op::Msg(m) => return Ok(m),
                Op::Ping => self.send(b"PONG\r\n", deadline)?,
                Op::Err(e) => return Err(NetError::Retry(format!("server error: {e}"))),
                Op::Info(_) | Op::Pong | Op::Ok => {}
            }
        }
    }

    fn next_op(&mut self, deadline: Instant) -> Result<Op, NetError> {
        self.tcp.set_read_timeout(Some(remaining(deadline)?))?;
        let mut line = Vec::new();
        self.io.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(NetError::Retry("the server closed the connection".into()));
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_string();
        let (op, args) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let bad = || {
            NetError::Retry(format!(
                "unexpected protocol line from the server: {line:?}"
            ))
        };
        match op.to_ascii_uppercase().as_str() {
            "INFO" => Ok(Op::Info(args.to_string())),
            "PING" => Ok(Op::Ping),
            "PONG" => Ok(Op::Pong),
            "+OK" => Ok(Op::Ok),
            "-ERR" => Ok(Op::Err(args.trim().trim_matches('\'').to_string())),
            "MSG" | "HMSG" => {
                let parts: Vec<&str> = args.split_whitespace().collect();
                let (subject, hdr_len, total) = if op.eq_ignore_ascii_case("MSG") {
                    let total: usize = parts.last().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
                    (parts.first().ok_or_else(bad)?, 0, total)
                } else {
                    let n = parts.len();
                    if n < 4 {
                        return Err(bad());
                    }
                    let hdr: usize = parts[n - 2].parse().map_err(|_| bad())?;
                    let total: usize = parts[n - 1].parse().map_err(|_| bad())?;
                    (&parts[0], hdr, total)
                };
                if hdr_len > total {
                    return Err(bad());
                }
                let mut buf = vec![0u8; total + 2];
                self.io.read_exact(&mut buf)?;
                buf.truncate(total);
                let payload = buf.split_off(hdr_len);
                Ok(Op::Msg(Msg {
                    subject: subject.to_string(),
                    headers: buf,
                    payload,
                }))
            }
            _ => Err(bad()),
        }
    }
}

enum Op {
    Info(String),
    Msg(Msg),
    Ping,
    Pong,
    Ok,
    Err(String),
}

fn remaining(deadline: Instant) -> Result<Duration, NetError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(NetError::Retry("timed out".into()))
    } else {
        Ok(left)
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Whether NATS subject `pattern` (`*` one token, `>` the rest) matches `subject`.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stream subject patterns: `*` is one token, `>` one or more.
    #[test]
    fn subject_patterns_match_like_nats() {
        assert!(subject_matches("shrike.events", "shrike.events"));
        assert!(subject_matches("shrike.*", "shrike.events"));
        assert!(subject_matches("shrike.>", "shrike.events.alert"));
        assert!(!subject_matches("shrike.*", "shrike.events.alert"));
        assert!(!subject_matches("shrike.>", "shrike"));
        assert!(!subject_matches("other.events", "shrike.events"));
    }
}
