//! `shrike run` with its stdout left to the test: for tests of the output itself (compact
//! text, JSON read back byte for byte, a reader that never reads). Its stderr is collected line
//! by line, as [`super::Agent`] collects it, and it is started like one ([`super::spawn`]).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running agent whose stdout is the test's.
pub struct RawAgent {
    child: Child,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl RawAgent {
    /// Starts `shrike run --no-file-sensor --no-net EXTRA` and waits until it says it is ready.
    pub fn start(extra: &[&str]) -> RawAgent {
        let mut args = vec!["--no-file-sensor", "--no-net"];
        args.extend_from_slice(extra);
        let mut child = super::spawn(&args, false);
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().expect("the agent's stderr is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut agent = RawAgent {
            child,
            log,
            seen: Vec::new(),
        };
        // Generous: under qemu on a busy host, loading the sensors can take half a minute.
        if !agent.wait_log("shrike ready", Duration::from_secs(90)) {
            panic!("shrike did not become ready:\n{}", agent.seen.join("\n"));
        }
        agent
    }

    /// The agent's stdout (once).
    pub fn stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().expect("stdout taken once")
    }

    /// The stderr lines seen so far.
    pub fn log(&self) -> &[String] {
        &self.seen
    }

    /// Waits until a stderr line contains `needle` (or was seen before); false after `within`.
    pub fn wait_log(&mut self, needle: &str, within: Duration) -> bool {
        if self.seen.iter().any(|l| l.contains(needle)) {
            return true;
        }
        let deadline = Instant::now() + within;
        while let Ok(line) = self
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let hit = line.contains(needle);
            self.seen.push(line);
            if hit {
                return true;
            }
        }
        false
    }

    /// Sends `signal` to the agent.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with the pid of a child this test spawned and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// The agent's exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waiting for the agent")
    }

    /// Stops the agent with SIGTERM and returns its exit status and whole log.
    pub fn stop(mut self) -> (ExitStatus, Vec<String>) {
        self.signal(libc::SIGTERM);
        let status = self.child.wait().expect("waiting for the agent");
        self.drain_log();
        (status, std::mem::take(&mut self.seen))
    }

    /// Takes the rest of the log (the stderr thread ends when the agent's stderr closes).
    pub fn drain_log(&mut self) {
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
    }
}

impl Drop for RawAgent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
