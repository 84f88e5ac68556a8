//! Syslog, RFC 5424, over the local socket (`unix:///dev/log`, one datagram per message),
//! UDP (one datagram per message, RFC 5426), TCP with octet-counting framing (RFC 6587
//! §3.4.1: `LEN SP MSG`), TCP+TLS (`tls://`, RFC 5425, same framing), or RELP (`relp://`,
//! and `relps://` inside TLS: rsyslog's acknowledged protocol, [`super::relp`]).
//!
//! What counts as sent differs. A datagram is sent when the kernel takes it; over `tcp://` and
//! `tls://` a batch is sent once written to the socket, and a server that dies loses, unseen,
//! whatever it had not yet read (in its socket buffers, or ours): syslog over TCP has no
//! acknowledgements, so neither the count of sent nor that of dropped can be exact across a
//! crash. Over `relp://` a message is sent only when the server has acknowledged it, and what
//! was not acknowledged is sent again after reconnecting: every loss is a counted drop.
//!
//! Each message: `<PRI>1 TIMESTAMP HOSTNAME shrike PROCID KIND [shrike@32473 …] LINE`, where
//! PRI is the facility (default `authpriv`) with the alert's severity (critical → crit, high
//! → err, medium → warning, low → notice, anything else → info), TIMESTAMP the event's time
//! in UTC with microseconds, MSGID the event kind, and the structured data (for alerts and
//! incidents only) `rule` and `severity` — 32473 is the enterprise number RFC 5612 reserves
//! for documentation, as no number is registered for shrike. MSG is the event line (JSON or
//! compact), never split.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use shrike_event::Timestamp;

use super::config::OutputConfig;
use super::relp;
use super::transport::{Record, Transport, TransportError};

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(String),
    Udp(String),
    Tcp(String),
    Tls(String),
    Relp(String),
    Relps(String),
}

impl Address {
    pub fn parse(text: &str) -> Result<Address> {
        let (scheme, rest) = text.split_once("://").with_context(|| {
            format!("syslog address {text:?}: give unix:///dev/log, udp://HOST:PORT, tcp://HOST:PORT, tls://HOST:PORT, relp://HOST:PORT or relps://HOST:PORT")
        })?;
        if rest.is_empty() {
            bail!("syslog address {text:?}: nothing after {scheme}://");
        }
        Ok(match scheme {
            "unix" => Address::Unix(rest.to_owned()),
            "udp" => Address::Udp(rest.to_owned()),
            "tcp" => Address::Tcp(rest.to_owned()),
            "tls" => Address::Tls(rest.to_owned()),
            "relp" => Address::Relp(rest.to_owned()),
            "relps" => Address::Relps(rest.to_owned()),
            _ => bail!(
                "syslog address {text:?}: the scheme must be unix, udp, tcp, tls, relp or relps"
            ),
        })
    }

    /// Whether the transport is TLS over TCP.
    fn is_tls(&self) -> bool {
        matches!(self, Address::Tls(_) | Address::Relps(_))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (scheme, rest) = match self {
            Address::Unix(p) => ("unix", p),
            Address::Udp(a) => ("udp", a),
            Address::Tcp(a) => ("tcp", a),
            Address::Tls(a) => ("tls", a),
            Address::Relp(a) => ("relp", a),
            Address::Relps(a) => ("relps", a),
        };
        write!(f, "{scheme}://{rest}")
    }
}

/// Syslog facility codes by name (RFC 5424 table 1).
pub fn facility(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "authpriv" => 10,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// The syslog severity for an alert's severity.
pub fn severity_code(severity: Option<&str>) -> u8 {
    match severity {
        Some("critical") => 2,
        Some("high") => 3,
        Some("medium") => 4,
        Some("low") => 5,
        _ => 6,
    }
}

enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

/// How to reach the server.
struct Dialer {
    address: Address,
    timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// What every message starts with, and how a record becomes one.
struct Header {
    facility: u8,
    app_name: String,
    hostname: String,
    procid: u32,
}

pub struct SyslogTransport {
    dialer: Dialer,
    header: Header,
    conn: Option<Conn>,
    relp: relp::Client,
    buf: Vec<u8>,
}

impl SyslogTransport {
    pub fn new(config: &OutputConfig) -> Result<Self> {
        let address = Address::parse(config.address.as_deref().unwrap_or("unix:///dev/log"))?;
        let facility_name = config.facility.as_deref().unwrap_or("authpriv");
        let Some(facility) = facility(facility_name) else {
            bail!("syslog facility {facility_name:?}: give kern, user, daemon, auth, syslog, authpriv or local0 to local7");
        };
        let tls = match &address {
            a if a.is_tls() => Some(
                config
                    .tls
                    .clone()
                    .unwrap_or_default()
                    .client_config()
                    .context("syslog TLS settings")?,
            ),
            _ if config.tls.is_some() => {
                bail!("syslog `tls:` settings need a tls://HOST:PORT or relps://HOST:PORT address")
            }
            _ => None,
        };
        let app_name = config.app_name.clone().unwrap_or_else(|| "shrike".into());
        if app_name.is_empty()
            || app_name.len() > 48
            || !app_name.bytes().all(|b| (33..=126).contains(&b))
        {
            bail!("syslog app_name {app_name:?}: 1 to 48 printable ASCII characters, no spaces");
        }
        let hostname: String = crate::agent::node_name()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        Ok(SyslogTransport {
            dialer: Dialer {
                address,
                timeout: config.timeout(),
                tls,
            },
            header: Header {
                facility,
                app_name,
                hostname: if hostname.is_empty() {
                    "-".into()
                } else {
                    hostname
                },
                procid: std::process::id(),
            },
            conn: None,
            relp: relp::Client::default(),
            buf: Vec::new(),
        })
    }

    /// One RFC 5424 message for `record`, into `self.buf`.
    pub fn format(&mut self, record: &Record) {
        self.buf.clear();
        self.header.write(record, &mut self.buf);
    }

    fn send(&mut self, batch: &[Record]) -> io::Result<()> {
        if self.conn.is_none() {
            self.conn = Some(self.dialer.connect()?);
        }
        let mut framed = Vec::new();
        for record in batch {
            self.format(record);
            let Some(conn) = self.conn.as_mut() else {
                return Err(io::Error::other("not connected"));
            };
            match conn {
                Conn::Unix(sock) => {
                    sock.send(&self.buf)?;
                }
                Conn::Udp(sock) => {
                    sock.send(&self.buf)?;
                }
                Conn::Tcp(_) | Conn::Tls(_) => {
                    let _ = write!(framed, "{} ", self.buf.len());
                    framed.extend_from_slice(&self.buf);
                }
            }
        }
        match self.conn.as_mut() {
            Some(Conn::Tcp(stream)) => {
                stream.write_all(&framed)?;
                stream.flush()?;
                check_open(stream)?;
            }
            Some(Conn::Tls(stream)) => {
                stream.write_all(&framed)?;
                stream.flush()?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl Dialer {
    fn connect(&self) -> io::Result<Conn> {
        let resolve = |hostport: &str| -> io::Result<std::net::SocketAddr> {
            hostport.to_socket_addrs()?.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{hostport}: no address"))
            })
        };
        Ok(match &self.address {
            Address::Unix(path) => {
                let sock = UnixDatagram::unbound()?;
                sock.connect(path)?;
                sock.set_write_timeout(Some(self.timeout))?;
                Conn::Unix(sock)
            }
            Address::Udp(hostport) => {
                let to = resolve(hostport)?;
                let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let sock = UdpSocket::bind(bind)?;
                sock.connect(to)?;
                Conn::Udp(sock)
            }
            Address::Tcp(hostport) | Address::Relp(hostport) => {
                Conn::Tcp(self.tcp(resolve(hostport)?)?)
            }
            Address::Tls(hostport) | Address::Relps(hostport) => {
                let tcp = self.tcp(resolve(hostport)?)?;
                let host = hostport
                    .rsplit_once(':')
                    .map_or(hostport.as_str(), |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let Some(tls) = &self.tls else {
                    return Err(io::Error::other("no TLS configuration"));
                };
                let conn =
                    rustls::ClientConnection::new(tls.clone(), name).map_err(io::Error::other)?;
                let mut stream = rustls::StreamOwned::new(conn, tcp);
                // Handshake now, so a certificate problem is reported at connect time.
                while stream.conn.is_handshaking() {
                    stream.conn.complete_io(&mut stream.sock)?;
                }
                Conn::Tls(Box::new(stream))
            }
        })
    }

    /// A byte stream for a RELP session.
    fn stream(&self) -> io::Result<Box<dyn relp::Stream>> {
        match self.connect()? {
            Conn::Tcp(tcp) => Ok(Box::new(tcp)),
            Conn::Tls(tls) => Ok(tls),
            Conn::Unix(_) | Conn::Udp(_) => Err(io::Error::other("RELP runs over TCP")),
        }
    }

    fn tcp(&self, to: std::net::SocketAddr) -> io::Result<TcpStream> {
        let tcp = TcpStream::connect_timeout(&to, self.timeout)?;
        tcp.set_write_timeout(Some(self.timeout))?;
        tcp.set_read_timeout(Some(self.timeout))?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }
}

impl Header {
    /// Appends one RFC 5424 message for `record` to `buf`.
    fn write(&self, record: &Record, buf: &mut Vec<u8>) {
        let pri =
            u16::from(self.facility) * 8 + u16::from(severity_code(record.severity.as_deref()));
        let ts = Timestamp(record.time_unix_ns).rfc3339();
        // YYYY-MM-DDTHH:MM:SS.ffffff: RFC 5424 allows at most six fraction digits.
        let _ = write!(buf, "<{pri}>1 ");
        buf.extend_from_slice(&ts[..26]);
        let _ = write!(
            buf,
            "Z {} {} {} {} ",
            self.hostname, self.app_name, self.procid, record.kind
        );
        if record.severity.is_some() || record.rule.is_some() {
            buf.extend_from_slice(b"[shrike@32473");
            if let Some(rule) = &record.rule {
                sd_param(buf, "rule", rule);
            }
            if let Some(severity) = &record.severity {
                sd_param(buf, "severity", severity);
            }
            buf.extend_from_slice(b"] ");
        } else {
            buf.extend_from_slice(b"- ");
        }
        buf.extend_from_slice(record.line.as_bytes());
    }
}

/// A TCP peer that closed the connection shows it as a readable end of stream; a write into a
/// half-closed socket still succeeds, so look before the next batch is counted as sent.
fn check_open(stream: &TcpStream) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    let mut byte = [0u8; 1];
    let peeked = stream.peek(&mut byte);
    stream.set_nonblocking(false)?;
    match peeked {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "the syslog server closed the connection",
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// ` NAME="VALUE"` with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn sd_param(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.push(b' ');
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"=\"");
    for b in value.bytes() {
        if matches!(b, b'"' | b'\\' | b']') {
            buf.push(b'\\');
        }
        buf.push(b);
    }
    buf.push(b'"');
}

impl Transport for SyslogTransport {
    fn deliver(&mut self, batch: &[Record]) -> Result<(), TransportError> {
        let target = &self.dialer.address;
        if matches!(target, Address::Relp(_) | Address::Relps(_)) {
            let (dialer, header) = (&self.dialer, &self.header);
            return self
                .relp
                .deliver(batch, || dialer.stream(), |r, buf| header.write(r, buf))
                .map_err(|failure| match failure {
                    relp::Failure::Io(err) => {
                        TransportError::Retry(format!("syslog {target}: {err}"))
                    }
                    relp::Failure::Refused(why) => {
                        TransportError::Rejected(format!("syslog {target}: {why}"))
                    }
                });
        }
        self.send(batch).map_err(|err| {
            // Reconnect on the next attempt.
            self.conn = None;
            let target = &self.dialer.address;
            if err.raw_os_error() == Some(libc::EMSGSIZE) {
                TransportError::Rejected(format!(
                    "syslog {target}: a message is too large for a datagram: {err}"
                ))
            } else {
                TransportError::Retry(format!("syslog {target}: {err}"))
            }
        })
    }
}

#[cfg(test)]
#[path = "syslog_tests.rs"]
mod tests;
