//! A minimal HTTP/1.1 receiver on loopback for the HTTP transports' tests (Loki push, OTLP
//! logs): it keeps every request it answered 2xx, can be told to answer the next requests with
//! other statuses, and can be stopped (open connections cut, nothing answered) and started
//! again on the same port, as a crashed and restarted server would be.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request the receiver accepted.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Checks a request the way the real server would; `Err` is answered 400 with the message.
type Check = dyn Fn(&Request) -> Result<(), String> + Send + Sync;

#[derive(Default)]
struct State {
    accepted: Mutex<Vec<Request>>,
    statuses: Mutex<VecDeque<u16>>,
}

pub struct Receiver {
    pub port: u16,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Called on each request before it is answered; `Err` answers 400 with the message
    /// (how the real server would refuse a malformed payload).
    check: Arc<Check>,
}

impl Receiver {
    pub fn start(
        check: impl Fn(&Request) -> Result<(), String> + Send + Sync + 'static,
    ) -> Receiver {
        let mut r = Receiver {
            port: 0,
            state: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
            check: Arc::new(check),
        };
        r.run();
        r
    }

    /// Listens (again) on the same port.
    pub fn run(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("binding the receiver");
        self.port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        let state = self.state.clone();
        let check = self.check.clone();
        self.thread = Some(std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (stop, state, check) = (stop.clone(), state.clone(), check.clone());
                std::thread::spawn(move || serve(conn, &stop, &state, &*check));
            }
        }));
    }

    /// Stops like a killed server: no more answers, open connections cut.
    pub fn kill(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        // Connection threads notice the flag within their 50 ms read timeout.
        std::thread::sleep(Duration::from_millis(100));
    }

    /// The next `n` requests are answered `status` (and not kept).
    pub fn answer_next(&self, status: u16, n: usize) {
        let mut s = self.state.statuses.lock().unwrap();
        s.extend(std::iter::repeat_n(status, n));
    }

    pub fn accepted(&self) -> Vec<Request> {
        self.state.accepted.lock().unwrap().clone()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(conn: TcpStream, stop: &AtomicBool, state: &State, check: &Check) {
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        // Wait for the next request line, giving up when the receiver is stopped.
        let mut line = String::new();
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) if line.ends_with('\n') => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let request = Request {
            method,
            path,
            headers,
            body,
        };
        let forced = state.statuses.lock().unwrap().pop_front();
        let (status, message) = match forced {
            Some(s) => (s, format!("forced status {s}")),
            None => match check(&request) {
                Ok(()) => {
                    state.accepted.lock().unwrap().push(request);
                    (204, String::new())
                }
                Err(e) => (400, e),
            },
        };
        let answer = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{message}",
            message.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
