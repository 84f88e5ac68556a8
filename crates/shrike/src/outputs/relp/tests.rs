//! The RELP client against scripted servers on loopback: frames parse whole or not at all, a
//! message counts only once acknowledged, a retried batch resends only what was not
//! acknowledged, and transaction numbers wrap from 999999999 to 1.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use super::*;

#[test]
fn frames_parse_whole_or_wait_for_more() {
    let (f, used) = parse(b"3 rsp 6 200 OK\nrest").unwrap().unwrap();
    assert_eq!(
        (f.txnr, f.command.as_str(), &f.data[..], used),
        (3, "rsp", &b"200 OK"[..], 15)
    );
    let (f, used) = parse(b"0 serverclose 0\n").unwrap().unwrap();
    assert_eq!(
        (f.txnr, f.command.as_str(), f.data.len(), used),
        (0, "serverclose", 0, 16)
    );
    for part in [
        "",
        "3",
        "3 rsp",
        "3 rsp 6",
        "3 rsp 6 200 O",
        "3 rsp 6 200 OK",
    ] {
        assert_eq!(parse(part.as_bytes()).unwrap(), None, "{part:?}");
    }
    for bad in [
        "x rsp 0\n",
        "3 r$p 0\n",
        "3 rsp 2 OKX\n",
        "3 rsp 1\n",
        "1234567890 rsp 0\n",
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
    }
}

#[test]
fn transaction_numbers_wrap_to_one() {
    let mut s = Session {
        stream: Box::new(std::io::Cursor::new(Vec::new())),
        rbuf: Vec::new(),
        next: MAX_TXNR,
    };
    let mut out = Vec::new();
    assert_eq!(s.frame(&mut out, "syslog", b"a"), MAX_TXNR);
    assert_eq!(s.frame(&mut out, "close", b""), 1);
    assert_eq!(out, b"999999999 syslog 1 a\n1 close 0\n");
}

/// One frame from a test's server side.
fn read(r: &mut BufReader<TcpStream>) -> Option<Frame> {
    let mut head = Vec::new();
    for _ in 0..3 {
        r.read_until(b' ', &mut head).ok()?;
    }
    // `N close 0\n`: the third field ended at the trailer, not at a SP.
    if head.ends_with(b"\n") {
        return parse(&head).ok()?.map(|(f, _)| f);
    }
    let len: usize = std::str::from_utf8(&head)
        .ok()?
        .split(' ')
        .nth(2)?
        .parse()
        .ok()?;
    let mut rest = vec![0; len + 1];
    std::io::Read::read_exact(r, &mut rest).ok()?;
    head.extend_from_slice(&rest);
    parse(&head).ok()?.map(|(f, _)| f)
}

/// A server that answers `open`, then acknowledges the first `ack` messages of each connection
/// and reports every message it reads; `cut` closes the connection after that many acks.
fn server(ack: usize, cut: bool) -> (u16, mpsc::Receiver<(usize, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (conn, stream) in listener.incoming().flatten().enumerate() {
            let mut w = stream.try_clone().unwrap();
            let mut r = BufReader::new(stream);
            let mut acked = 0;
            while let Some(f) = read(&mut r) {
                let reply = match f.command.as_str() {
                    "open" => {
                        let offers = "200 OK\nrelp_version=0\ncommands=syslog";
                        format!("{} rsp {} {offers}\n", f.txnr, offers.len())
                    }
                    "syslog" => {
                        let _ = tx.send((conn, String::from_utf8_lossy(&f.data).into_owned()));
                        if acked == ack {
                            if cut {
                                break;
                            }
                            continue;
                        }
                        acked += 1;
                        format!("{} rsp 6 200 OK\n", f.txnr)
                    }
                    _ => format!("{} rsp 0\n", f.txnr),
                };
                if w.write_all(reply.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    (port, rx)
}

fn connect(port: u16) -> impl FnOnce() -> io::Result<Box<dyn Stream>> {
    move || {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_millis(300)))?;
        Ok(Box::new(tcp) as Box<dyn Stream>)
    }
}

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            line: format!("m{i}").into(),
            time_unix_ns: i as u64,
            kind: "dns",
            severity: None,
            rule: None,
        })
        .collect()
}

fn format(r: &Record, buf: &mut Vec<u8>) {
    buf.extend_from_slice(r.line.as_bytes());
}

/// A server that reads every message and acknowledges none: nothing is delivered, however
/// much was written — the batch fails (to be retried) when the acknowledgements time out.
#[test]
fn written_is_not_delivered_without_an_acknowledgement() {
    let (port, rx) = server(0, false);
    let mut client = Client::default();
    let batch = records(5);
    match client.deliver(&batch, connect(port), format) {
        Err(Failure::Io(e)) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got.len(), 5, "the server read every message: {got:?}");
}

/// Three of five messages acknowledged, then the connection is cut: the retry of the same
/// batch opens a new session and sends only the two unacknowledged ones.
#[test]
fn a_retry_resends_only_what_was_not_acknowledged() {
    let (port, rx) = server(3, true);
    let mut client = Client::default();
    let batch = records(5);
    assert!(matches!(
        client.deliver(&batch, connect(port), format),
        Err(Failure::Io(_))
    ));
    // The second connection acknowledges its first three: both remaining messages.
    client.deliver(&batch, connect(port), format).unwrap();
    let got: Vec<_> = rx.try_iter().collect();
    let second: Vec<_> = got
        .iter()
        .filter(|(c, _)| *c == 1)
        .map(|(_, m)| m.as_str())
        .collect();
    assert_eq!(second, ["m3", "m4"], "{got:?}");
    // A new batch (the session's third acknowledgement) is sent whole.
    client.deliver(&records(1), connect(port), format).unwrap();
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got, [(1, "m0".to_string())]);
}
