//! Debian's rsyslogd as the syslog output tests' receiver: started in the foreground on
//! loopback with its own configuration (imuxsock on a socket in a temporary directory, imudp,
//! imtcp with octet-counted framing, imrelp, and omfile writing each message's parsed RFC 5424
//! fields as JSON), killed when dropped, and able to be paused, killed and restarted on the
//! same ports and output file.
//!
//! The main queue is `Direct`: a message is written to the file (and flushed, at the end of
//! its one-message transaction) by the thread that received it, before imrelp answers it, so
//! everything rsyslog acknowledged over RELP is in the file even after a SIGKILL.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::outputs_support::{free_port, wait_for};

/// rsyslogd in the foreground, killed (by its pid) when dropped.
pub struct Rsyslog {
    child: Child,
    dir: tempfile::TempDir,
    pub udp: u16,
    pub tcp: u16,
    pub relp: u16,
    /// imrelp with TLS (`start_tls`): certificates from a CA the test makes, clients too.
    pub relps: Option<u16>,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rsyslog {
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("log.sock")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out.jsonl")
    }

    pub fn start() -> Rsyslog {
        Rsyslog::start_with(false)
    }

    /// With a RELP-over-TLS input too, which wants a client certificate from the test's CA:
    /// `ca.pem`, `client.pem` and `client.key` in [`Rsyslog::dir`].
    pub fn start_tls() -> Rsyslog {
        Rsyslog::start_with(true)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn start_with(tls: bool) -> Rsyslog {
        let rsyslogd = Path::new("/usr/sbin/rsyslogd");
        assert!(
            rsyslogd.exists(),
            "rsyslogd is missing: install Debian's rsyslog (./dev deps)"
        );
        let imrelp = Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so");
        assert!(
            imrelp.exists(),
            "rsyslog's imrelp is missing: install Debian's rsyslog-relp (./dev deps)"
        );
        let dir = tempfile::tempdir().unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (tcp, relp) = (free_port(), free_port());
        let relps = tls.then(free_port);
        let d = dir.path().display();
        let relps_input = match relps {
            Some(port) => {
                make_pki(dir.path());
                format!(
                    r#"input(type="imrelp" address="127.0.0.1" port="{port}" tls="on" tls.cacert="{d}/ca.pem" tls.mycert="{d}/server.pem" tls.myprivkey="{d}/server.key" tls.authmode="certvalid")"#
                )
            }
            None => String::new(),
        };
        let conf = format!(
            r#"global(workDirectory="{d}" maxMessageSize="64k")
main_queue(queue.type="Direct")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")
module(load="imrelp")
input(type="imuxsock" Socket="{d}/log.sock" useSpecialParser="off" parseHostname="on" useSysTimeStamp="off" ignoreTimestamp="off")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
input(type="imrelp" address="127.0.0.1" port="{relp}")
{relps_input}
template(name="fields" type="list" option.jsonf="on") {{
  property(outname="input" name="inputname" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="time" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}}
*.* action(type="omfile" file="{d}/out.jsonl" template="fields" flushOnTXEnd="on")
"#
        );
        std::fs::write(dir.path().join("rsyslog.conf"), conf).unwrap();
        let child = spawn(dir.path());
        let r = Rsyslog {
            child,
            dir,
            udp,
            tcp,
            relp,
            relps,
        };
        r.wait_ready();
        r
    }

    /// Waits for the socket and the TCP and RELP ports.
    fn wait_ready(&self) {
        let ready = wait_for(Duration::from_secs(10), || {
            self.socket().exists()
                && [self.tcp, self.relp]
                    .iter()
                    .chain(&self.relps)
                    .all(|&p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok())
        });
        assert!(
            ready,
            "rsyslogd did not start: {}",
            std::fs::read_to_string(self.dir.path().join("rsyslogd.err")).unwrap_or_default()
        );
    }

    /// Sends `signal` (`STOP`, `CONT`) to rsyslogd.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} rsyslogd");
    }

    /// SIGKILL: open connections are cut, whatever rsyslogd had not read is lost.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts rsyslogd again with the same configuration: same ports, same output file.
    pub fn restart(&mut self) {
        let _ = std::fs::remove_file(self.dir.path().join("rsyslogd.pid"));
        let _ = std::fs::remove_file(self.socket());
        self.child = spawn(self.dir.path());
        self.wait_ready();
    }

    /// Bytes clients wrote to rsyslogd's connections on `port` that it has not read (the
    /// receive queues of its established loopback sockets there, from /proc/net/tcp).
    pub fn unread(&self, port: u16) -> u64 {
        let port = format!("0100007F:{port:04X}");
        std::fs::read_to_string("/proc/net/tcp")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                // local_address rem_address st tx_queue:rx_queue
                (f.get(1) == Some(&port.as_str()) && f.get(3) == Some(&"01"))
                    .then(|| f.get(4)?.split_once(':'))
                    .flatten()
                    .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
            })
            .sum()
    }

    pub fn messages(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.out())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

fn spawn(dir: &Path) -> Child {
    Command::new("/usr/sbin/rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("rsyslogd.err"))
                .unwrap(),
        )
        .spawn()
        .expect("starting rsyslogd")
}

/// A CA, a server certificate for localhost and 127.0.0.1 and a client certificate, all
/// signed by it, as PEM files in `dir`.
fn make_pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, sans) in [
        (
            "server",
            vec!["localhost".to_string(), "127.0.0.1".to_string()],
        ),
        ("client", vec!["shrike-test-client".to_string()]),
    ] {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}
