//! Network deny rules from the policy: the compiler's kernel plan becomes cgroup connect/sendmsg
//! rules, the connect fails with EPERM in the caller, other destinations still work, and the
//! event's alert says `denied`.

mod common;

use std::net::{TcpListener, TcpStream};

use common::*;

#[test]
fn a_policy_deny_rule_refuses_the_connect_and_says_denied() {
    if !require_root("a_policy_deny_rule_refuses_the_connect_and_says_denied") {
        return;
    }
    let denied = TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = denied.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(marker("netdeny"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "- rule: Deny a port\n  id: T-NET-DENY\n  severity: high\n  mitre: [T1071]\n  condition: kind = net_connect and network.dport = {port} and network.daddr cidr 127.0.0.0/8\n  action: deny\n"
        ),
    )
    .unwrap();
    let agent = Agent::start(&[
        "--no-file-sensor",
        "--no-default-policy",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(
        agent
            .stderr()
            .contains("network rules enforced in the kernel"),
        "{}",
        agent.stderr()
    );

    let err = TcpStream::connect(("127.0.0.1", port)).expect_err("the connect must be refused");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    TcpStream::connect(allowed.local_addr().unwrap()).expect("other destinations still work");

    let me = std::process::id();
    let e = agent.wait_for("the refused connect", WAIT, |e| {
        kind_is(e, "net_connect") && e["process"]["pid"] == me && e["network"]["dport"] == port
    });
    assert_eq!(e["result"], -libc::EPERM as i64);
    let alert = &e["alerts"][0];
    assert_eq!(
        (alert["rule_id"].as_str(), alert["outcome"].as_str()),
        (Some("T-NET-DENY"), Some("denied"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
