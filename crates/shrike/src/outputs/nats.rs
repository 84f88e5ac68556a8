//! NATS JetStream transport: the NATS text protocol spoken over one TCP (optionally TLS)
//! connection, publishing each record into a durable stream and returning `Ok` only after
//! JetStream acknowledged every one of them (at-least-once).
//!
//! At connect the transport checks the stream (`$JS.API.STREAM.INFO`) and creates it
//! (`$JS.API.STREAM.CREATE`, file storage) when it is missing and `create_stream` is on. Each
//! record goes out as `HPUB` with a reply inbox and a `Nats-Msg-Id` header that is a hash of
//! the record itself, so when an acknowledgement is lost and the framework delivers the batch
//! again, the server drops the copies it already stored (within the stream's duplicate window).
//! The whole batch is written before the acknowledgements are read, so a batch costs one round
//! trip. A lost connection, a timeout or a 503 from JetStream is [`TransportError::Retry`]; an
//! acknowledgement with another error, or a record larger than the server's `max_payload`, is
//! [`TransportError::Rejected`].

pub mod nkey;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde::Deserialize;

use super::config::OutputConfig;
use super::tls::TlsConfig;
use super::transport::{Record, Transport, TransportError};

/// An output's `nats:` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:port` (plain, upgraded to TLS when the server requires it) or
    /// `tls://host:port` (TLS always); the port defaults to 4222.
    pub url: String,
    /// The JetStream stream that stores the events, e.g. `SHRIKE`.
    pub stream: String,
    /// The subject each record is published on, e.g. `shrike.events`; the stream must
    /// capture it (it does when the transport created the stream).
    pub subject: String,
    /// Create the stream (file storage, capturing `subject`) when it does not exist.
    #[serde(default = "default_true")]
    pub create_stream: bool,
    /// For a stream the transport creates: how long the server remembers message ids to drop
    /// redelivered copies, in seconds. A batch redelivered later than this is stored twice.
    #[serde(default = "default_duplicate_window")]
    pub duplicate_window_secs: u64,
    /// For a stream the transport creates: drop messages older than this many seconds
    /// (`None`: keep them until `max_bytes`).
    #[serde(default)]
    pub max_age_secs: Option<u64>,
    /// For a stream the transport creates: the most bytes it holds before dropping the oldest.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// User and password for the server's `authorization` block.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Token for a server configured with `authorization { token: … }`.
    #[serde(default)]
    pub token: Option<String>,
    /// A `.creds` file (user JWT and nkey seed, as `nsc` writes them) or a file holding a bare
    /// user nkey seed (`SU…`), for servers using nkey or decentralised (JWT) authentication.
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// How long one delivery (connecting included) may take before it is retried, in ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// TLS settings; without them TLS still happens, with the system's web roots, when the URL
    /// is `tls://` or the server requires it.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

impl NatsConfig {
    /// The settings of a `type: nats` entry of `outputs:`: `address` (the URL, credentials
    /// may ride in it as `user:password@` or `token@`), `stream` (default `SHRIKE`), `subject`
    /// (default `shrike.events`), `credentials`, `tls`, `timeout_ms`; the stream the transport
    /// creates keeps the defaults above.
    pub fn from_output(c: &OutputConfig) -> anyhow::Result<Self> {
        let Some(url) = c.address.clone() else {
            bail!("a nats output needs `address` (nats://HOST:4222 or tls://HOST:4222)");
        };
        Ok(NatsConfig {
            url,
            stream: c.stream.clone().unwrap_or_else(|| "SHRIKE".into()),
            subject: c.subject.clone().unwrap_or_else(|| "shrike.events".into()),
            create_stream: true,
            duplicate_window_secs: default_duplicate_window(),
            max_age_secs: None,
            max_bytes: None,
            user: None,
            password: None,
            token: None,
            credentials: c.credentials.clone(),
            timeout_ms: c.timeout_ms,
            tls: c.tls.clone(),
        })
    }
}

fn default_true() -> bool {
    true
}
fn default_duplicate_window() -> u64 {
    120
}
fn default_timeout_ms() -> u64 {
    5000
}

/// Delivers records into one JetStream stream.
pub struct NatsTransport {
    config: NatsConfig,
    host: String,
    port: u16,
    force_tls: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    credentials: Option<nkey::Credentials>,
    conn: Option<Conn>,
}

impl NatsTransport {
    /// Checks `config` (URL, stream and subject names, TLS files); connects lazily, on the
    /// first delivery.
    pub fn new(mut config: NatsConfig) -> anyhow::Result<Self> {
        let url = config.url.clone();
        let (force_tls, rest) = if let Some(rest) = url.strip_prefix("tls://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("nats://") {
            (false, rest)
        } else if url.contains("://") {
            bail!("nats url {url:?}: the scheme must be nats:// or tls://");
        } else {
            (false, url.as_str())
        };
        let rest = rest.trim_end_matches('/');
        // `user:password@host` or `token@host`, as NATS clients take them; the configuration's
        // own fields win.
        let rest = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                match userinfo.split_once(':') {
                    Some((user, password)) => {
                        config.user.get_or_insert_with(|| user.to_string());
                        config.password.get_or_insert_with(|| password.to_string());
                    }
                    None => {
                        config.token.get_or_insert_with(|| userinfo.to_string());
                    }
                }
                hostport
            }
            None => rest,
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p
                    .parse()
                    .map_err(|_| anyhow!("nats url {:?}: bad port {p:?}", config.url))?;
                (
                    h.trim_start_matches('[').trim_end_matches(']').to_string(),
                    port,
                )
            }
            _ => (rest.to_string(), 4222),
        };
        if host.is_empty() {
            bail!("nats url {:?} names no host", config.url);
        }
        if config.stream.is_empty()
            || config
                .stream
                .contains(|c: char| c == '.' || c == '*' || c == '>' || c.is_whitespace())
        {
            bail!(
                "nats stream {:?}: a stream name is one token without '.', '*', '>' or spaces",
                config.stream
            );
        }
        if config.subject.is_empty()
            || config
                .subject
                .contains(|c: char| c == '*' || c == '>' || c.is_whitespace())
            || config.subject.split('.').any(str::is_empty)
        {
            bail!("nats subject {:?}: publish to a concrete subject (dot-separated tokens, no wildcards or spaces)", config.subject);
        }
        let tls = if force_tls || config.tls.is_some() {
            Some(config.tls.clone().unwrap_or_default().client_config()?)
        } else {
            None
        };
        let credentials = config
            .credentials
            .as_deref()
            .map(nkey::Credentials::load)
            .transpose()?;
        Ok(Self {
            config,
            host,
            port,
            force_tls,
            tls,
            credentials,
            conn: None,
        })
    }

    /// The stream's `$JS.API.STREAM.INFO` answer (its config and state: message count, first
    /// and last sequence), connecting first if needed.
    pub fn stream_info(&mut self) -> Result<serde_json::Value, TransportError> {
        let deadline = self.deadline();
        let subject = format!("$JS.API.STREAM.INFO.{}", self.config.stream);
        self.request_json(&subject, b"", deadline)
    }

    /// The stored message with sequence `seq` (`$JS.API.STREAM.MSG.GET`): JSON with
    /// `subject`, `seq`, base64 `hdrs` and `data`, `time`.
    pub fn get_message(&mut self, seq: u64) -> Result<serde_json::Value, TransportError> {
        let deadline = self.deadline();
        let subject = format!("$JS.API.STREAM.MSG.GET.{}", self.config.stream);
        let body = serde_json::json!({ "seq": seq }).to_string();
        self.request_json(&subject, body.as_bytes(), deadline)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.config.timeout_ms.max(1))
    }

    fn request_json(
        &mut self,
        subject: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<serde_json::Value, TransportError> {
        self.connected(deadline)?;
        let result = match self.conn.as_mut() {
            Some(conn) => conn.request(subject, body, deadline),
            None => Err(NetError::Retry("not connected".into())),
        };
        self.settle(result).and_then(|reply| {
            serde_json::from_slice(&reply.payload).map_err(|e| {
                TransportError::Retry(format!("NATS: {subject} answered with invalid JSON: {e}"))
            })
        })
    }

    /// Turns a connection-level result into the transport's error, dropping the connection
    /// when it can no longer be trusted.
    fn settle<T>(&mut self, result: Result<T, NetError>) -> Result<T, TransportError> {
        result.map_err(|e| {
            self.conn = None;
            match e {
                NetError::Retry(msg) => {
                    TransportError::Retry(format!("NATS {}:{}: {msg}", self.host, self.port))
                }
                NetError::Rejected(msg) => {
                    TransportError::Rejected(format!("NATS {}:{}: {msg}", self.host, self.port))
                }
            }
        })
    }

    /// Connects and checks the stream when there is no connection yet.
    fn connected(&mut self, deadline: Instant) -> Result<(), TransportError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let result = Conn::open(self, deadline).and_then(|mut conn| {
            conn.ensure_stream(&self.config, deadline)?;
            Ok(conn)
        });
        let conn = self.settle(result)?;
        self.conn = Some(conn);
        Ok(())
    }

    fn publish(&mut self, batch: &[Record], deadline: Instant) -> Result<(), NetError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(NetError::Retry("not connected".into()));
        };
        let mut out = Vec::with_capacity(batch.iter().map(|r| r.line.len() + 160).sum());
        let first = conn.next_reply;
        for record in batch {
            let headers = record_headers(record);
            if (headers.len() + record.line.len()) as u64 > conn.max_payload {
                return Err(NetError::Rejected(format!(
                    "a {} record of {} bytes is larger than the server's max_payload ({} bytes)",
                    record.kind,
                    record.line.len(),
                    conn.max_payload
                )));
            }
            let reply = conn.next_reply;
            conn.next_reply += 1;
            write!(
                out,
                "HPUB {} {}.{} {} {}\r\n",
                self.config.subject,
                conn.inbox,
                reply,
                headers.len(),
                headers.len() + record.line.len()
            )
            .map_err(|e| NetError::Retry(e.to_string()))?;
            out.extend_from_slice(headers.as_bytes());
            out.extend_from_slice(record.line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        conn.send(&out, deadline)?;
        let mut acked = vec![false; batch.len()];
        let mut remaining = batch.len();
        let mut retry: Option<String> = None;
        let mut rejected: Option<String> = None;
        while remaining > 0 {
            let msg = conn.next_msg(deadline)?;
            let Some(n) = msg
                .subject
                .strip_prefix(conn.inbox.as_str())
                .and_then(|s| s.strip_prefix('.'))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let Some(index) = n
                .checked_sub(first)
                .map(|i| i as usize)
                .filter(|&i| i < batch.len())
            else {
                continue;
            };
            if acked[index] {
                continue;
            }
            acked[index] = true;
            remaining -= 1;
            match parse_ack(&msg) {
                Ack::Stored => {}
                Ack::Retry(e) => retry = Some(e),
                Ack::Rejected(e) => rejected = Some(e),
            }
        }
        if let Some(e) = rejected {
            return Err(NetError::Rejected(e));
        }
        if let Some(e) = retry {
            return Err(NetError::Retry(e));
        }
        Ok(())
    }
}

impl Transport for NatsTransport {
    fn deliver(&mut self, batch: &[Record]) -> Result<(), TransportError> {
        let deadline = self.deadline();
        self.connected(deadline)?;
        let result = self.publish(batch, deadline);
        match result {
            // A rejected record says nothing about the connection: keep it.
            Err(NetError::Rejected(e)) => Err(TransportError::Rejected(format!(
                "NATS {}:{}: {e}",
                self.host, self.port
            ))),
            other => self.settle(other),
        }
    }
}

/// The headers of one record's `HPUB`: the message id JetStream deduplicates on, and the
/// record's kind, severity and rule so consumers can filter without parsing the body.
fn record_headers(record: &Record) -> String {
    let mut h = format!(
        "NATS/1.0\r\nNats-Msg-Id: {}\r\nShrike-Kind: {}\r\n",
        msg_id(record),
        clean(record.kind)
    );
    if let Some(sev) = &record.severity {
        h.push_str(&format!("Shrike-Severity: {}\r\n", clean(sev)));
    }
    if let Some(rule) = &record.rule {
        h.push_str(&format!("Shrike-Rule: {}\r\n", clean(rule)));
    }
    h.push_str("\r\n");
    h
}

fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A message id that is the same for the same record: two FNV-1a 64-bit hashes (different
/// offset bases) over the time, kind and line.
pub fn msg_id(record: &Record) -> String {
    fn fnv(seed: u64, parts: &[&[u8]]) -> u64 {
        let mut h = seed;
        for part in parts {
            for &b in *part {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
    let time = record.time_unix_ns.to_be_bytes();
    let parts: [&[u8]; 3] = [&time, record.kind.as_bytes(), record.line.as_bytes()];
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325, &parts),
        fnv(0x6c62_272e_07bb_0142, &parts)
    )
}

enum Ack {
    Stored,
    Retry(String),
    Rejected(String),
}

fn parse_ack(msg: &Msg) -> Ack {
    if let Some(status) = msg.status() {
        return if status == 503 {
            Ack::Retry("no JetStream stream answered (503 no responders): is the server running with JetStream (-js) and does the stream capture the subject?".into())
        } else {
            Ack::Retry(format!("publish answered with status {status}"))
        };
    }
    let value: serde_json::Value = match serde_json::from_slice(&msg.payload) {
        Ok(v) => v,
        Err(e) => return Ack::Retry(format!("publish acknowledgement is not JSON: {e}")),
    };
    if let Some(err) = value.get("error") {
        let code = err
            .get("code")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let text = format!(
            "JetStream refused a record: {} (code {code}, err_code {})",
            err.get("description")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no description"),
            err.get("err_code")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        );
        return if code >= 500 || code == 408 || code == 429 {
            Ack::Retry(text)
        } else {
            Ack::Rejected(text)
        };
    }
    if value
        .get("seq")
        .and_then(serde_json::Value::as_u64)
        .is_some()
    {
        Ack::Stored
    } else {
        Ack::Retry(format!(
            "publish acknowledgement without a sequence: {value}"
        ))
    }
}

/// Why a connection-level step failed; `Retry` also means the connection is dropped.
enum NetError {
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
struct Msg {
    subject: String,
    headers: Vec<u8>,
    payload: Vec<u8>,
}

impl Msg {
    /// The status code of a header block like `NATS/1.0 503`, if it carries one.
    fn status(&self) -> Option<u16> {
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
struct Conn {
    io: BufReader<Io>,
    tcp: TcpStream,
    inbox: String,
    next_reply: u64,
    max_payload: u64,
}

impl Conn {
    fn open(t: &NatsTransport, deadline: Instant) -> Result<Conn, NetError> {
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
    fn ensure_stream(&mut self, config: &NatsConfig, deadline: Instant) -> Result<(), NetError> {
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

    fn request(&mut self, subject: &str, body: &[u8], deadline: Instant) -> Result<Msg, NetError> {
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

    fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), NetError> {
        self.tcp.set_write_timeout(Some(remaining(deadline)?))?;
        let io = self.io.get_mut();
        io.write_all(bytes)?;
        io.flush()?;
        Ok(())
    }

    /// The next message for us, answering the server's pings on the way.
    fn next_msg(&mut self, deadline: Instant) -> Result<Msg, NetError> {
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

    /// The message id is a function of the record, so a redelivered record carries the same id
    /// and a different record (even one nanosecond apart) another.
    #[test]
    fn message_id_is_stable_per_record() {
        let r = Record {
            line: "{\"a\":1}".into(),
            time_unix_ns: 5,
            kind: "process_exec",
            severity: None,
            rule: None,
        };
        assert_eq!(msg_id(&r), msg_id(&r.clone()));
        assert_eq!(msg_id(&r).len(), 32);
        let later = Record {
            time_unix_ns: 6,
            ..r.clone()
        };
        assert_ne!(msg_id(&r), msg_id(&later));
    }

    /// Bad URLs, stream names and subjects are refused at construction with what to fix.
    #[test]
    fn config_errors_name_the_field() {
        let base = NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            stream: "SHRIKE".into(),
            subject: "shrike.events".into(),
            create_stream: true,
            duplicate_window_secs: 120,
            max_age_secs: None,
            max_bytes: None,
            user: None,
            password: None,
            token: None,
            credentials: None,
            timeout_ms: 1000,
            tls: None,
        };
        assert!(NatsTransport::new(base.clone()).is_ok());
        let e = NatsTransport::new(NatsConfig {
            url: "http://x".into(),
            ..base.clone()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("scheme"), "{e}");
        let e = NatsTransport::new(NatsConfig {
            stream: "a.b".into(),
            ..base.clone()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("stream"), "{e}");
        let e = NatsTransport::new(NatsConfig {
            subject: "shrike.*".into(),
            ..base.clone()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("subject"), "{e}");
        let e = NatsTransport::new(NatsConfig {
            url: "nats://h:x".into(),
            ..base
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("port"), "{e}");
    }
}
