//! The `/metrics` endpoint: a small HTTP/1.1 server on its own thread (std's `TcpListener`),
//! one request per connection, for Prometheus to scrape.
//!
//! Off by default (`shrike run --metrics 127.0.0.1:9464`). Connections are served one at a
//! time with 5 s read and write timeouts, so a client that connects and says nothing costs a
//! scrape 5 s at most and never touches the pipeline: rendering reads atomics and maps only.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Registry;
use crate::accept::{self, StopAccepting};

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A running metrics endpoint; stopped when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    /// Ends the accept loop's wait (a wake-up connection could be refused or time out).
    stop_accepting: StopAccepting,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` and serves `registry` at `/metrics`.
    pub fn start(addr: SocketAddr, registry: Registry) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let (accepting, stop_accepting) = accept::stoppable()?;
        let thread = std::thread::Builder::new()
            .name("shrike-metrics".into())
            .spawn(move || {
                while accepting.wait(&listener) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            if let Err(err) = serve(conn, &registry) {
                                tracing::debug!(%err, "metrics request");
                            }
                        }
                        Err(err) => accept::after_accept_error(&err),
                    }
                }
            })?;
        Ok(MetricsServer {
            addr,
            stop_accepting,
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port chosen when `--metrics` gave port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_accepting.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut conn: TcpStream, registry: &Registry) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 16 * 1024 {
            return respond(
                &mut conn,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"",
            );
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => respond(
            &mut conn,
            "200 OK",
            CONTENT_TYPE,
            registry.render().as_bytes(),
        ),
        ("GET", "/") => respond(
            &mut conn,
            "200 OK",
            "text/plain; charset=utf-8",
            b"shrike metrics: GET /metrics\n",
        ),
        ("GET", _) => respond(
            &mut conn,
            "404 Not Found",
            "text/plain",
            b"not found: try /metrics\n",
        ),
        _ => respond(
            &mut conn,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
        ),
    }
}

fn respond(conn: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Kind;

    /// A GET of /metrics over a real socket returns the registry's exposition with the
    /// format's content type; other paths are 404.
    #[test]
    fn serves_the_exposition_over_http() {
        let registry = Registry::default();
        registry.single("shrike_up", "Up.", Kind::Gauge, || 1.0);
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), registry).unwrap();
        let get = |path: &str| {
            let mut c = TcpStream::connect(server.addr()).unwrap();
            write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut text = String::new();
            c.read_to_string(&mut text).unwrap();
            text
        };
        let text = get("/metrics");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains(CONTENT_TYPE), "{text}");
        assert!(
            text.ends_with("# TYPE shrike_up gauge\nshrike_up 1\n"),
            "{text}"
        );
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
    }
}
