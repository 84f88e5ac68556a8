//! Capabilities: a program the kernel refuses costs the capability it serves and nothing else;
//! `doctor` reports each capability from a real load; `run` refuses a policy whose rules need a
//! missing capability unless `--allow-degraded`; the `agent_health` event tells the stream.
//!
//! Refusals are made real with `SHRIKE_FAULT_REFUSE` (bpf/lib/fault.h): the named capability's
//! programs read above their stack frame, which every verifier rejects at load. What `doctor`
//! must report on this kernel comes from the boot configuration (see `expected_table`), not
//! from the function the agent uses to choose its hooks.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(90);

fn shrike(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(common::agent_binary())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running shrike");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The state each capability must have on this kernel and boot, derived from where the test
/// runs: this project's 6.18 hosts (no BPF trampolines, no BPF LSM) or a kernel-matrix guest
/// booted with or without `bpf` in its LSM list (`common::bpf_lsm_expected`, which reads the
/// boot configuration there), and the guest's kernel series: 5.10 runs the legacy build (no
/// bpf_loop), whose verifier refuses the LSM file set's path_chown (a struct argument), so
/// chown falls back to fexit there; its TCP state and older sockets load there without socket
/// storage or cookies in tracing programs.
fn expected_table() -> Vec<(&'static str, &'static str)> {
    let lsm = bpf_lsm_expected();
    let file_lsm = file_lsm_expected();
    vec![
        ("process_events", "ok"),
        ("deny_exec", if lsm { "ok" } else { "fallback" }),
        (
            "file_events",
            if file_lsm && !chown_lsm_refused() {
                "ok"
            } else {
                "fallback"
            },
        ),
        ("net_sockets", "ok"),
        ("net_bind_results", "ok"),
        ("net_tcp_state", "ok"),
        ("net_older_sockets", "ok"),
        ("net_dns", "ok"),
        ("net_ingress_deny", "ok"),
        ("self_protection", "off"),
    ]
}

/// The state `expected_table` gives one capability.
fn expected_state(name: &str) -> &'static str {
    expected_table()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or("missing", |(_, state)| state)
}

/// The line doctor ends with when these capabilities (in doctor's order) could not load.
fn degraded_line(names: &[&str]) -> String {
    format!("DEGRADED: {} could not load", names.join(", "))
}

/// The capabilities `expected_table` says this kernel cannot give, in doctor's order.
fn expected_degraded() -> Vec<&'static str> {
    expected_table()
        .into_iter()
        .filter(|(_, state)| *state == "unavailable" || *state == "degraded")
        .map(|(name, _)| name)
        .collect()
}

/// The rows of doctor's capability table: (state, description).
fn doctor_rows(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("Capabilities"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let state = l.split_whitespace().next().unwrap_or("").to_string();
            (state, l.trim().to_string())
        })
        .collect()
}

/// `doctor` with the built-in defaults loads the real objects and reports, row by row, the
/// states this kernel and boot must give; with nothing degraded it exits 0. The agent's
/// `agent_health` event at start says the same.
#[test]
fn doctor_and_the_health_event_report_the_capabilities_this_kernel_must_give() {
    if !require_root("doctor_and_the_health_event_report_the_capabilities_this_kernel_must_give") {
        return;
    }
    let expected = expected_table();
    let degraded = expected_degraded();
    let (code, stdout, stderr) = shrike(&["doctor"], &[]);
    let rows = doctor_rows(&stdout);
    assert_eq!(rows.len(), expected.len(), "{stdout}\n{stderr}");
    for ((state, row), (name, want)) in rows.iter().zip(&expected) {
        assert_eq!(state, want, "doctor row for {name}: {row}\n{stdout}");
    }
    if degraded.is_empty() {
        assert_eq!(code, 0, "doctor exit code\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("every capability they ask for is in force"),
            "{stdout}"
        );
    } else {
        assert_eq!(code, 1, "doctor exit code\n{stdout}\n{stderr}");
        let line = degraded_line(&degraded);
        assert!(stdout.contains(&line), "{line}\n{stdout}");
    }

    // Where the kernel cannot give every capability, the defaults' rules that need one are
    // not in force: the agent runs only when told to.
    let args: &[&str] = if degraded.is_empty() {
        &[]
    } else {
        &["--allow-degraded"]
    };
    let agent = Agent::start(args);
    let health = agent.wait_for("the agent_health event", WAIT, |e| {
        kind_is(e, "agent_health")
    });
    let states = health_states(&health);
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    assert_eq!(states, want, "{health}");
    assert_eq!(
        health["process"]["pid"],
        agent.pid(),
        "attributed to the agent"
    );
    let rules = match health["health"].get("rules_not_in_force") {
        None => Vec::new(),
        Some(rules) => rules.as_array().expect("rules_not_in_force").clone(),
    };
    let lacking =
        |r: &&serde_json::Value| degraded.contains(&r["capability"].as_str().unwrap_or(""));
    assert_eq!(
        rules.iter().any(|r| lacking(&r)),
        !degraded.is_empty(),
        "{health}"
    );
    // The others are rules whose system calls this kernel was built without (the module
    // calls without module support): their capability is in force, and each says why.
    let modules_seen = module_syscalls_traced(file_lsm_expected());
    for r in rules.iter().filter(|r| !lacking(r)) {
        assert!(!modules_seen, "{r}\n{health}");
        assert!(
            r["reason"].as_str().is_some_and(|w| w.contains("ENOSYS")),
            "{r}"
        );
    }
    if !modules_seen {
        assert_module_syscalls_reported_absent(&agent, "SHR-KRN-001");
        assert!(
            stdout.contains("Armed, but not in this kernel") && stdout.contains("finit_module"),
            "doctor lists the armed calls the kernel lacks\n{stdout}"
        );
        assert!(
            stdout.contains("SHR-KRN-001: its events cannot be seen here"),
            "{stdout}"
        );
    }
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{stderr}");
}

/// A kernel that refuses the DNS programs: `doctor` shows DNS unavailable with the verifier's
/// words and every other capability intact, and exits 1 saying what degraded; `run` with the
/// default pack refuses to start, naming the rule that needs DNS and the capability.
#[test]
fn a_refused_program_costs_its_capability_and_run_refuses_the_rules_that_need_it() {
    if !require_root(
        "a_refused_program_costs_its_capability_and_run_refuses_the_rules_that_need_it",
    ) {
        return;
    }
    let fault = [("SHRIKE_FAULT_REFUSE", "net_dns")];
    let (code, stdout, stderr) = shrike(&["doctor"], &fault);
    assert_eq!(
        code, 1,
        "doctor must fail when a capability degraded\n{stdout}"
    );
    let rows = doctor_rows(&stdout);
    for ((state, row), (name, want)) in rows.iter().zip(expected_table()) {
        let want = if name == "net_dns" {
            "unavailable"
        } else {
            want
        };
        assert_eq!(state, want, "doctor row for {name}: {row}\n{stdout}");
    }
    let mut degraded = expected_degraded();
    degraded.push("net_dns");
    degraded.sort_by_key(|name| expected_table().iter().position(|(n, _)| n == name));
    let line = degraded_line(&degraded);
    assert!(stdout.contains(&line), "{line}\n{stdout}");
    assert!(stdout.contains("net_skb_egress refused"), "{stdout}");
    assert!(
        stdout.contains("invalid read from stack"),
        "the verifier's words are shown\n{stdout}"
    );
    assert!(
        stderr.contains("ERROR") && stderr.contains("program=net_skb_egress"),
        "the refusal is logged at ERROR with the program\n{stderr}"
    );

    let (code, _, stderr) = shrike(&["run", "--duration", "30"], &fault);
    assert_eq!(code, 1, "run must refuse to start\n{stderr}");
    assert!(
        stderr.contains("rule SHR-C2-002 needs net_dns"),
        "the refusal names the rule and the capability\n{stderr}"
    );
    assert!(stderr.contains("--allow-degraded"), "{stderr}");
}

/// With `--allow-degraded` the same agent runs: the `agent_health` event lists DNS as
/// unavailable with the reason and SHR-C2-002 as not in force, and the rest of the network
/// sensor works — a loopback connect is reported.
#[test]
fn allow_degraded_runs_without_the_lost_capability_and_says_so_in_the_stream() {
    if !require_root("allow_degraded_runs_without_the_lost_capability_and_says_so_in_the_stream") {
        return;
    }
    let agent = Agent::start_with_env(
        &["--allow-degraded", "--no-file-sensor"],
        &[("SHRIKE_FAULT_REFUSE", "net_dns")],
    );
    let health = agent.wait_for("the agent_health event", WAIT, |e| {
        kind_is(e, "agent_health")
    });
    let states = health_states(&health);
    let state = |name: &str| {
        states
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_str())
            .unwrap_or("missing")
    };
    assert_eq!(state("net_dns"), "unavailable", "{health}");
    assert_eq!(state("net_sockets"), "ok", "{health}");
    assert_eq!(
        state("net_tcp_state"),
        expected_state("net_tcp_state"),
        "{health}"
    );
    assert_eq!(state("file_events"), "off", "{health}");
    let dns = health["health"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "net_dns")
        .unwrap();
    assert!(
        dns["reason"]
            .as_str()
            .unwrap_or("")
            .contains("net_skb_egress refused"),
        "{dns}"
    );
    let not_in_force = &health["health"]["rules_not_in_force"];
    assert!(
        not_in_force.as_array().is_some_and(|r| r
            .iter()
            .any(|r| r["rule_id"] == "SHR-C2-002" && r["capability"] == "net_dns")),
        "{health}"
    );

    // The rest of the sensor works: a loopback connection is reported.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let me = std::process::id();
    agent.wait_for("the loopback connect", WAIT, |e| {
        kind_is(e, "net_connect") && e["process"]["pid"] == me && e["network"]["dport"] == port
    });
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{stderr}");
}
