//! The unix socket: who may connect, one thread per connection, and how a stream is written
//! so that a client that stops reading can still be told why it is cut off.
//!
//! The socket is made root-only: it is bound under a temporary name, given mode 0600 and only
//! then renamed into place (no window in which another user could connect), its directory is
//! created 0700 when missing, and every connection's peer credentials are checked (root or the
//! agent's own user). A stream is written without ever filling the socket: the writer leaves
//! [`RESERVE`] bytes of the socket's send buffer free, so that when the client's queue
//! overflows the final `end` line still fits and a client that later reads sees exactly why
//! the stream ended.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::filter::Filter;
use super::hub::{Shared, Subscriber};
use super::protocol::{event_line, line, Reply, Request};
use super::QueryMsg;
use crate::accept::{self, Accepting, StopAccepting};
use crate::metrics::agent::AgentStats;

/// Connections served at once; more are refused with an error line.
pub const MAX_CLIENTS: u64 = 64;
/// Send-buffer bytes a stream leaves free for its final line.
pub const RESERVE: usize = 32 * 1024;
/// A request line longer than this is refused.
const MAX_REQUEST: u64 = 64 * 1024;
/// How long a `ps`, `status` or `policy` request waits for the pipeline thread.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What every connection thread needs.
#[derive(Clone)]
struct Ctx {
    shared: Shared,
    queries: SyncSender<QueryMsg>,
    stats: Arc<AgentStats>,
    client_queue: usize,
}

/// The listening socket; removed when dropped.
pub struct Server {
    path: PathBuf,
    ino: u64,
    /// Ends the accept loop's wait (the socket's path may no longer lead to this listener).
    stop_accepting: StopAccepting,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (root only) and starts accepting.
    pub fn start(
        path: &Path,
        shared: Shared,
        queries: SyncSender<QueryMsg>,
        stats: Arc<AgentStats>,
        client_queue: usize,
    ) -> Result<Server> {
        let listener = bind(path)?;
        listener
            .set_nonblocking(true)
            .context("making the API socket non-blocking")?;
        let ino = std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
        let (accepting, stop_accepting) =
            accept::stoppable().context("creating the API thread's stop pipe")?;
        let ctx = Ctx {
            shared,
            queries,
            stats,
            client_queue: client_queue.max(1),
        };
        let thread = std::thread::Builder::new()
            .name("shrike-api".into())
            .spawn(move || accept_loop(listener, accepting, ctx))
            .context("starting the API thread")?;
        Ok(Server {
            path: path.to_path_buf(),
            ino,
            stop_accepting,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_accepting.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Remove the socket only if it is still ours (not a newer agent's).
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the socket root-only; refuses when another agent answers on it.
fn bind(path: &Path) -> Result<UnixListener> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.exists() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {} for the API socket", parent.display()))?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} root-only", parent.display()))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!(
                "--api-socket {}: the path exists and is not a socket; remove it or choose another path",
                path.display()
            );
        }
        if UnixStream::connect(path).is_ok() {
            bail!(
                "--api-socket {}: another shrike agent is serving it; stop it or give this one another --api-socket (or --no-api)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let temp = parent.join(format!(".api.sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp)
        .with_context(|| format!("binding the API socket {}", temp.display()))?;
    let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))
        .and_then(|_| rename_no_replace(&temp, path));
    if let Err(err) = placed {
        let _ = std::fs::remove_file(&temp);
        if err.kind() == io::ErrorKind::AlreadyExists {
            bail!(
                "--api-socket {}: another shrike agent placed its socket there while this one started; stop it or give this one another --api-socket (or --no-api)",
                path.display()
            );
        }
        return Err(err).with_context(|| format!("placing the API socket at {}", path.display()));
    }
    Ok(listener)
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`): two agents starting at
/// once must not both take the path, the second silently replacing the first's socket. A file
/// system without `RENAME_NOREPLACE` gets a plain rename.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))
    };
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: both are NUL-terminated strings that outlive the call; AT_FDCWD resolves
    // relative paths as rename(2) does.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EINVAL) {
        return std::fs::rename(from, to);
    }
    Err(err)
}

fn accept_loop(listener: UnixListener, accepting: Accepting, ctx: Ctx) {
    while accepting.wait(&listener) {
        let mut conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(err) => {
                accept::after_accept_error(&err);
                continue;
            }
        };
        if let Err(why) = peer_allowed(&conn) {
            let _ = conn.write_all(line(&Reply::Error { message: why }).as_bytes());
            continue;
        }
        if ctx.stats.api_clients.load(Relaxed) >= MAX_CLIENTS {
            let message = format!("too many API clients ({MAX_CLIENTS}): try again later");
            let _ = conn.write_all(line(&Reply::Error { message }).as_bytes());
            continue;
        }
        ctx.stats.api_clients.fetch_add(1, Relaxed);
        let c = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("shrike-api-conn".into())
            .spawn(move || {
                if let Err(err) = serve(conn, &c) {
                    tracing::debug!(%err, "API connection");
                }
                c.stats.api_clients.fetch_sub(1, Relaxed);
            });
        if spawned.is_err() {
            ctx.stats.api_clients.fetch_sub(1, Relaxed);
        }
    }
}

/// Root, or the user the agent runs as.
fn peer_allowed(conn: &UnixStream) -> Result<(), String> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writes of the sizes given; the fd is open.
    let rc = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if rc == 0 && (cred.uid == 0 || cred.uid == me) {
        Ok(())
    } else {
        Err(format!(
            "permission denied: the shrike API is for root (uid {} connected)",
            cred.uid
        ))
    }
}

fn serve(conn: UnixStream, ctx: &Ctx) -> io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    out.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut text = String::new();
    loop {
        text.clear();
        if (&mut reader).take(MAX_REQUEST).read_line(&mut text)? == 0 {
            return Ok(());
        }
        if !text.ends_with('\n') && text.len() as u64 >= MAX_REQUEST {
            let message = format!("request longer than {MAX_REQUEST} bytes");
            return out.write_all(line(&Reply::Error { message }).as_bytes());
        }
        if text.trim().is_empty() {
            continue;
        }
        let request: Request = match serde_json::from_str(text.trim()) {
            Ok(r) => r,
            Err(e) => {
                let message = format!("not a request ({e}); see docs/API.md");
                out.write_all(line(&Reply::Error { message }).as_bytes())?;
                continue;
            }
        };
        match request {
            Request::Events {
                follow,
                filter,
                limit,
            } => {
                let filter = match Filter::compile(&filter) {
                    Ok(f) => f,
                    Err(message) => {
                        out.write_all(line(&Reply::Error { message }).as_bytes())?;
                        continue;
                    }
                };
                if follow {
                    return follow_stream(out, filter, ctx);
                }
                recent(&mut out, &filter, limit, ctx)?;
            }
            other => {
                let reply = query(other, ctx);
                out.write_all(line(&reply).as_bytes())?;
            }
        }
    }
}

/// Asks the pipeline thread; it answers between batches.
fn query(request: Request, ctx: &Ctx) -> Reply {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    if ctx
        .queries
        .try_send(QueryMsg { request, reply: tx })
        .is_err()
    {
        return Reply::Error {
            message: "the agent has too many requests waiting; try again".into(),
        };
    }
    rx.recv_timeout(QUERY_TIMEOUT)
        .unwrap_or_else(|_| Reply::Error {
            message: format!(
                "the agent's pipeline did not answer within {} s (it is stopping or overloaded)",
                QUERY_TIMEOUT.as_secs()
            ),
        })
}

/// The most recent events that pass `filter` (the last `limit` of them), then `end: done`.
fn recent(
    out: &mut UnixStream,
    filter: &Filter,
    limit: Option<usize>,
    ctx: &Ctx,
) -> io::Result<()> {
    let limit = limit.unwrap_or(ctx.shared.recent_max);
    let picked: Vec<Arc<shrike_event::Event>> = {
        let recent = ctx.shared.recent.lock().unwrap_or_else(|e| e.into_inner());
        let mut picked: Vec<_> = recent
            .iter()
            .rev()
            .filter(|e| filter.matches(e))
            .take(limit)
            .cloned()
            .collect();
        picked.reverse();
        picked
    };
    let mut buf = io::BufWriter::new(&*out);
    for event in picked {
        if let Ok(json) = serde_json::to_string(&*event) {
            buf.write_all(event_line(&json).as_bytes())?;
        }
    }
    let end = Reply::End {
        reason: "done".into(),
        message: String::new(),
    };
    buf.write_all(line(&end).as_bytes())?;
    buf.flush()
}

/// Streams new events to the client until it leaves, falls behind or the agent stops.
fn follow_stream(conn: UnixStream, filter: Filter, ctx: &Ctx) -> io::Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<str>>(ctx.client_queue);
    let cut = Arc::new(AtomicBool::new(false));
    ctx.shared
        .subscribers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Subscriber {
            filter,
            tx,
            cut: cut.clone(),
        });
    conn.set_nonblocking(true)?;
    let mut out = Stream::new(conn)?;
    let mut pending: Option<(Arc<str>, usize)> = None;
    loop {
        if cut.load(Relaxed) {
            let message = format!(
                "cut off: this client read too slowly and {} events were waiting for it; the agent does not wait for clients (reconnect, or filter the stream)",
                ctx.client_queue
            );
            return out.finish(pending, "slow_client", &message);
        }
        if pending.is_none() {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => pending = Some((line, 0)),
                Err(RecvTimeoutError::Timeout) => {
                    if out.hung_up() {
                        return Ok(());
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if cut.load(Relaxed) {
                        continue;
                    }
                    return out.finish(pending, "shutdown", "the agent is stopping");
                }
            }
        }
        let Some((text, offset)) = pending.as_mut() else {
            continue;
        };
        if !out.room_for(text.len() - *offset) {
            if out.hung_up() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match out.conn.write(&text.as_bytes()[*offset..]) {
            Ok(n) => {
                *offset += n;
                if *offset == text.len() {
                    pending = None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A streaming connection and its socket's send-buffer size.
struct Stream {
    conn: UnixStream,
    sndbuf: usize,
}

impl Stream {
    fn new(conn: UnixStream) -> io::Result<Stream> {
        let mut sndbuf: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: sndbuf and len are valid for writes of the sizes given; the fd is open.
        let rc = unsafe {
            libc::getsockopt(
                conn.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut sndbuf as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Stream {
            conn,
            sndbuf: sndbuf.max(0) as usize,
        })
    }

    /// Bytes the socket holds unread by the client (as the kernel accounts them).
    fn queued(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int; the fd is an open unix socket.
        let rc = unsafe { libc::ioctl(self.conn.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
        if rc == 0 {
            n.max(0) as usize
        } else {
            0
        }
    }

    /// Whether `len` more bytes fit while leaving [`RESERVE`] free (always, when empty).
    fn room_for(&self, len: usize) -> bool {
        let queued = self.queued();
        queued == 0 || queued + len + 1024 + RESERVE <= self.sndbuf
    }

    /// Whether the client closed its end.
    fn hung_up(&self) -> bool {
        let mut fds = libc::pollfd {
            fd: self.conn.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let rc = unsafe { libc::poll(&mut fds, 1, 0) };
        rc > 0 && fds.revents & (libc::POLLHUP | libc::POLLERR) != 0
    }

    /// Completes a line half written, writes the final `end` line and closes.
    fn finish(
        mut self,
        pending: Option<(Arc<str>, usize)>,
        reason: &str,
        message: &str,
    ) -> io::Result<()> {
        self.conn.set_nonblocking(false)?;
        self.conn.set_write_timeout(Some(Duration::from_secs(2)))?;
        if let Some((text, offset)) = pending.filter(|(_, o)| *o > 0) {
            self.conn.write_all(&text.as_bytes()[offset..])?;
        }
        let end = Reply::End {
            reason: reason.into(),
            message: message.into(),
        };
        self.conn.write_all(line(&end).as_bytes())?;
        self.conn.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn shared() -> Shared {
        Shared {
            recent: Arc::default(),
            subscribers: Arc::default(),
            recent_max: 1,
        }
    }

    fn start(path: &Path) -> Result<Server> {
        let (tx, _queries) = mpsc::sync_channel(1);
        Server::start(path, shared(), tx, Arc::new(AgentStats::default()), 1)
    }

    fn socket_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("shrike-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Drops `server` on a thread of its own and says whether that returned within 10 s.
    fn stops_in_time(server: Server) -> bool {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            drop(server);
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(10)).is_ok()
    }

    /// A server whose path another socket took over (or that was removed) still stops: its
    /// accept loop is not woken through the path. Before, the wake-up connection reached the
    /// other socket and the agent's stop waited for ever.
    #[test]
    fn stops_when_its_path_leads_elsewhere_or_nowhere() {
        let dir = socket_dir("elsewhere");
        let path = dir.join("api.sock");
        let server = start(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        assert!(stops_in_time(server), "the server did not stop");
        assert!(path.exists(), "another's socket is left in place");
        drop(other);
        std::fs::remove_file(&path).unwrap();

        let server = start(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(stops_in_time(server), "the server did not stop");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A running server answers, and a second one for the same path is refused while the
    /// first serves it; the first's socket is removed when it stops.
    #[test]
    fn one_server_per_path() {
        let dir = socket_dir("one");
        let path = dir.join("api.sock");
        let first = start(&path).unwrap();
        let mut conn = UnixStream::connect(&path).unwrap();
        conn.write_all(b"not json\n").unwrap();
        let mut reply = String::new();
        BufReader::new(&conn).read_line(&mut reply).unwrap();
        assert!(reply.contains("not a request"), "{reply}");
        drop(conn);
        let second = start(&path).err().expect("a second server is refused");
        assert!(
            format!("{second:#}").contains("another shrike agent"),
            "{second:#}"
        );
        assert!(stops_in_time(first));
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Placing a socket never replaces one that appeared meanwhile (two agents starting at
    /// once).
    #[test]
    fn placing_does_not_replace() {
        let dir = socket_dir("place");
        std::fs::create_dir_all(&dir).unwrap();
        let (from, to) = (dir.join("new"), dir.join("taken"));
        std::fs::write(&from, "new").unwrap();
        std::fs::write(&to, "old").unwrap();
        let err = rename_no_replace(&from, &to).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "old");
        std::fs::remove_file(&to).unwrap();
        rename_no_replace(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
