//! `container.*` and `k8s.*` fields: rules scoped to an image, a namespace, a pod label or a
//! container's host configuration match the events of that workload and no other, and a
//! container the runtime has not described yet (or a host process) matches none of them.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use shrike_event::{ContainerIdentity, Event, PodIdentity};
use shrike_rules::{Dim, Enforcement, Policy};

fn policy() -> Policy {
    let yaml = r#"
- rule: shell in prod web pods
  id: WL-1
  severity: high
  condition: >
    kind = process_exec and process.name = sh and k8s.namespace = prod
    and k8s.labels.app = web and container.image startswith registry.example/web
- rule: privileged container touches the runtime socket
  id: WL-2
  severity: critical
  condition: >
    kind = process_exec and container.privileged = true and container.runtime_socket_mounted = true
- rule: host network container not described
  id: WL-3
  severity: low
  condition: kind = process_exec and container.resolved = false and container.id exists
"#;
    Policy::compile([("workload.yaml", yaml)]).unwrap_or_else(|d| {
        panic!(
            "{}",
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn ids(policy: &Policy, e: &Event) -> Vec<String> {
    policy
        .evaluate(e)
        .iter()
        .map(|m| m.rule_id.to_string())
        .collect()
}

fn sh_in(container: Option<ContainerIdentity>, k8s: Option<PodIdentity>) -> Event {
    let p = process("/bin/sh", &["sh"]);
    let mut e = exec(&p, &[]);
    e.container = container.map(Arc::new);
    e.k8s = k8s.map(Arc::new);
    e
}

fn web(namespace: &str) -> (ContainerIdentity, PodIdentity) {
    (
        ContainerIdentity {
            id: "a".repeat(64),
            name: "web".into(),
            image: "registry.example/web:2".into(),
            runtime: "containerd".into(),
            resolved: true,
            privileged: Some(false),
            ..ContainerIdentity::default()
        },
        PodIdentity {
            namespace: namespace.into(),
            pod: "web-1".into(),
            labels: BTreeMap::from([("app".into(), "web".into())]),
            ..PodIdentity::default()
        },
    )
}

/// The namespace-and-image rule matches the pod in `prod` and not the same pod in `dev`, nor a
/// host shell.
#[test]
fn namespace_label_and_image_scope_a_rule_to_one_workload() {
    let policy = policy();
    let (c, p) = web("prod");
    assert_eq!(ids(&policy, &sh_in(Some(c), Some(p))), ["WL-1"]);
    let (c, p) = web("dev");
    assert!(ids(&policy, &sh_in(Some(c), Some(p))).is_empty());
    assert!(ids(&policy, &sh_in(None, None)).is_empty());
}

/// Container-escape inputs: privileged with the runtime socket mounted matches; a container the
/// runtime has not answered for yet only matches the rule asking for exactly that.
#[test]
fn privileged_and_socket_mounts_and_unresolved_containers_are_rule_inputs() {
    let policy = policy();
    let (mut c, _) = web("prod");
    c.privileged = Some(true);
    c.runtime_socket_mounted = Some(true);
    assert_eq!(ids(&policy, &sh_in(Some(c), None)), ["WL-2"]);
    let pending = ContainerIdentity {
        id: "b".repeat(64),
        runtime: "podman".into(),
        ..ContainerIdentity::default()
    };
    assert_eq!(ids(&policy, &sh_in(Some(pending), None)), ["WL-3"]);
}

/// A deny rule scoped to a pod is not pushed as its other conditions alone (which would deny
/// the exec in every container and on the host): the kernel entry keeps the binary, and the
/// workload part becomes a scope the agent turns into the cgroup set of the containers it
/// covers. Without that set the entry matches nothing in the kernel; user space still matches
/// the whole rule.
#[test]
fn a_deny_rule_scoped_to_a_pod_becomes_a_kernel_entry_with_a_workload_scope() {
    let yaml = "- rule: no shell in prod\n  id: WL-D\n  severity: high\n  action: deny\n  mode: enforce\n  condition: kind = process_exec and process.binary = /bin/sh and k8s.namespace = prod and k8s.labels.app = web\n";
    let policy = Policy::compile([("deny.yaml", yaml)])
        .unwrap_or_else(|d| panic!("{}", shrike_rules::text::render_diagnostics(&d)));
    let entries = &policy.kernel_plan().rules[0].entries;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert!(e.exact, "{e:?}");
    assert_eq!(e.enforcement, Enforcement::Kernel, "{e:?}");
    assert_eq!(e.residual, None, "{e:?}");
    assert_eq!(
        e.workload.as_deref(),
        Some("k8s.namespace = prod and k8s.labels.app = web"),
        "{e:?}"
    );
    assert_eq!(
        e.constraints.keys().copied().collect::<Vec<_>>(),
        [Dim::Binary],
        "the cgroup set is the agent's to add: {e:?}"
    );
    let (c, p) = web("prod");
    let in_prod = sh_in(Some(c.clone()), Some(p.clone()));
    assert_eq!(
        e.kernel_match(&in_prod),
        Some(false),
        "no cgroup set: nothing"
    );
    assert_eq!(ids(&policy, &in_prod), ["WL-D"]);

    let scopes = policy.workload_scopes();
    assert_eq!(scopes.len(), 1);
    assert_eq!(
        (scopes[0].rule, scopes[0].text.as_str()),
        (0, e.workload.as_deref().unwrap_or_default())
    );
    assert!(scopes[0].covers(&c, Some(&p)));
    let (dc, dp) = web("dev");
    assert!(!scopes[0].covers(&dc, Some(&dp)));
    let mut other_app = p.clone();
    other_app.labels.insert("app".into(), "db".into());
    assert!(!scopes[0].covers(&c, Some(&other_app)));
    assert!(!scopes[0].covers(&c, None), "a container in no pod");
    assert!(ids(&policy, &sh_in(Some(dc), Some(dp))).is_empty());
}

/// A scope the kernel cannot hold as a set of containers stays a user-space residual: one that
/// is also true for a host process (`not k8s.namespace = …`). A scope on a file rule is held
/// like an exec rule's.
#[test]
fn workload_scopes_true_outside_containers_stay_in_user_space_and_file_rules_are_scoped() {
    let yaml = "- rule: no shell outside kube-system\n  id: WL-N\n  severity: high\n  action: deny\n  condition: kind = process_exec and process.binary = /bin/sh and not k8s.namespace = kube-system\n\
                - rule: no shadow in prod\n  id: WL-F\n  severity: high\n  action: deny\n  condition: kind = file_open and file.path = /etc/shadow and k8s.namespace = prod\n";
    let policy = Policy::compile([("n.yaml", yaml)])
        .unwrap_or_else(|d| panic!("{}", shrike_rules::text::render_diagnostics(&d)));
    let plan = policy.kernel_plan();
    let negated = &plan.rules[0].entries[0];
    assert!(!negated.exact && negated.workload.is_none(), "{negated:?}");
    assert!(
        negated
            .residual
            .as_deref()
            .is_some_and(|r| r.contains("k8s.namespace")),
        "{negated:?}"
    );
    assert!(matches!(negated.enforcement, Enforcement::UserSpace { .. }));
    let file = &plan.rules[1].entries[0];
    assert_eq!(file.workload.as_deref(), Some("k8s.namespace = prod"));
    assert_eq!(file.enforcement, Enforcement::Kernel, "{file:?}");
    assert_eq!(
        policy.workload_scopes().len(),
        1,
        "only the file rule's scope"
    );
}

/// `container.labels.KEY` and `k8s.labels.KEY` read one label's value; a missing label or a
/// host process has none, and a misspelt family is an error naming the right one.
#[test]
fn label_fields_read_one_labels_value() {
    let yaml = "- rule: r\n  id: WL-L\n  severity: low\n  condition: kind = process_exec and container.labels.tier = front\n";
    let policy = Policy::compile([("l.yaml", yaml)])
        .unwrap_or_else(|d| panic!("{}", shrike_rules::text::render_diagnostics(&d)));
    let (mut c, _) = web("prod");
    c.labels.insert("tier".into(), "front".into());
    assert_eq!(ids(&policy, &sh_in(Some(c.clone()), None)), ["WL-L"]);
    c.labels.insert("tier".into(), "back".into());
    assert!(ids(&policy, &sh_in(Some(c), None)).is_empty());
    assert!(ids(&policy, &sh_in(None, None)).is_empty());
    let bad = "- rule: r\n  id: WL-B\n  severity: low\n  condition: kind = process_exec and container.label.tier = front\n";
    let Err(err) = Policy::compile([("b.yaml", bad)]) else {
        panic!("container.label.tier compiled");
    };
    assert!(
        err[0]
            .to_string()
            .contains("unknown field 'container.label.tier'"),
        "{}",
        err[0]
    );
}
