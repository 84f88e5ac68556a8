//! Kernel push-down: what each rule's condition becomes in the kernel plan, per kind — exact
//! splits, residuals, first-stage filters, enforcement — and that the plan serializes.

use std::collections::BTreeSet;

use shrike_event::EventKind;
use shrike_rules::{Dim, Enforcement, KernelPlan, Policy, ValueSet};

fn plan(rules: &str) -> KernelPlan {
    let yaml = format!("- list: shells\n  items: [sh, bash]\n{rules}");
    Policy::compile([("p.yaml", yaml.as_str())])
        .unwrap_or_else(|d| panic!("{}", shrike_rules::text::render_diagnostics(&d)))
        .kernel_plan()
        .clone()
}

fn one(condition: &str, action: &str, mode: &str) -> KernelPlan {
    plan(&format!(
        "- rule: r\n  id: R\n  severity: low\n  action: {action}\n  mode: {mode}\n  condition: {condition}\n"
    ))
}

fn strings(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn paths(set: &ValueSet) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    match set {
        ValueSet::Paths(p) => (p.exact.clone(), p.prefixes.clone(), p.names.clone()),
        other => panic!("expected paths, got {other:?}"),
    }
}

/// A condition made only of pushable comparisons is decided in the kernel, and a deny rule on
/// it is enforced there.
#[test]
fn fully_pushable_deny_rule_is_exact_and_enforced_in_kernel() {
    let p = one(
        "kind = file_open and file.path in (/etc/shadow, /etc/gshadow) and file.access contains read and not process.binary in (/usr/sbin/unix_chkpwd) and not ancestors.name in (dpkg)",
        "deny",
        "enforce",
    );
    let e = &p.rules[0].entries[0];
    assert_eq!(e.kind, EventKind::FileOpen);
    assert!(e.exact);
    assert_eq!(e.residual, None);
    assert_eq!(e.enforcement, Enforcement::Kernel);
    let path = e.constraints[&Dim::Path].include.as_ref().unwrap();
    assert_eq!(paths(path).0, strings(&["/etc/gshadow", "/etc/shadow"]));
    let bin = e.constraints[&Dim::Binary].exclude.as_ref().unwrap();
    assert_eq!(paths(bin).0, strings(&["/usr/sbin/unix_chkpwd"]));
    let anc = e.constraints[&Dim::Ancestors].exclude.as_ref().unwrap();
    assert_eq!(paths(anc).2, strings(&["dpkg"]));
    let access = e.constraints[&Dim::Access].include.as_ref().unwrap();
    assert_eq!(paths(access).0, strings(&["read"]));
    let k = p.kind(EventKind::FileOpen).unwrap();
    assert!(!k.pass_all);
    assert_eq!(
        paths(&k.interest[&Dim::Path]).0,
        strings(&["/etc/gshadow", "/etc/shadow"])
    );
}

/// `file.path endswith .so` alone cannot be pushed: every file_open must reach user space.
#[test]
fn unpushable_path_means_all_paths_for_the_kind() {
    let p = one(
        "kind = file_open and file.path endswith .so",
        "alert",
        "enforce",
    );
    let k = p.kind(EventKind::FileOpen).unwrap();
    assert!(k.pass_all);
    assert!(k.interest.is_empty());
    let e = &p.rules[0].entries[0];
    assert!(!e.exact);
    assert_eq!(e.residual.as_deref(), Some("file.path endswith .so"));
    assert_eq!(e.enforcement, Enforcement::None);
}

/// `endswith /name` is a base-name match, which the kernel can do exactly.
#[test]
fn endswith_a_whole_component_is_a_name() {
    let p = one(
        "kind = file_open and file.path endswith /authorized_keys",
        "alert",
        "enforce",
    );
    let e = &p.rules[0].entries[0];
    assert!(e.exact);
    assert_eq!(
        paths(e.constraints[&Dim::Path].include.as_ref().unwrap()).2,
        strings(&["authorized_keys"])
    );
}

/// A glob pushes its literal prefix and keeps the glob as the residual.
#[test]
fn glob_pushes_its_prefix() {
    let p = one(
        "kind = file_open and file.path glob /home/*/.ssh/id_*",
        "deny",
        "enforce",
    );
    let e = &p.rules[0].entries[0];
    assert!(!e.exact);
    assert_eq!(
        paths(e.constraints[&Dim::Path].include.as_ref().unwrap()).1,
        strings(&["/home/"])
    );
    assert_eq!(
        e.residual.as_deref(),
        Some("file.path glob /home/*/.ssh/id_*")
    );
    assert!(matches!(e.enforcement, Enforcement::UserSpace { .. }));
    let q = one(
        "kind = file_open and file.path glob /var/log/**",
        "alert",
        "enforce",
    );
    assert!(
        q.rules[0].entries[0].exact,
        "a trailing ** is exactly a prefix"
    );
}

/// A rule over several kinds gets one entry per kind, each with what its branch requires.
#[test]
fn kind_branches_split_per_kind() {
    let p = one(
        "(kind = file_open and file.access in (write, create) and file.path startswith /etc/cron) or (kind = file_rename and file.new_path startswith /etc/cron)",
        "alert",
        "enforce",
    );
    let entries = &p.rules[0].entries;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].kind, EventKind::FileOpen);
    assert!(entries[0].exact);
    assert_eq!(entries[1].kind, EventKind::FileRename);
    assert!(entries[1].exact);
    assert_eq!(
        paths(
            entries[1].constraints[&Dim::NewPath]
                .include
                .as_ref()
                .unwrap()
        )
        .1,
        strings(&["/etc/cron"])
    );
    assert_eq!(
        paths(&p.kind(EventKind::FileRename).unwrap().interest[&Dim::NewPath]).1,
        strings(&["/etc/cron"])
    );
}

/// An `or` over different dimensions gives the first stage several alternatives.
#[test]
fn first_stage_alternatives_from_or() {
    let p = one(
        "kind = file_rename and (file.path startswith /etc/sudoers or file.new_path startswith /etc/sudoers)",
        "alert",
        "enforce",
    );
    let k = p.kind(EventKind::FileRename).unwrap();
    assert!(!k.pass_all);
    assert_eq!(k.interest.len(), 2);
    assert!(k.interest.contains_key(&Dim::Path) && k.interest.contains_key(&Dim::NewPath));
    assert!(!p.rules[0].entries[0].exact);
}

/// Ports and networks push down; negated networks become exclusions.
#[test]
fn ports_and_networks() {
    let p = one(
        "kind = net_connect and network.dport in (3333, 4444) and not network.daddr cidr (127.0.0.0/8, ::1/128)",
        "kill",
        "audit",
    );
    let e = &p.rules[0].entries[0];
    assert!(e.exact);
    assert_eq!(e.enforcement, Enforcement::KernelAudit);
    assert_eq!(
        e.constraints[&Dim::Dport].include,
        Some(ValueSet::Numbers([3333, 4444].into()))
    );
    let ValueSet::Networks(nets) = e.constraints[&Dim::Daddr].exclude.as_ref().unwrap() else {
        panic!("networks expected")
    };
    let nets: Vec<String> = nets.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["127.0.0.0/8", "::1/128"]);
}

/// Deny where the kernel has no deny hook is refused for the kernel, with the reason.
#[test]
fn deny_on_a_kind_without_a_deny_hook() {
    let p = one(
        "kind = ptrace and ptrace.request = PTRACE_ATTACH and process.uid = 1000",
        "deny",
        "enforce",
    );
    let e = &p.rules[0].entries[0];
    assert!(!e.exact, "ptrace.request is not a kernel dimension");
    let p = one("kind = mount and process.uid = 1000", "deny", "enforce");
    assert_eq!(
        p.rules[0].entries[0].enforcement,
        Enforcement::UserSpace {
            reason: "the kernel cannot deny mount events".into()
        }
    );
    let p = one("kind = mount and process.uid = 1000", "kill", "enforce");
    assert_eq!(
        p.rules[0].entries[0].enforcement,
        Enforcement::UserSpace {
            reason: "the kernel cannot kill mount events".into()
        }
    );
    // ptrace attaches are refused by lsm/ptrace_access_check (or killed at the syscall), and
    // the target's binary is a kernel dimension (its lineage entry).
    let p = one(
        "kind = ptrace and ptrace.target_binary = /usr/sbin/sshd",
        "deny",
        "enforce",
    );
    let e = &p.rules[0].entries[0];
    assert!(e.exact);
    assert_eq!(e.enforcement, Enforcement::Kernel);
    assert!(e.constraints.contains_key(&Dim::TargetBinary));
}

/// Exceptions become exclusions when they are pushable, residuals when not.
#[test]
fn exceptions_fold_into_the_split() {
    let p = plan(
        "- rule: r\n  id: R\n  severity: low\n  condition: kind = process_exec and process.name in (shells)\n  exceptions:\n    - parent.name = sshd\n    - process.args contains -c\n",
    );
    let e = &p.rules[0].entries[0];
    assert!(!e.exact);
    assert_eq!(
        paths(e.constraints[&Dim::Binary].include.as_ref().unwrap()).2,
        strings(&["bash", "sh"])
    );
    assert_eq!(
        paths(e.constraints[&Dim::ParentBinary].exclude.as_ref().unwrap()).2,
        strings(&["sshd"])
    );
    assert_eq!(e.residual.as_deref(), Some("not process.args contains -c"));
}

/// Disabled rules load nothing; kinds no rule needs are absent (their sensors stay unarmed).
#[test]
fn disabled_rules_and_unused_kinds() {
    let p =
        plan("- rule: r\n  id: R\n  severity: low\n  enabled: false\n  condition: kind = dns\n");
    assert!(p.rules.is_empty());
    assert!(p.kinds.is_empty());
}

/// The plan round-trips through JSON, with readable names.
#[test]
fn plan_serializes() {
    let policy = Policy::default_pack().unwrap();
    let json = policy.kernel_plan().to_json();
    let back: KernelPlan = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, policy.kernel_plan());
    assert!(json.contains("\"kind\": \"file_open\""));
    assert!(json.contains("\"pass_all\": false"));
    let explain = shrike_rules::text::explain(&policy);
    assert!(
        explain.contains("SHR-CRED-001 #0 Shadow password file read by an unexpected program"),
        "{explain}"
    );
    assert!(explain.contains("user space:  nothing (decided in the kernel)"));
    assert!(explain.contains("first-stage kernel filters:"));
}

/// A chmod rule on the set-id bits filters by them in the kernel: the kind's first stage sends
/// only chmods whose new mode has one of the bits the rules name, and the reference semantics
/// agree.
#[test]
fn set_id_bits_are_a_first_stage_filter_for_chmod() {
    let p = one(
        "kind = file_chmod and (file.mode.setuid or file.mode.setgid)",
        "alert",
        "enforce",
    );
    let k = p.kind(EventKind::FileChmod).unwrap();
    assert!(!k.pass_all);
    assert_eq!(
        paths(&k.interest[&Dim::Setid]).0,
        strings(&["setgid", "setuid"])
    );
    let chmod = |mode: u32| -> shrike_event::Event {
        serde_json::from_value(serde_json::json!({
            "time": "2026-01-01T00:00:00.000000000Z", "kind": "file_chmod", "node": "n1",
            "process": {"pid": 10, "binary": "/usr/bin/chmod", "args": ["chmod"], "comm": "chmod"},
            "file": {"path": "/tmp/x", "flags": 0, "mode": mode}
        }))
        .expect("valid event")
    };
    assert!(p.admits(&chmod(0o4755)));
    assert!(p.admits(&chmod(0o2755)));
    assert!(!p.admits(&chmod(0o755)));
}
