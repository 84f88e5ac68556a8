//! The learned policy from hand-built events: it compiles, it matches nothing the workload
//! did, each deviation matches exactly its rule, and most rules are decided in the kernel.

use std::collections::BTreeMap;
use std::sync::Arc;

use shrike_event::{Event, EventKind, ExecId, FileInfo, Network, Process, Ptrace, Timestamp};
use shrike_rules::Policy;

use super::*;

const CGROUP: u64 = 4242;

fn proc(binary: &str, cgroup: u64) -> Arc<Process> {
    Arc::new(Process {
        pid: 10,
        exec_id: ExecId(77),
        binary: binary.into(),
        cgroup_id: cgroup,
        ..Process::default()
    })
}

fn ev(kind: EventKind, p: &Arc<Process>) -> Event {
    Event::new(Timestamp(1), kind, "n".into(), p.clone())
}

fn exec(binary: &str) -> Event {
    ev(EventKind::ProcessExec, &proc(binary, CGROUP))
}

fn open_write(path: &str) -> Event {
    let mut e = ev(EventKind::FileOpen, &proc("/usr/bin/python3.11", CGROUP));
    e.set_file(FileInfo {
        path: path.into(),
        access: vec!["write".into(), "create".into()],
        ..FileInfo::default()
    });
    e
}

fn net(kind: EventKind, addr: &str, port: u16) -> Event {
    let mut e = ev(kind, &proc("/usr/bin/python3.11", CGROUP));
    e.set_network(Network {
        protocol: "tcp".into(),
        family: "ipv4".into(),
        saddr: "127.0.0.1".into(),
        sport: if kind == EventKind::NetBind {
            port
        } else {
            40000
        },
        daddr: addr.into(),
        dport: if kind == EventKind::NetBind { 0 } else { port },
        ..Network::default()
    });
    e
}

/// A small web service and its client, as the sensors would report them.
fn workload() -> Vec<Event> {
    vec![
        exec("/usr/bin/python3.11"),
        net(EventKind::NetBind, "0.0.0.0", 8000),
        exec("/usr/bin/python3.11"),
        net(EventKind::NetConnect, "127.0.0.1", 8000),
        net(EventKind::NetConnect, "127.0.0.1", 8000),
        open_write("/srv/app/done.txt"),
        open_write("/proc/123/attr/current"),
        // Not the workload: another cgroup.
        ev(EventKind::ProcessExec, &proc("/usr/bin/curl", 1)),
    ]
}

fn learned(mode: &'static str) -> (String, Policy, usize, usize) {
    let scope = Scope::Cgroup {
        path: "/sys/fs/cgroup/app".into(),
        id: CGROUP,
    };
    let mut obs = Observations::new(scope);
    for e in workload() {
        obs.observe(&e);
    }
    let opts = RenderOptions {
        id_prefix: "LEARN".into(),
        mode,
        node: "n".into(),
    };
    let (text, kernel, user) = policy_text(&obs, &opts).unwrap();
    let policy = Policy::compile([("learned.yaml", text.as_str())]).unwrap();
    (text, policy, kernel, user)
}

fn matches(policy: &Policy, e: &Event) -> Vec<String> {
    policy
        .evaluate(e)
        .iter()
        .map(|m| m.rule_id.to_string())
        .collect()
}

/// The workload itself raises nothing; each kind of deviation raises exactly its rule.
#[test]
fn the_workload_passes_and_each_deviation_matches_its_rule() {
    let (text, policy, _, _) = learned("audit");
    for e in workload() {
        assert!(matches(&policy, &e).is_empty(), "{e:?}\n{text}");
    }
    let mut other_pid = open_write("/proc/999/attr/current");
    other_pid.time = Timestamp(2);
    assert!(matches(&policy, &other_pid).is_empty(), "pids vary: {text}");
    let cases: Vec<(Event, &str)> = vec![
        (exec("/usr/bin/id"), "LEARN-EXEC"),
        (
            net(EventKind::NetConnect, "127.0.0.2", 8000),
            "LEARN-CONNECT",
        ),
        (net(EventKind::NetConnect, "127.0.0.1", 9000), "LEARN-PORT"),
        (net(EventKind::NetBind, "0.0.0.0", 9000), "LEARN-BIND"),
        (open_write("/srv/app/other.txt"), "LEARN-WRITE"),
        (open_write("/proc/1/mem"), "LEARN-PROC-WRITE"),
        (
            {
                let mut e = ev(EventKind::Ptrace, &proc("/usr/bin/python3.11", CGROUP));
                e.set_ptrace(Ptrace {
                    request: "PTRACE_ATTACH".into(),
                    target_pid: 1,
                    target_binary: "/usr/sbin/sshd".into(),
                });
                e
            },
            "LEARN-PTRACE",
        ),
    ];
    for (e, rule) in cases {
        assert_eq!(matches(&policy, &e), [rule], "{e:?}");
    }
    assert!(text.contains("mode: audit"), "{text}");
    assert!(
        text.contains("    - /usr/bin/python3.11  # 2 execs"),
        "{text}"
    );
}

/// Exec, connect, port, bind, file writes and changes and the privileged rules the kernel can
/// refuse are decided in the kernel; writes under /proc (globs over the pid) and the other
/// privileged kinds are user space, and say why.
#[test]
fn most_rules_are_decided_in_the_kernel_and_the_policy_says_which() {
    let (text, policy, kernel, user) = learned("enforce");
    let notes = kernel_notes(&policy);
    let in_kernel: Vec<&str> = notes
        .iter()
        .filter(|(_, n)| n.starts_with("decided"))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        in_kernel,
        [
            "LEARN-BIND",
            "LEARN-BPF",
            "LEARN-CHANGE",
            "LEARN-CONNECT",
            "LEARN-EXEC",
            "LEARN-MODULE",
            "LEARN-PORT",
            "LEARN-PTRACE",
            "LEARN-SCRIPT",
            "LEARN-WRITE"
        ],
        "{notes:#?}"
    );
    assert_eq!((kernel, user), (10, 4), "{notes:#?}");
    assert!(
        notes["LEARN-PROC-WRITE"].starts_with("checked in user space"),
        "the /proc globs: {notes:#?}"
    );
    assert!(
        text.contains("# LEARN-EXEC: decided in the kernel"),
        "{text}"
    );
    assert!(text.contains("mode: enforce"), "{text}");
}

/// A binary scope: executables are checked below the binary, network and privileged rules
/// are split into the binary itself and its descendants so each half is a conjunction.
#[test]
fn a_binary_scope_splits_rules_the_kernel_could_not_hold_as_an_or() {
    let scope = Scope::Binary {
        path: "/opt/app/server".into(),
    };
    let mut obs = Observations::new(scope);
    let server = proc("/opt/app/server", 1);
    let mut child = ev(EventKind::ProcessExec, &proc("/usr/bin/env", 1));
    child.ancestors = vec![server.clone()];
    obs.observe(&ev(EventKind::ProcessExec, &server));
    obs.observe(&child);
    let opts = RenderOptions {
        id_prefix: "APP".into(),
        mode: "audit",
        node: "n".into(),
    };
    let (text, _, _) = policy_text(&obs, &opts).unwrap();
    let policy = Policy::compile([("learned.yaml", text.as_str())]).unwrap();
    let ids: Vec<&str> = policy.rules().map(|r| r.id.as_str()).collect();
    assert!(
        ids.contains(&"APP-EXEC")
            && ids.contains(&"APP-CONNECT-SELF")
            && ids.contains(&"APP-CONNECT-DESC"),
        "{ids:?}"
    );
    let notes: BTreeMap<String, String> = kernel_notes(&policy);
    assert!(notes["APP-EXEC"].starts_with("decided"), "{notes:#?}");
    assert!(
        notes["APP-CONNECT-SELF"].starts_with("decided"),
        "{notes:#?}"
    );
    assert!(
        notes["APP-PTRACE-DESC"].starts_with("decided"),
        "{notes:#?}"
    );
    assert!(
        notes["APP-CONNECT-DESC"].starts_with("decided"),
        "below the binary, by ancestor: {notes:#?}"
    );
    // An unexpected exec below the server matches; the server's own exec does not.
    let mut id = ev(EventKind::ProcessExec, &proc("/usr/bin/id", 1));
    id.ancestors = vec![server.clone()];
    assert_eq!(matches(&policy, &id), ["APP-EXEC"]);
    assert!(matches(&policy, &ev(EventKind::ProcessExec, &server)).is_empty());
    assert!(matches(&policy, &child).is_empty());
}

/// The sink reads the agent's JSON lines back, whatever the write boundaries.
#[test]
fn the_sink_reads_events_split_across_writes() {
    let mut obs = Observations::new(Scope::Cgroup {
        path: "x".into(),
        id: CGROUP,
    });
    let mut text = String::new();
    for e in workload() {
        text.push_str(&serde_json::to_string(&e).unwrap());
        text.push('\n');
    }
    {
        let mut sink = Sink::new(&mut obs);
        for chunk in text.as_bytes().chunks(7) {
            sink.write_all(chunk).unwrap();
        }
        assert_eq!(sink.bad_lines, 0);
    }
    assert_eq!(obs.events, 7, "the curl exec is another cgroup's");
    assert_eq!(obs.peers.seen[&("127.0.0.1".to_string(), 8000)], 2);
}
