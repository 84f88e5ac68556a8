//! Accept loops that a stop ends without a connection: the API socket's and the metrics
//! endpoint's threads wait in `poll(2)` on their listener and on a pipe of their own, and
//! [`StopAccepting`] (dropped, or [`StopAccepting::stop`]) closes the pipe's other end.
//!
//! Waking a blocked `accept()` by connecting to one's own address is not enough: a unix
//! socket's path can be taken over by another agent (or removed) while this one runs, and the
//! wake-up connection then reaches someone else — or nobody — and the thread, and the agent's
//! stop with it, waits for ever.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The thread's side: [`Accepting::wait`] says when a connection is ready or the stop came.
pub struct Accepting {
    woken: UnixStream,
}

/// The owner's side: dropping it (or [`StopAccepting::stop`]) ends the wait.
pub struct StopAccepting {
    wake: Option<UnixStream>,
}

/// A connected pair: the thread keeps [`Accepting`], the owner [`StopAccepting`].
pub fn stoppable() -> io::Result<(Accepting, StopAccepting)> {
    let (woken, wake) = UnixStream::pair()?;
    Ok((Accepting { woken }, StopAccepting { wake: Some(wake) }))
}

/// How long a loop pauses after an `accept()` that failed for want of resources (out of file
/// descriptors or memory), instead of spinning on a listener that stays readable.
pub const RETRY_PAUSE: Duration = Duration::from_millis(50);

impl Accepting {
    /// Waits until `listener` has a connection to accept (`true`) or the stop came (`false`).
    /// The listener should be non-blocking: a connection that is gone again by the time the
    /// thread calls `accept()` then costs a `WouldBlock`, not a wait.
    pub fn wait(&self, listener: &impl AsFd) -> bool {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: listener.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.woken.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfd for the duration of the call, and
            // both descriptors stay open while `self` and `listener` are borrowed.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if rc < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return false;
            }
            if fds[1].revents != 0 {
                return false;
            }
            if fds[0].revents & libc::POLLIN != 0 {
                return true;
            }
            if fds[0].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return false;
            }
        }
    }
}

impl StopAccepting {
    /// Ends the wait of the thread's [`Accepting`] (now and for every later call).
    pub fn stop(&mut self) {
        self.wake = None;
    }
}

/// What an accept loop does with an `accept()` error: `WouldBlock` (the connection is gone
/// again), an interruption or an aborted connection are passed over at once; anything else
/// (out of file descriptors, out of memory) pauses the loop for [`RETRY_PAUSE`] first.
pub fn after_accept_error(err: &io::Error) {
    let transient = matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
    );
    if !transient {
        std::thread::sleep(RETRY_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn listener() -> (UnixListener, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "shrike-accept-test-{}-{:?}.sock",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        (l, path)
    }

    /// A connection makes `wait` return true and `accept` then has it.
    #[test]
    fn a_connection_is_reported_ready() {
        let (l, path) = listener();
        let (accepting, _stop) = stoppable().unwrap();
        let _client = UnixStream::connect(&path).unwrap();
        assert!(accepting.wait(&l));
        assert!(l.accept().is_ok());
        std::fs::remove_file(&path).unwrap();
    }

    /// The stop ends a wait that no connection would end — the listener's path was removed,
    /// so connecting to it, as a wake-up, cannot reach this thread.
    #[test]
    fn the_stop_ends_a_wait_no_connection_can_reach() {
        let (l, path) = listener();
        std::fs::remove_file(&path).unwrap();
        let (accepting, mut stop) = stoppable().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(accepting.wait(&l)));
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "waits while nothing happens"
        );
        stop.stop();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(false));
    }

    /// Dropping the owner's side stops the wait as well.
    #[test]
    fn dropping_the_stop_side_ends_the_wait() {
        let (l, path) = listener();
        let (accepting, stop) = stoppable().unwrap();
        drop(stop);
        assert!(!accepting.wait(&l));
        std::fs::remove_file(&path).unwrap();
    }
}
