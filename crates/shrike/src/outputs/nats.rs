//! NATS JetStream transport: the NATS text protocol spoken over one TCP (optionally TLS)
//! connection, publishing each record into a durable stream and returning `Ok` only after
//! JetStream acknowledged every one of them (at-least-once).
//!
//! At connect the transport checks the stream (`$JS.API.STREAM.INFO`) and creates it
//! (`$JS.API.STREAM.CREATE`, file storage) when it is missing and `create_stream` is on. Each
//! record goes out as `HPUB` with a reply inbox and a `Nats-Msg-Id` header that is a hash of
//! the record itself, so when an acknowledgement is lost and the framework delivers the batch
//! again, the server drops the copies it already stored (within the stream's duplicate window).
//! Records are written ahead of their acknowledgements (up to 512 unacknowledged), so a batch
//! costs about one round trip. The connection (`nats/conn.rs`) speaks TLS when the URL is `tls://`
//! or the server requires it, and authenticates with user and password, a token, or nkey/JWT
//! credentials ([`nkey`]). A lost connection, a timeout or a 503 from JetStream is [`TransportError::Retry`]; an
//! acknowledgement with another error, or a record larger than the server's `max_payload`, is
//! [`TransportError::Rejected`].

mod conn;
pub mod nkey;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde::Deserialize;

use self::conn::{Conn, Msg, NetError};
use super::config::OutputConfig;
use super::tls::TlsConfig;
use super::transport::{Record, Transport, TransportError};

/// A NATS JetStream output's settings.
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
    /// (default `shrike.events`), `credentials`, `tls`, `timeout_ms`, and for the stream the
    /// transport creates `create_stream`, `duplicate_window_secs`, `max_age_secs`, `max_bytes`.
    pub fn from_output(c: &OutputConfig) -> anyhow::Result<Self> {
        let Some(url) = c.address.clone() else {
            bail!("a nats output needs `address` (nats://HOST:4222 or tls://HOST:4222)");
        };
        Ok(NatsConfig {
            url,
            stream: c.stream.clone().unwrap_or_else(|| "SHRIKE".into()),
            subject: c.subject.clone().unwrap_or_else(|| "shrike.events".into()),
            create_stream: c.create_stream.unwrap_or(true),
            duplicate_window_secs: c
                .duplicate_window_secs
                .unwrap_or_else(default_duplicate_window),
            max_age_secs: c.max_age_secs,
            max_bytes: c.max_bytes,
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
        // The URL as error messages show it: without the password or token it may carry.
        let shown = match url
            .split_once("://")
            .map(|(scheme, rest)| (scheme, rest.rsplit_once('@')))
        {
            Some((scheme, Some((_, hostport)))) => format!("{scheme}://***@{hostport}"),
            _ => url.clone(),
        };
        let (force_tls, rest) = if let Some(rest) = url.strip_prefix("tls://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("nats://") {
            (false, rest)
        } else if url.contains("://") {
            bail!("nats url {shown:?}: the scheme must be nats:// or tls://");
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
                    .map_err(|_| anyhow!("nats url {shown:?}: bad port {p:?}"))?;
                (
                    h.trim_start_matches('[').trim_end_matches(']').to_string(),
                    port,
                )
            }
            _ => (rest.to_string(), 4222),
        };
        if host.is_empty() {
            bail!("nats url {shown:?} names no host");
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

    /// Publishes `batch` and waits for every acknowledgement, keeping at most [`WINDOW`]
    /// records unacknowledged so a large batch never piles up acknowledgements unread.
    fn publish(&mut self, batch: &[Record], deadline: Instant) -> Result<(), NetError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(NetError::Retry("not connected".into()));
        };
        let headers: Vec<String> = batch.iter().map(record_headers).collect();
        for (record, h) in batch.iter().zip(&headers) {
            if (h.len() + record.line.len()) as u64 > conn.max_payload {
                return Err(NetError::Rejected(format!(
                    "a {} record of {} bytes is larger than the server's max_payload ({} bytes)",
                    record.kind,
                    record.line.len(),
                    conn.max_payload
                )));
            }
        }
        let first = conn.next_reply;
        conn.next_reply += batch.len() as u64;
        let mut acked = vec![false; batch.len()];
        let (mut sent, mut acks) = (0usize, 0usize);
        let mut retry: Option<String> = None;
        let mut rejected: Option<String> = None;
        while acks < batch.len() {
            if sent < batch.len() && sent - acks < WINDOW / 2 {
                let end = (acks + WINDOW).min(batch.len());
                let mut out = Vec::new();
                for i in sent..end {
                    let (record, h) = (&batch[i], &headers[i]);
                    write!(
                        out,
                        "HPUB {} {}.{} {} {}\r\n",
                        self.config.subject,
                        conn.inbox,
                        first + i as u64,
                        h.len(),
                        h.len() + record.line.len()
                    )
                    .map_err(|e| NetError::Retry(e.to_string()))?;
                    out.extend_from_slice(h.as_bytes());
                    out.extend_from_slice(record.line.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                conn.send(&out, deadline)?;
                sent = end;
                continue;
            }
            let msg = conn.next_msg(deadline)?;
            let Some(index) = msg
                .subject
                .strip_prefix(conn.inbox.as_str())
                .and_then(|s| s.strip_prefix('.'))
                .and_then(|s| s.parse::<u64>().ok())
                .and_then(|n| n.checked_sub(first))
                .map(|i| i as usize)
                .filter(|&i| i < sent)
            else {
                continue;
            };
            if acked[index] {
                continue;
            }
            acked[index] = true;
            acks += 1;
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

/// Records published ahead of their acknowledgements at most.
const WINDOW: usize = 512;

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

#[cfg(test)]
mod tests {
    use super::*;

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
            ..base.clone()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("port"), "{e}");
        // A password in the address stays out of the message.
        let e = NatsTransport::new(NatsConfig {
            url: "nats://u:s3cret@h:x".into(),
            ..base
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("***@h:x") && !e.contains("s3cret"), "{e}");
    }
}
