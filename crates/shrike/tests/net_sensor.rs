//! Host integration tests of the network sensor, as root: the real `shrike run` with its real
//! BPF programs, real sockets on loopback and in network namespaces joined by veth pairs that
//! the tests create (and always delete, through a Drop guard), exact tuples and processes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use serde_json::Value;

/// The file sensor is not what these tests are about; leaving it out halves the start-up.
const NO_FILE: &[&str] = &["--no-file-sensor"];

fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// How long the test's clients and servers wait on one socket operation before they give up
/// and say so: a lost exchange becomes a failure that shows every socket's state, not a test
/// that hangs until the kernel matrix kills its guest.
const IO_TIMEOUT_SECS: u32 = 60;

/// Two network namespaces joined by a veth pair, addressed 10.<x>.<y>.1 / .2 and fd<x>::1 / ::2;
/// optionally a second pair from the host namespace to `a`. Deleted on drop, even when a test
/// fails.
struct Netns {
    id: u32,
    a: String,
    b: String,
    host_if: Option<String>,
    v4: [String; 2],
    v6: [String; 2],
}

impl Netns {
    fn new(with_host_link: bool) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = (std::process::id() % 200) * 10 + n;
        let x = 100 + (id / 250) % 100;
        let y = id % 250;
        let a = format!("shrk{id}a");
        let b = format!("shrk{id}b");
        let ns = Netns {
            id,
            a: a.clone(),
            b: b.clone(),
            host_if: with_host_link.then(|| format!("shrk{id}h")),
            v4: [format!("10.{x}.{y}.1"), format!("10.{x}.{y}.2")],
            // Canonical text (`fd65::1`, not `fd65:0::1` when y is 0), as events write it.
            v6: [1, 2].map(|host| {
                format!("fd{x:02x}:{y:x}::{host}")
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .to_string()
            }),
        };
        // Leftovers of an interrupted run.
        let _ = Command::new("ip").args(["netns", "del", &a]).output();
        let _ = Command::new("ip").args(["netns", "del", &b]).output();
        sh(&format!("ip netns add {a} && ip netns add {b}"));
        sh(&format!(
            "ip link add {a}v type veth peer name {b}v && ip link set {a}v netns {a} && \
             ip link set {b}v netns {b} && \
             ip -n {a} addr add {}/24 dev {a}v && ip -n {b} addr add {}/24 dev {b}v && \
             ip -n {a} addr add {}/64 dev {a}v nodad && ip -n {b} addr add {}/64 dev {b}v nodad && \
             ip -n {a} link set {a}v up && ip -n {b} link set {b}v up && \
             ip -n {a} link set lo up && ip -n {b} link set lo up",
            ns.v4[0], ns.v4[1], ns.v6[0], ns.v6[1]
        ));
        // Links come up asynchronously: wait until both ends can carry traffic.
        for _ in 0..50 {
            let state = |n: &str| {
                let out = Command::new("ip")
                    .args(["-n", n, "-o", "link", "show", &format!("{n}v")])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).contains("LOWER_UP")
            };
            if state(&a) && state(&b) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if let Some(h) = &ns.host_if {
            // host <-> a, on a /30 of its own.
            sh(&format!(
                "ip link add {h} type veth peer name {a}h && ip link set {a}h netns {a} && \
                 ip addr add {} dev {h} && ip link set {h} up && \
                 ip -n {a} addr add {} dev {a}h && ip -n {a} link set {a}h up",
                ns.host_addr(0, true),
                ns.host_addr(1, true)
            ));
        }
        ns
    }

    /// Address of the host end (0) or the namespace end (1) of the host link.
    fn host_addr(&self, end: usize, with_prefix: bool) -> String {
        let addr = format!(
            "172.{}.{}.{}",
            16 + (self.id / 250) % 16,
            self.id % 250,
            1 + end
        );
        if with_prefix {
            format!("{addr}/30")
        } else {
            addr
        }
    }

    fn exec(&self, ns: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(h) = &self.host_if {
            let _ = Command::new("ip").args(["link", "del", h]).output();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.a]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).output();
    }
}

/// A Python TCP server: prints its port, then for each connection reads everything, answers
/// `reply` bytes, closes. Killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(mut cmd: Command, host: &str, family: &str, reply: usize) -> Server {
        let script = format!(
            r#"
import socket, sys
s = socket.socket(socket.{family}, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{host}", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.settimeout({IO_TIMEOUT_SECS})
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
        c.sendall(b"r" * {reply})
    except OSError as e:
        print("server: a connection stuck:", e, file=sys.stderr, flush=True)
    c.close()
"#
        );
        let mut child = cmd
            .arg(PYTHON)
            .arg("-c")
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("port: {line:?}"));
        Server { child, port }
    }

    fn pid(&self) -> u32 {
        // `ip netns exec` execs the command in the same process.
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a Python client that connects to host:port, sends `send` bytes, half-closes, reads the
/// reply. Returns (pid, local port, stdout) — the port is -1 and stdout the error when the
/// connect failed; when the exchange stalled, stdout says so and ends with `ss`'s picture of
/// every TCP socket in every namespace.
fn client(
    mut cmd: Command,
    family: &str,
    host: &str,
    port: u16,
    send: usize,
) -> (u32, i64, String) {
    let script = format!(
        r#"
import socket, sys
s = socket.socket(socket.{family}, socket.SOCK_STREAM)
s.settimeout({IO_TIMEOUT_SECS})
try:
    s.connect(("{host}", {port}))
except OSError as e:
    print(-1, e.strerror or e, flush=True)
    sys.exit(0)
print(s.getsockname()[1], flush=True)
n = 0
try:
    s.sendall(b"x" * {send})
    s.shutdown(socket.SHUT_WR)
    while True:
        d = s.recv(65536)
        if not d:
            break
        n += len(d)
except OSError as e:
    print("stuck after", n, "bytes of the reply:", e, flush=True)
    sys.exit(0)
s.close()
print("got", n, flush=True)
"#
    );
    let child = cmd
        .arg(PYTHON)
        .arg("-c")
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = text.split_whitespace().next().unwrap_or("-1");
    let port = first.parse().unwrap_or(-1);
    if port > 0 && !text.contains("got ") {
        // Connected but the exchange did not finish: say where every TCP socket stood.
        let state = Command::new("sh")
            .args(["-c", "ss -tanoi; ip -all netns exec ss -tanoi"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        return (pid, port, format!("{text}TCP sockets then:\n{state}"));
    }
    (pid, port, text)
}

fn net_event<'a>(kind: &'a str, pid: u32) -> impl Fn(&Value) -> bool + 'a {
    move |e| kind_is(e, kind) && e["process"]["pid"] == pid
}

fn tuple(e: &Value) -> (String, u64, String, u64) {
    let n = &e["network"];
    (
        n["saddr"].as_str().unwrap().to_string(),
        n["sport"].as_u64().unwrap(),
        n["daddr"].as_str().unwrap().to_string(),
        n["dport"].as_u64().unwrap(),
    )
}

/// The issue's check: a listener on 127.0.0.1 and python connecting to it yield net_listen,
/// net_connect (client) and net_accept (server) with mirrored 4-tuples and the right binaries,
/// and both closes report the bytes each way within 1%.
#[test]
fn loopback_connect_and_accept_have_matching_tuples_processes_and_flow_bytes() {
    if !require_root("loopback_connect_and_accept_have_matching_tuples_processes_and_flow_bytes") {
        return;
    }
    let agent = Agent::start(NO_FILE);
    let server = Server::start(Command::new("env"), "127.0.0.1", "AF_INET", 300_000);
    let (cpid, cport, out) = client(
        Command::new("env"),
        "AF_INET",
        "127.0.0.1",
        server.port,
        1_000_000,
    );
    assert!(out.contains("got 300000"), "{out}");
    let py = python_binary();

    let listen = agent.wait_for("net_listen", WAIT, net_event("net_listen", server.pid()));
    assert_eq!(listen["process"]["binary"], py.as_str());
    assert_eq!(
        (
            listen["network"]["saddr"].as_str(),
            listen["network"]["sport"].as_u64()
        ),
        (Some("127.0.0.1"), Some(u64::from(server.port)))
    );
    assert_eq!(listen["network"]["protocol"], "tcp");
    assert_eq!(listen["result"], 0);

    let connect = agent.wait_for("net_connect", WAIT, net_event("net_connect", cpid));
    assert_eq!(connect["process"]["binary"], py.as_str());
    assert_eq!(
        tuple(&connect),
        (
            "127.0.0.1".into(),
            cport as u64,
            "127.0.0.1".into(),
            u64::from(server.port)
        )
    );
    assert_eq!(connect["network"]["family"], "ipv4");
    assert_eq!(connect["network"]["direction"], "egress");
    assert_eq!(connect["result"], 0);

    let accept = agent.wait_for("net_accept", WAIT, |e| {
        net_event("net_accept", server.pid())(e) && e["network"]["dport"] == cport
    });
    assert_eq!(accept["process"]["binary"], py.as_str());
    assert_eq!(
        tuple(&accept),
        (
            "127.0.0.1".into(),
            u64::from(server.port),
            "127.0.0.1".into(),
            cport as u64
        )
    );
    assert_eq!(accept["network"]["direction"], "ingress");

    let within = |v: &Value, want: f64| {
        let got = v.as_f64().unwrap();
        (got - want).abs() <= want * 0.01
    };
    let cclose = agent.wait_for("client net_close", WAIT, |e| {
        net_event("net_close", cpid)(e) && e["network"]["sport"] == cport
    });
    assert_eq!(cclose["network"]["cookie"], connect["network"]["cookie"]);
    assert!(within(&cclose["network"]["bytes_sent"], 1e6), "{cclose}");
    assert!(
        within(&cclose["network"]["bytes_received"], 3e5),
        "{cclose}"
    );
    assert!(cclose["network"]["packets_sent"].as_u64().unwrap() > 0);
    let sclose = agent.wait_for("server net_close", WAIT, |e| {
        net_event("net_close", server.pid())(e) && e["network"]["dport"] == cport
    });
    assert!(
        within(&sclose["network"]["bytes_received"], 1e6),
        "{sclose}"
    );
    assert!(within(&sclose["network"]["bytes_sent"], 3e5), "{sclose}");
    assert_eq!(sclose["network"]["direction"], "ingress");
}

/// Where the TCP state program loads but cannot attach (made real by SHRIKE_FAULT_ATTACH, the
/// attach-failure path the kernel's refusal takes), a TCP connect is still reported, at the
/// call: the connect hooks are told before they are attached. The health event names the
/// capability lost.
#[test]
fn a_tcp_state_program_that_cannot_attach_leaves_connects_reported_at_the_call() {
    if !require_root("a_tcp_state_program_that_cannot_attach_leaves_connects_reported_at_the_call")
    {
        return;
    }
    let agent = Agent::start_with_env(
        &["--no-file-sensor", "--allow-degraded"],
        &[("SHRIKE_FAULT_ATTACH", "net_tcp_state")],
    );
    let health = agent.wait_for("agent_health", WAIT, |e| kind_is(e, "agent_health"));
    let tcp_state = health_states(&health)
        .into_iter()
        .find(|(name, _)| name == "net_tcp_state");
    assert_eq!(
        tcp_state.map(|(_, state)| state).as_deref(),
        Some("unavailable"),
        "{health}"
    );
    let server = Server::start(Command::new("env"), "127.0.0.1", "AF_INET", 1_000);
    let (cpid, _, out) = client(
        Command::new("env"),
        "AF_INET",
        "127.0.0.1",
        server.port,
        1_000,
    );
    assert!(out.contains("got 1000"), "{out}");
    let connect = agent.wait_for("net_connect", WAIT, net_event("net_connect", cpid));
    assert_eq!(connect["network"]["protocol"], "tcp", "{connect}");
    assert_eq!(connect["network"]["daddr"], "127.0.0.1", "{connect}");
    assert_eq!(
        connect["network"]["dport"],
        u64::from(server.port),
        "{connect}"
    );
    assert!(
        agent.events(|e| kind_is(e, "net_accept")).is_empty(),
        "no TCP state program, no accept events"
    );
}

/// curl as the client: the event names /usr/bin/curl and the server's port.
#[test]
fn curl_connecting_is_reported_with_its_binary() {
    if !require_root("curl_connecting_is_reported_with_its_binary") {
        return;
    }
    let agent = Agent::start(NO_FILE);
    let server = Server::start(Command::new("env"), "127.0.0.1", "AF_INET", 0);
    let child = Command::new("curl")
        .args([
            "-s",
            "-m",
            "2",
            &format!("http://127.0.0.1:{}/", server.port),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _ = child.wait_with_output();
    let e = agent.wait_for("curl net_connect", WAIT, net_event("net_connect", pid));
    assert_eq!(e["process"]["binary"], "/usr/bin/curl");
    assert_eq!(e["network"]["dport"], server.port);
    assert_eq!(e["network"]["daddr"], "127.0.0.1");
    assert_eq!(e["result"], 0);
}

/// IPv6 between two namespaces (exact tuples), and an IPv4 client of a dual-stack IPv6
/// listener, whose IPv4-mapped addresses are reported as IPv4.
#[test]
fn ipv6_between_namespaces_and_mapped_ipv4_is_reported_as_ipv4() {
    if !require_root("ipv6_between_namespaces_and_mapped_ipv4_is_reported_as_ipv4") {
        return;
    }
    let ns = Netns::new(false);
    let agent = Agent::start(NO_FILE);
    let server = Server::start(ns.exec(&ns.b), &ns.v6[1], "AF_INET6", 10);
    let (cpid, cport, out) = client(ns.exec(&ns.a), "AF_INET6", &ns.v6[1], server.port, 100);
    assert!(out.contains("got 10"), "{out}");
    let c = agent.wait_for("v6 net_connect", WAIT, net_event("net_connect", cpid));
    assert_eq!(c["network"]["family"], "ipv6");
    assert_eq!(
        tuple(&c),
        (
            ns.v6[0].clone(),
            cport as u64,
            ns.v6[1].clone(),
            u64::from(server.port)
        )
    );
    let a = agent.wait_for("v6 net_accept", WAIT, net_event("net_accept", server.pid()));
    assert_eq!(
        tuple(&a),
        (
            ns.v6[1].clone(),
            u64::from(server.port),
            ns.v6[0].clone(),
            cport as u64
        )
    );

    let dual = Server::start(Command::new("env"), "::", "AF_INET6", 1);
    let (cpid, cport, out) = client(Command::new("env"), "AF_INET", "127.0.0.1", dual.port, 1);
    assert!(out.contains("got 1"), "{out}");
    let a = agent.wait_for("mapped net_accept", WAIT, |e| {
        net_event("net_accept", dual.pid())(e) && e["network"]["dport"] == cport
    });
    assert_eq!(a["network"]["family"], "ipv4");
    assert_eq!(
        tuple(&a),
        (
            "127.0.0.1".into(),
            u64::from(dual.port),
            "127.0.0.1".into(),
            cport as u64
        )
    );
    let c = agent.wait_for("v4 net_connect", WAIT, net_event("net_connect", cpid));
    assert_eq!(c["network"]["family"], "ipv4");
}

/// A DNS resolver the test starts in one namespace, a client in the other: the query and the
/// response are parsed (name, type, rcode, A and CNAME answers) and attributed to the client,
/// and a later connect to the answered address names the domain. Malformed answers (a
/// compression-pointer loop, a truncated message) are reported with an empty query, not fatal.
#[test]
fn dns_query_and_answer_are_parsed_attributed_and_name_a_later_connect() {
    if !require_root("dns_query_and_answer_are_parsed_attributed_and_name_a_later_connect") {
        return;
    }
    let ns = Netns::new(false);
    let agent = Agent::start(NO_FILE);
    let target = Server::start(ns.exec(&ns.b), &ns.v4[1], "AF_INET", 1);
    let resolver_ip = &ns.v4[1];
    let answer_ip = &ns.v4[1];
    // A responder: for "good.*" a CNAME + A answer, for "loop.*" a pointer loop, for "cut.*"
    // a truncated message. Answers one query per datagram until killed.
    let responder = format!(
        r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("{resolver_ip}", 53))
print("ready", flush=True)
while True:
    q, addr = s.recvfrom(512)
    name_end = q.index(b"\0", 12) + 5
    question = q[12:name_end]
    hdr = q[:2] + b"\x81\x80" + b"\x00\x01"
    if b"good" in q:
        ans = b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, 6) + b"\x03cdn\xc0\x0c"
        ans += b"\xc0" + bytes([12 + len(question) + 12]) + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("{answer_ip}")
        s.sendto(hdr + b"\x00\x02\x00\x00\x00\x00" + question + ans, addr)
    elif b"loop" in q:
        s.sendto(hdr + b"\x00\x00\x00\x00\x00\x00" + b"\xc0\x0c" + b"\x00\x01\x00\x01", addr)
    else:
        s.sendto(hdr + b"\x00\x00\x00\x00\x00\x00", addr)
"#
    );
    let mut resp = ns
        .exec(&ns.b)
        .arg(PYTHON)
        .arg("-c")
        .arg(responder)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(resp.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let m = marker("dns").replace('-', "");
    let name = format!("good.{}.example", &m[m.len() - 12..]);
    let client = format!(
        r#"
import socket, struct, sys
def query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for i, n in enumerate(["{name}", "loop.x.example", "cut.x.example"]):
    s.sendto(query(n, 100 + i), ("{resolver_ip}", 53))
    s.recvfrom(512)
c = socket.create_connection(("{answer_ip}", {port}))
c.shutdown(socket.SHUT_WR)
c.recv(10)
print("done", flush=True)
"#,
        port = target.port
    );
    let out = ns
        .exec(&ns.a)
        .arg(PYTHON)
        .arg("-c")
        .arg(client)
        .output()
        .unwrap();
    let _ = resp.kill();
    let _ = resp.wait();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("done"),
        "{out:?}"
    );

    let q = agent.wait_for("dns query", WAIT, |e| {
        kind_is(e, "dns")
            && e["dns"]["query"] == name.as_str()
            && e["network"]["direction"] == "egress"
    });
    assert_eq!(q["process"]["binary"], python_binary());
    assert_eq!(q["dns"]["qtype"], "A");
    assert_eq!(q["dns"]["rcode"], Value::Null);
    assert_eq!(q["network"]["daddr"], resolver_ip.as_str());
    assert_eq!(q["network"]["dport"], 53);
    let pid = q["process"]["pid"].clone();
    let r = agent.wait_for("dns response", WAIT, |e| {
        kind_is(e, "dns")
            && e["dns"]["query"] == name.as_str()
            && e["network"]["direction"] == "ingress"
    });
    assert_eq!(
        r["process"]["pid"], pid,
        "the response goes to the asking process"
    );
    assert_eq!(r["dns"]["rcode"], "NOERROR");
    assert_eq!(
        r["dns"]["answers"],
        serde_json::json!([format!("cdn.{name}"), answer_ip])
    );
    let c = agent.wait_for("connect naming the domain", WAIT, |e| {
        kind_is(e, "net_connect") && e["process"]["pid"] == pid && e["network"]["protocol"] == "tcp"
    });
    assert_eq!(c["network"]["domain"], name.as_str());
    let bad = agent.wait_all(WAIT, |events| {
        events
            .iter()
            .filter(|e| {
                kind_is(e, "dns")
                    && e["process"]["pid"] == pid
                    && e["network"]["direction"] == "ingress"
                    && e["dns"]["query"] == ""
            })
            .count()
            >= 2
    });
    assert!(
        bad,
        "the loop and the cut answer are reported with an empty query"
    );
}

fn write_config(name: &str, json: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.json", marker(name)));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    path
}

/// An egress rule denying one port: the connect fails with "Operation not permitted", another
/// port still works, and the refusal is a net_connect event with result -1 and an alert with
/// outcome denied. A UDP send and a bind refused the same way; a binary-scoped rule stops curl
/// and not python.
#[test]
fn egress_udp_and_bind_denies_return_eperm_and_are_reported_as_denied() {
    if !require_root("egress_udp_and_bind_denies_return_eperm_and_are_reported_as_denied") {
        return;
    }
    let denied = Server::start(Command::new("env"), "127.0.0.1", "AF_INET", 1);
    let allowed = Server::start(Command::new("env"), "127.0.0.1", "AF_INET", 1);
    let curl_only = Server::start(Command::new("env"), "127.0.0.1", "AF_INET", 1);
    let udp_port = 40000 + (std::process::id() % 20000) as u16;
    let bind_port = udp_port + 1;
    let config = write_config(
        "netdeny",
        &format!(
            r#"{{"rules": [
            {{"id": "T-NET-1", "name": "test deny", "severity": "high", "cidr": "127.0.0.0/8",
              "ports": {}, "protocol": "tcp"}},
            {{"id": "T-NET-2", "name": "udp deny", "cidr": "127.0.0.1", "ports": {udp_port}, "protocol": "udp"}},
            {{"id": "T-NET-3", "name": "bind deny", "direction": "bind", "cidr": "0.0.0.0/0", "ports": {bind_port}}},
            {{"id": "T-NET-4", "name": "curl deny", "cidr": "127.0.0.1", "ports": {}, "binary": "/usr/bin/curl"}}
        ]}}"#,
            denied.port, curl_only.port
        ),
    );
    let agent = Agent::start(&["--no-file-sensor", "--net-config", config.to_str().unwrap()]);

    let (pid, port, out) = client(Command::new("env"), "AF_INET", "127.0.0.1", denied.port, 1);
    assert_eq!(port, -1, "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    let (_, port, out) = client(Command::new("env"), "AF_INET", "127.0.0.1", allowed.port, 1);
    assert!(
        port > 0 && out.contains("got 1"),
        "other destinations work: {out}"
    );
    let e = agent.wait_for("denied net_connect", WAIT, net_event("net_connect", pid));
    assert_eq!(e["result"], -1);
    assert_eq!(e["network"]["dport"], denied.port);
    assert_eq!(e["network"]["daddr"], "127.0.0.1");
    let alert = &e["alerts"][0];
    assert_eq!(alert["rule_id"], "T-NET-1");
    assert_eq!(alert["rule"], "test deny");
    assert_eq!(alert["action"], "deny");
    assert_eq!(alert["outcome"], "denied");

    let udp = Command::new(PYTHON)
        .arg("-c")
        .arg(format!(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             try:\n    s.sendto(b'x', ('127.0.0.1', {udp_port}))\n    print('sent')\n\
             except OSError as e:\n    print(e.strerror)\n\
             s.sendto(b'x', ('127.0.0.1', {}))\nprint('other sent')",
            udp_port + 2
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&udp.stdout);
    assert!(
        text.contains("Operation not permitted") && text.contains("other sent"),
        "{text}"
    );
    let e = agent.wait_for("denied udp send", WAIT, |e| {
        kind_is(e, "net_connect")
            && e["network"]["protocol"] == "udp"
            && e["network"]["dport"] == udp_port
    });
    assert_eq!(e["result"], -1);
    assert_eq!(e["alerts"][0]["rule_id"], "T-NET-2");

    let bind = Command::new(PYTHON)
        .arg("-c")
        .arg(format!(
            "import socket\ns = socket.socket()\n\
             try:\n    s.bind(('127.0.0.1', {bind_port}))\n    print('bound')\n\
             except OSError as e:\n    print(e.strerror)"
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&bind.stdout);
    assert!(text.contains("Operation not permitted"), "{text}");
    let e = agent.wait_for("denied bind", WAIT, |e| {
        kind_is(e, "net_bind") && e["network"]["sport"] == bind_port
    });
    assert_eq!(e["result"], -1);
    assert_eq!(e["network"]["saddr"], "127.0.0.1");
    assert_eq!(e["alerts"][0]["outcome"], "denied");

    let curl = Command::new("curl")
        .args([
            "-sSv",
            "-m",
            "2",
            &format!("http://127.0.0.1:{}/", curl_only.port),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&curl.stderr);
    assert!(
        !curl.status.success() && err.contains("Operation not permitted"),
        "{err}"
    );
    let (_, port, out) = client(
        Command::new("env"),
        "AF_INET",
        "127.0.0.1",
        curl_only.port,
        1,
    );
    assert!(port > 0, "the rule is for curl only: {out}");
    let e = agent.wait_for("curl denied", WAIT, |e| {
        kind_is(e, "net_connect") && e["process"]["binary"] == "/usr/bin/curl" && e["result"] == -1
    });
    assert_eq!(e["alerts"][0]["rule_id"], "T-NET-4");
    let _ = std::fs::remove_file(config);
}

/// An ingress rule at tc: SYNs from a namespace to one port are dropped (the connect times out)
/// while another port answers; the drop is reported once as a denied net_accept.
#[test]
fn ingress_drop_at_tc_stops_one_port_and_is_reported() {
    if !require_root("ingress_drop_at_tc_stops_one_port_and_is_reported") {
        return;
    }
    let ns = Netns::new(true);
    let host = ns.host_addr(0, false);
    let peer = ns.host_addr(1, false);
    let blocked = Server::start(Command::new("env"), &host, "AF_INET", 1);
    let open = Server::start(Command::new("env"), &host, "AF_INET", 1);
    let config = write_config(
        "tcdrop",
        &format!(
            r#"{{"interfaces": ["{}"], "rules": [
            {{"id": "T-TC-1", "name": "inbound block", "direction": "ingress", "cidr": "{peer}/32",
              "ports": {}, "protocol": "tcp"}}]}}"#,
            ns.host_if.as_deref().unwrap(),
            blocked.port
        ),
    );
    let agent = Agent::start(&["--no-file-sensor", "--net-config", config.to_str().unwrap()]);
    let script = |port: u16| {
        format!(
            "import socket\ns = socket.socket()\ns.settimeout(1.5)\n\
             try:\n    s.connect(('{host}', {port}))\n    print('connected')\n\
             except OSError as e:\n    print('failed', e)"
        )
    };
    let out = ns
        .exec(&ns.a)
        .arg(PYTHON)
        .arg("-c")
        .arg(script(blocked.port))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("failed"),
        "{out:?}"
    );
    let out = ns
        .exec(&ns.a)
        .arg(PYTHON)
        .arg("-c")
        .arg(script(open.port))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("connected"),
        "{out:?}"
    );
    let e = agent.wait_for("tc drop", WAIT, |e| {
        kind_is(e, "net_accept") && e["result"] == -1 && e["network"]["sport"] == blocked.port
    });
    assert_eq!(e["network"]["daddr"], peer.as_str());
    assert_eq!(e["network"]["saddr"], host.as_str());
    assert_eq!(e["network"]["direction"], "ingress");
    assert_eq!(e["alerts"][0]["rule_id"], "T-TC-1");
    assert_eq!(e["alerts"][0]["outcome"], "denied");
    let _ = std::fs::remove_file(config);
}

/// A shell whose stdin and stdout are a TCP connection (a reverse shell's shape) is decidable
/// from its exec event alone: process.stdio_sockets names fds 0 and 1 and the peer.
#[test]
fn exec_with_a_socket_as_stdio_reports_the_peer() {
    if !require_root("exec_with_a_socket_as_stdio_reports_the_peer") {
        return;
    }
    let agent = Agent::start(NO_FILE);
    let m = marker("stdio");
    let script = format!(
        r#"
import socket, subprocess
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
c = socket.create_connection(l.getsockname())
s, _ = l.accept()
subprocess.run(["/usr/bin/env", "true", "{m}"], stdin=s.fileno(), stdout=s.fileno())
print(c.getsockname()[1], flush=True)
"#
    );
    let out = Command::new(PYTHON).arg("-c").arg(script).output().unwrap();
    let peer_port: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let e = agent.wait_for("exec with socket stdio", WAIT, |e| {
        kind_is(e, "process_exec") && has_arg(e, &m)
    });
    let stdio = e["process"]["stdio_sockets"]
        .as_array()
        .expect("stdio_sockets");
    assert_eq!(stdio.len(), 2, "{e}");
    for (i, s) in stdio.iter().enumerate() {
        assert_eq!(s["fd"], i as u64);
        assert_eq!(s["family"], "ipv4");
        assert_eq!(s["protocol"], "tcp");
        assert_eq!(s["peer_addr"], "127.0.0.1");
        assert_eq!(s["peer_port"], peer_port);
    }
}

/// Thousands of short connections: the agent keeps up or counts what it dropped, and stays up.
#[test]
fn a_burst_of_short_connections_is_delivered_or_counted() {
    if !require_root("a_burst_of_short_connections_is_delivered_or_counted") {
        return;
    }
    const N: usize = 5000;
    let agent = Agent::start(NO_FILE);
    let script = format!(
        r#"
import socket
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(512)
for i in range({N}):
    c = socket.create_connection(l.getsockname())
    s, _ = l.accept()
    c.close()
    s.close()
print("done", flush=True)
"#
    );
    let child = Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("done"));
    // Stopping drains the ring buffer: everything the kernel recorded is written.
    let (status, stderr, events) = agent.stop_and_collect();
    let count = |kind: &str| events.iter().filter(|e| net_event(kind, pid)(e)).count() as u64;
    let lost: u64 = events
        .iter()
        .filter(|e| kind_is(e, "events_lost"))
        .map(|e| e["lost"]["ringbuf_full"].as_u64().unwrap_or(0))
        .sum();
    // Loss after the last once-a-second check is only in the final counters on stderr, and so
    // is what the agent's writer had not written when it gave a slow reader up at exit (under
    // qemu the harness's reader can make no progress for the 300 ms that takes).
    let final_counter = |name: &str| {
        stderr
            .lines()
            .filter(|l| l.contains("final counters"))
            .flat_map(str::split_whitespace)
            .find_map(|field| {
                // `name=N`, or `counters=name=N` for the first of the kernel's counters.
                let mut parts = field.rsplitn(3, '=');
                let value = parts.next()?;
                (parts.next()? == name).then(|| value.parse::<u64>().ok())?
            })
            .unwrap_or(0)
    };
    let lost = lost.max(final_counter("ringbuf_full"))
        + final_counter("output_dropped")
        + final_counter("output_unwritten");
    let (connects, accepts) = (count("net_connect"), count("net_accept"));
    assert!(
        connects + accepts + lost >= 2 * N as u64,
        "every connect and accept delivered or counted: {connects} connects, {accepts} accepts, {lost} lost, of {N} each"
    );
    assert!(status.success(), "{stderr}");
}

/// A listener started before the agent: its accepted connections are still attributed to it
/// (the start-up pass over every task's sockets records their owners).
#[test]
fn a_listener_older_than_the_agent_has_its_accepts_attributed() {
    if !require_root("a_listener_older_than_the_agent_has_its_accepts_attributed") {
        return;
    }
    let server = Server::start(Command::new("env"), "127.0.0.1", "AF_INET", 1);
    let agent = Agent::start(NO_FILE);
    let (_, cport, out) = client(Command::new("env"), "AF_INET", "127.0.0.1", server.port, 1);
    assert!(out.contains("got 1"), "{out}");
    // Both ports: the agent sees every process, and a parallel test's server can accept a
    // client that drew the same ephemeral port (a different tuple).
    let a = agent.wait_for("accept by the older listener", WAIT, |e| {
        kind_is(e, "net_accept")
            && e["network"]["dport"] == cport
            && e["network"]["sport"] == server.port
    });
    assert_eq!(a["process"]["pid"], server.pid());
    assert_eq!(a["process"]["binary"], python_binary());
}

/// A DNS query over IPv6 carrying a destination-options extension header is still parsed
/// (the BPF side walks extension headers, a bounded number of them).
#[test]
fn dns_over_ipv6_with_an_extension_header_is_parsed() {
    if !require_root("dns_over_ipv6_with_an_extension_header_is_parsed") {
        return;
    }
    let ns = Netns::new(false);
    let agent = Agent::start(NO_FILE);
    let m = marker("v6ext").replace('-', "");
    let name = format!("ext{}.example", &m[m.len() - 10..]);
    let script = format!(
        r#"
import socket, struct
q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0)
for label in "{name}".split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack(">HH", 28, 1)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
# Destination options: next header (kernel-filled), length 0 (8 bytes), PadN of 4.
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
import time
for attempt in range(50):
    try:
        s.sendto(q, ("{}", 53))
        break
    except OSError as e:
        err = e
        time.sleep(0.1)
print("sent", flush=True)
"#,
        ns.v6[1]
    );
    let out = ns
        .exec(&ns.a)
        .arg(PYTHON)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("sent"),
        "{out:?}"
    );
    let q = agent.wait_for("dns query over IPv6", WAIT, |e| {
        kind_is(e, "dns") && e["dns"]["query"] == name.as_str()
    });
    assert_eq!(q["dns"]["qtype"], "AAAA");
    assert_eq!(q["network"]["family"], "ipv6");
    assert_eq!(q["network"]["daddr"], ns.v6[1].as_str());
    assert_eq!(q["process"]["binary"], python_binary());
}

/// Starts `python -c script` with its stdin a pipe: the script goes on when a line arrives.
fn python_waiting_for_a_line(script: &str) -> Child {
    Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Python that listens on a loopback port (or not), waits for a line on stdin, then runs a
/// shell that execs itself ten times before it execs `true MARKER`: twelve images below the
/// server, more than an event's ancestors show.
fn server_script(listen: bool, marker: &str) -> String {
    format!(
        "import socket, subprocess, sys\n\
         s = socket.socket()\n\
         s.bind(('127.0.0.1', 0))\n\
         {}\n\
         sys.stdin.readline()\n\
         chain = 'n=$1; if [ \"$n\" -gt 0 ]; then exec /bin/sh -c \"$0\" \"$0\" $((n - 1)); fi; exec /bin/true {marker}'\n\
         subprocess.run(['/bin/sh', '-c', chain, chain, '10'], check=True)\n",
        if listen { "s.listen()" } else { "pass" }
    )
}

/// Sends the line and waits for the script to finish.
fn run_after_a_line(mut child: Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(child.wait().unwrap().success());
}

/// A program that listened on a TCP port is a server, whatever it is called: the shell it
/// starts, and what that shell becomes, are `process.under_server`, and name it as
/// `process.server_binary` however many images lie between; the same shell started by a
/// program that only bound a socket is neither.
#[test]
fn what_a_server_starts_is_under_server_whatever_the_server_is_called() {
    if !require_root("what_a_server_starts_is_under_server_whatever_the_server_is_called") {
        return;
    }
    let agent = Agent::start(NO_FILE);
    let served = marker("served");
    let unserved = marker("unserved");
    run_after_a_line(python_waiting_for_a_line(&server_script(true, &served)));
    run_after_a_line(python_waiting_for_a_line(&server_script(false, &unserved)));
    // The marker is an argument of true, and inside sh's -c text.
    let exec_of = |binary: &'static str, m: String| {
        move |e: &Value| {
            kind_is(e, "process_exec")
                && e["process"]["binary"] == binary
                && args(e).iter().any(|a| a.contains(m.as_str()))
        }
    };
    let sh = agent.wait_for(
        "sh under the server",
        WAIT,
        exec_of("/usr/bin/dash", served.clone()),
    );
    assert_eq!(sh["process"]["under_server"], true, "{sh}");
    let t = agent.wait_for(
        "true under the server",
        WAIT,
        exec_of("/usr/bin/true", served),
    );
    assert_eq!(t["process"]["under_server"], true, "{t}");
    assert_eq!(
        t["process"]["server_binary"],
        python_binary(),
        "the server, twelve images up: {t}"
    );
    assert!(
        t["ancestors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["binary"] == "/usr/bin/dash"),
        "the ancestors no longer show the server: {t}"
    );
    let t = agent.wait_for(
        "true under no server",
        WAIT,
        exec_of("/usr/bin/true", unserved),
    );
    assert_eq!(t["process"]["under_server"], false, "{t}");
    assert_eq!(t["process"]["server_binary"], Value::Null, "{t}");
}

/// A server older than the agent is found in /proc (its listening socket) at start: what it
/// starts afterwards is `process.under_server` too, and names it.
#[test]
fn what_a_server_older_than_the_agent_starts_is_under_server() {
    if !require_root("what_a_server_older_than_the_agent_starts_is_under_server") {
        return;
    }
    let m = marker("older-server");
    let server = python_waiting_for_a_line(&server_script(true, &m));
    // The socket must be listening before the agent reads /proc.
    let pid = server.id();
    let listening = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        Command::new("ss")
            .args(["-ltnpH"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("pid={pid},")))
            .unwrap_or(false)
    });
    assert!(listening, "the server never listened");
    let agent = Agent::start(NO_FILE);
    run_after_a_line(server);
    let t = agent.wait_for("true under the older server", WAIT, |e| {
        kind_is(e, "process_exec") && e["process"]["binary"] == "/usr/bin/true" && has_arg(e, &m)
    });
    assert_eq!(t["process"]["under_server"], true, "{t}");
    assert_eq!(t["process"]["server_binary"], python_binary(), "{t}");
}

/// Download and execute, whatever the downloader is called: a program written by a process
/// that had connected out says so when it runs (`binary_downloaded`, the writer named), and
/// is young (`binary_age`); the same bytes copied by a process that never connected are young
/// but not downloaded, and /bin/true itself is neither.
#[test]
fn an_executable_written_by_a_networked_process_says_so() {
    if !require_root("an_executable_written_by_a_networked_process_says_so") {
        return;
    }
    let agent = Agent::start(&[]);
    let m = marker("download");
    let dir = std::env::temp_dir().join(&m);
    std::fs::create_dir_all(&dir).unwrap();
    let fetched = dir.join("fetched");
    let copied = dir.join("copied");
    // The "downloader": Python reading /bin/true's bytes from a loopback connection.
    let script = r#"
import os, socket, sys
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
c = socket.create_connection(l.getsockname())
s, _ = l.accept()
s.sendall(open("/bin/true", "rb").read())
s.close()
data = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    data += d
with open(sys.argv[1], "wb") as f:
    f.write(data)
os.chmod(sys.argv[1], 0o755)
"#;
    let st = Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .arg(&fetched)
        .status()
        .unwrap();
    assert!(st.success());
    sh(&format!("cp /bin/true {}", copied.display()));
    for program in [&fetched, &copied] {
        assert!(Command::new(program).arg(&m).status().unwrap().success());
    }
    assert!(Command::new("/bin/true")
        .arg(&m)
        .status()
        .unwrap()
        .success());
    let exec_of = |binary: String| {
        let m = m.clone();
        move |e: &Value| {
            kind_is(e, "process_exec") && has_arg(e, &m) && e["process"]["binary"] == binary
        }
    };
    let e = agent.wait_for(
        "exec of the downloaded file",
        WAIT,
        exec_of(fetched.display().to_string()),
    );
    assert_eq!(e["process"]["binary_downloaded"], true, "{e}");
    assert_eq!(e["process"]["binary_writer"], python_binary(), "{e}");
    assert!(
        e["process"]["binary_age"].as_u64().is_some_and(|a| a < 120),
        "{e}"
    );
    let e = agent.wait_for(
        "exec of the copied file",
        WAIT,
        exec_of(copied.display().to_string()),
    );
    assert_eq!(e["process"]["binary_downloaded"], Value::Null, "{e}");
    assert_eq!(e["process"]["binary_writer"], Value::Null, "{e}");
    assert!(
        e["process"]["binary_age"].as_u64().is_some_and(|a| a < 120),
        "{e}"
    );
    let e = agent.wait_for("exec of /bin/true", WAIT, exec_of("/usr/bin/true".into()));
    assert_eq!(e["process"]["binary_downloaded"], Value::Null, "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pipeline's programs name each other, in whichever order they exec: the second to exec
/// names the first, as the writer into its stdin or the reader of its stdout.
#[test]
fn a_pipelines_programs_name_each_other() {
    if !require_root("a_pipelines_programs_name_each_other") {
        return;
    }
    let agent = Agent::start(NO_FILE);
    let (m1, m2) = (marker("pipe-in"), marker("pipe-out"));
    sh(&format!(
        "/usr/bin/printf x | {{ sleep 0.3; exec /usr/bin/env true {m1}; }}; \
         {{ sleep 0.3; exec /usr/bin/env echo {m2}; }} | /usr/bin/cat >/dev/null"
    ));
    let pipes = |e: &Value| -> Vec<(u64, String)> {
        e["process"]["stdio_pipes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        let peer = p["peer_binary"].as_str().unwrap_or("");
                        (p["fd"].as_u64().unwrap(), peer.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let e = agent.wait_for("reader exec", WAIT, |e| {
        kind_is(e, "process_exec") && has_arg(e, &m1)
    });
    assert!(pipes(&e).contains(&(0, "/usr/bin/printf".into())), "{e}");
    let e = agent.wait_for("writer exec", WAIT, |e| {
        kind_is(e, "process_exec") && has_arg(e, &m2)
    });
    assert!(pipes(&e).contains(&(1, "/usr/bin/cat".into())), "{e}");
}
