//! RELP, rsyslog's Reliable Event Logging Protocol, the client half the syslog output speaks
//! for `relp://` (and `relps://`, the same inside TLS). Every frame is `TXNR SP COMMAND SP
//! DATALEN [SP DATA] LF`; a session opens with `open` (offering `commands=syslog`), carries
//! one `syslog` frame per message, and every frame is answered by an `rsp` frame with the same
//! transaction number whose data starts with a status code (`200 OK`).
//!
//! A message counts as delivered only when its `rsp 200` has arrived. Up to [`WINDOW`]
//! messages are in flight at once; when the connection breaks, what was not yet acknowledged
//! is sent again on a new session (at-least-once), and what was acknowledged in the failed
//! attempt is not: when the worker retries the same batch, only its unacknowledged messages
//! go out. A message the server took but whose acknowledgement was lost with the connection
//! is therefore the only duplicate there can be; nothing acknowledged is ever counted lost.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;

use super::transport::Record;

mod frame;
pub use frame::{parse, Frame};

/// Messages sent and not yet acknowledged, at most (librelp's own client default).
pub const WINDOW: usize = 128;
/// Transaction numbers run from 1 to this, then start again at 1 (0 is the server's).
const MAX_TXNR: u32 = 999_999_999;
/// What the client offers when it opens a session.
const OFFERS: &str = concat!(
    "relp_version=0\nrelp_software=shrike,",
    env!("CARGO_PKG_VERSION"),
    "\ncommands=syslog"
);

/// A byte stream a session runs on: TCP, or TLS over TCP.
pub trait Stream: Read + Write + Send {
    /// Called before waiting for the server's answers.
    fn before_read(&self) {}
}

impl Stream for TcpStream {
    fn before_read(&self) {
        quickack(self);
    }
}

impl Stream for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn before_read(&self) {
        quickack(&self.sock);
    }
}

#[cfg(test)]
impl Stream for io::Cursor<Vec<u8>> {}

/// Has the kernel acknowledge what arrives next at once (TCP_QUICKACK, which Linux clears again
/// by itself, hence once per wait). rsyslog writes each `rsp` on its own, and with Nagle's
/// algorithm on its side a second answer waits until the first is acknowledged; our delayed
/// ACK then cost every batch 40 ms (measured against Debian's rsyslogd: 1,000 messages in
/// batches of 50 took 880 ms without this, 23 ms with it).
fn quickack(tcp: &TcpStream) {
    let one: libc::c_int = 1;
    // SAFETY: `tcp` owns the open socket for the whole call; the option value points to a
    // c_int that outlives the call and its exact size is passed. A failure only costs speed.
    unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            std::ptr::from_ref(&one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Why a delivery failed.
#[derive(Debug)]
pub enum Failure {
    /// The connection failed or broke, timed out, or the server spoke nonsense: retry.
    Io(io::Error),
    /// The server answered a message with an error status: the batch will not go, and is
    /// counted dropped whole (messages of it already acknowledged included).
    Refused(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// One open session.
struct Session {
    stream: Box<dyn Stream>,
    rbuf: Vec<u8>,
    next: u32,
}

impl Session {
    /// Opens a session on `stream`: offers `syslog` and checks the server takes it.
    fn open(stream: Box<dyn Stream>) -> io::Result<Session> {
        let mut s = Session {
            stream,
            rbuf: Vec::new(),
            next: 1,
        };
        let mut out = Vec::new();
        let txnr = s.frame(&mut out, "open", OFFERS.as_bytes());
        s.stream.write_all(&out)?;
        s.stream.flush()?;
        let rsp = s.read_frame()?;
        if rsp.txnr != txnr || rsp.command != "rsp" {
            return Err(invalid(format!(
                "the RELP server answered the session open with {} {}",
                rsp.txnr, rsp.command
            )));
        }
        let text = String::from_utf8_lossy(&rsp.data);
        if !text.starts_with("200") {
            return Err(io::Error::other(format!(
                "the RELP server refused the session: {}",
                text.lines().next().unwrap_or("")
            )));
        }
        let commands = text.lines().find_map(|l| l.strip_prefix("commands="));
        if commands.is_some_and(|c| !c.split(',').any(|c| c.trim() == "syslog")) {
            return Err(io::Error::other(
                "the RELP server does not offer the syslog command: enable it in its imrelp input",
            ));
        }
        Ok(s)
    }

    /// Appends a frame to `out`; its transaction number.
    fn frame(&mut self, out: &mut Vec<u8>, command: &str, data: &[u8]) -> u32 {
        let txnr = self.next;
        self.next = if txnr >= MAX_TXNR { 1 } else { txnr + 1 };
        let _ = write!(out, "{txnr} {command} {}", data.len());
        if !data.is_empty() {
            out.push(b' ');
            out.extend_from_slice(data);
        }
        out.push(b'\n');
        txnr
    }

    /// A frame already received whole, if there is one.
    fn buffered(&mut self) -> io::Result<Option<Frame>> {
        match parse(&self.rbuf) {
            Ok(Some((frame, used))) => {
                self.rbuf.drain(..used);
                Ok(Some(frame))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(invalid(format!(
                "the RELP server sent a malformed frame: {e}"
            ))),
        }
    }

    /// The next frame, waiting for it (at most the stream's read timeout).
    fn read_frame(&mut self) -> io::Result<Frame> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(frame) = self.buffered()? {
                return Ok(frame);
            }
            self.stream.before_read();
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the RELP server closed the connection",
                ));
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn invalid(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

/// The part of the batch a failed attempt had acknowledged.
struct Pending {
    records: Vec<Record>,
    acked: Vec<bool>,
}

/// A RELP client: one session at a time, reopened after a failure.
#[derive(Default)]
pub struct Client {
    session: Option<Session>,
    pending: Option<Pending>,
}

impl Client {
    /// Sends `batch` and waits for every message's acknowledgement: `Ok` once all are
    /// acknowledged. `connect` makes a new stream when there is no session; `format` writes
    /// one record's syslog message.
    pub fn deliver(
        &mut self,
        batch: &[Record],
        connect: impl FnOnce() -> io::Result<Box<dyn Stream>>,
        format: impl FnMut(&Record, &mut Vec<u8>),
    ) -> Result<(), Failure> {
        // The same batch again after a failure: what was acknowledged then is not resent.
        let mut acked = match self.pending.take() {
            Some(p) if p.records == batch => p.acked,
            _ => vec![false; batch.len()],
        };
        let result = self.send(batch, &mut acked, connect, format);
        if result.is_err() {
            self.session = None;
            if acked.iter().any(|a| *a) {
                self.pending = Some(Pending {
                    records: batch.to_vec(),
                    acked,
                });
            }
        }
        result
    }

    fn send(
        &mut self,
        batch: &[Record],
        acked: &mut [bool],
        connect: impl FnOnce() -> io::Result<Box<dyn Stream>>,
        mut format: impl FnMut(&Record, &mut Vec<u8>),
    ) -> Result<(), Failure> {
        if self.session.is_none() {
            self.session = Some(Session::open(connect()?)?);
        }
        let Some(s) = self.session.as_mut() else {
            return Err(io::Error::other("no RELP session").into());
        };
        let todo: Vec<usize> = (0..batch.len()).filter(|&i| !acked[i]).collect();
        let mut inflight: VecDeque<(u32, usize)> = VecDeque::with_capacity(WINDOW);
        let (mut next, mut out, mut msg) = (0, Vec::new(), Vec::new());
        while next < todo.len() || !inflight.is_empty() {
            while next < todo.len() && inflight.len() < WINDOW {
                let i = todo[next];
                msg.clear();
                format(&batch[i], &mut msg);
                inflight.push_back((s.frame(&mut out, "syslog", &msg), i));
                next += 1;
            }
            if !out.is_empty() {
                s.stream.write_all(&out)?;
                s.stream.flush()?;
                out.clear();
            }
            let mut frame = Some(s.read_frame()?);
            while let Some(f) = frame {
                answer(f, &mut inflight, acked)?;
                frame = s.buffered()?;
            }
        }
        Ok(())
    }
}

/// Applies one frame from the server to the messages in flight.
fn answer(
    f: Frame,
    inflight: &mut VecDeque<(u32, usize)>,
    acked: &mut [bool],
) -> Result<(), Failure> {
    if f.command == "serverclose" {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the RELP server closed the session (serverclose)",
        )
        .into());
    }
    let Some(at) = inflight.iter().position(|(t, _)| *t == f.txnr) else {
        return Err(invalid(format!(
            "the RELP server sent `{} {}`, which answers no message in flight",
            f.txnr, f.command
        ))
        .into());
    };
    if f.command != "rsp" {
        return Err(invalid(format!(
            "the RELP server sent `{}` instead of rsp",
            f.command
        ))
        .into());
    }
    let Some((_, i)) = inflight.remove(at) else {
        return Err(io::Error::other("in-flight message vanished").into());
    };
    let text = String::from_utf8_lossy(&f.data);
    if !text.starts_with("200") {
        return Err(Failure::Refused(format!(
            "the RELP server refused a message: {}",
            text.lines().next().unwrap_or("")
        )));
    }
    if let Some(a) = acked.get_mut(i) {
        *a = true;
    }
    Ok(())
}

impl Drop for Client {
    /// Closes the session politely: `close`, then the server's answer (or the read timeout).
    fn drop(&mut self) {
        let Some(mut s) = self.session.take() else {
            return;
        };
        let mut out = Vec::new();
        let txnr = s.frame(&mut out, "close", b"");
        if s.stream
            .write_all(&out)
            .and_then(|_| s.stream.flush())
            .is_err()
        {
            return;
        }
        while let Ok(f) = s.read_frame() {
            if f.txnr == txnr || f.command == "serverclose" {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests;
