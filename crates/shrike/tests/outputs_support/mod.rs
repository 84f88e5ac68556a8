//! What the output tests share: synthetic events (no BPF: the framework is driven directly),
//! output configurations from YAML, and a small HTTP server that decodes webhook batches and
//! can be killed and restarted on the same port.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shrike::outputs::OutputConfig;
use shrike_event::{Alert, Event, EventKind, Process, Timestamp};

/// An event of `kind` by a process whose pid is `id` (the tests' event identity).
pub fn event(id: u32, kind: EventKind) -> Event {
    let process = Process {
        pid: id,
        tid: id,
        binary: "/usr/bin/synthetic".into(),
        args: vec!["synthetic".into(), format!("--n={id}")].into(),
        comm: "synthetic".into(),
        ..Process::default()
    };
    Event::new(
        Timestamp(1_700_000_000_000_000_000 + u64::from(id) * 1000),
        kind,
        "node-test".into(),
        Arc::new(process),
    )
}

/// An exec that raised `rule` at `severity`.
pub fn alert(id: u32, rule: &str, severity: &str) -> Event {
    let mut e = event(id, EventKind::ProcessExec);
    e.alerts.push(Alert {
        rule_id: rule.into(),
        rule: format!("Rule {rule}"),
        severity: severity.into(),
        action: "alert".into(),
        outcome: "alerted".into(),
        mitre: vec!["T1059".into()],
        incident_id: None,
    });
    e
}

pub fn config(yaml: &str) -> OutputConfig {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// The pid of a JSON event line.
pub fn pid_of(value: &serde_json::Value) -> u32 {
    value["process"]["pid"].as_u64().expect("process.pid") as u32
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the webhook server received: every event of every batch, in arrival order.
#[derive(Default)]
pub struct Received {
    pub events: Vec<serde_json::Value>,
    pub batches: usize,
    pub headers: Vec<BTreeMap<String, String>>,
}

/// An HTTP/1.1 server on loopback that takes POSTed JSON arrays (decoding each batch; a
/// batch that is not a JSON array of objects is answered 400 and recorded nowhere).
pub struct WebhookServer {
    pub port: u16,
    pub received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebhookServer {
    pub fn start(port: u16, received: Arc<Mutex<Received>>) -> WebhookServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the webhook port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let thread = std::thread::spawn({
            let (stop, conns, received) = (stop.clone(), conns.clone(), received.clone());
            move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            conns.lock().unwrap().push(stream.try_clone().unwrap());
                            let (stop, received) = (stop.clone(), received.clone());
                            std::thread::spawn(move || serve(stream, &stop, &received));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            }
        });
        WebhookServer {
            port,
            received,
            stop,
            conns,
            thread: Some(thread),
        }
    }

    /// Kills the server: the listener closes and every connection is reset.
    pub fn kill(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, stop: &AtomicBool, received: &Mutex<Received>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || stop.load(Ordering::SeqCst) {
            return;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() || stop.load(Ordering::SeqCst) {
            return;
        }
        let batch: Result<Vec<serde_json::Value>, _> = serde_json::from_slice(&body);
        let response: &[u8] = match batch {
            Ok(events) if events.iter().all(|e| e.is_object()) => {
                let mut r = received.lock().unwrap();
                r.events.extend(events);
                r.batches += 1;
                r.headers.push(headers);
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
            }
            _ => b"HTTP/1.1 400 Bad Request\r\nContent-Length: 9\r\n\r\nnot json\n",
        };
        if writer.write_all(response).is_err() {
            return;
        }
    }
}

/// Polls `cond` every 10 ms for at most `limit`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}
