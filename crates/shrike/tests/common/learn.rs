//! `shrike learn` for tests: started around a workload, its policy read back, and the
//! `LEARN-*` alerts a run under that policy raised.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::kind_is;

/// Starts `shrike learn ARGS -o OUT` and waits until it is ready; its stderr is collected.
pub fn spawn_learn(args: &[&str], out: &Path) -> (Child, Arc<Mutex<String>>) {
    let mut child = Command::new(super::agent_binary())
        .arg("learn")
        .args(args)
        .arg("-o")
        .arg(out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    {
        let stderr = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = stderr.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while !stderr.lock().unwrap().contains("shrike ready") {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "learn did not start:\n{}",
            stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, stderr)
}

/// `shrike learn ARGS -o OUT` around `run` (one run of the workload): started and ready
/// before it, stopped with SIGINT after it; the policy it wrote.
pub fn learn_around(args: &[&str], out: &Path, run: impl FnOnce()) -> String {
    let (mut child, stderr) = spawn_learn(args, out);
    run();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) with the pid of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(status.success(), "{}", stderr.lock().unwrap());
    std::fs::read_to_string(out).unwrap()
}

/// The `LEARN-*` alerts on `events` (incident summaries aside): (rule id, outcome).
pub fn learn_alerts(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| !kind_is(e, "incident"))
        .flat_map(|e| e["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| {
            a["rule_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("LEARN-"))
        })
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn pair(rule: &str, outcome: &str) -> Vec<(String, String)> {
    vec![(rule.to_string(), outcome.to_string())]
}
