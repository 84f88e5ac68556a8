//! Tuning without forking: a user file after the default pack disables a rule, appends to a
//! list or macro, appends conditions and exceptions to a rule, replaces its severity — and
//! every mistake in doing so is reported with `file:line:col` like any other error.

mod common;

use common::*;
use shrike_rules::Policy;

fn pack_with(user: &str) -> Result<Policy, Vec<String>> {
    let mut sources: Vec<(String, String)> = shrike_rules::pack::sources()
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    sources.push(("site.yaml".into(), user.into()));
    Policy::compile(sources).map_err(|d| d.iter().map(ToString::to_string).collect())
}

fn errors(user: &str) -> Vec<String> {
    match pack_with(user) {
        Ok(_) => panic!("expected errors for:\n{user}"),
        Err(e) => e,
    }
}

fn ids(policy: &Policy, e: &shrike_event::Event) -> Vec<String> {
    policy
        .evaluate(e)
        .iter()
        .map(|m| m.rule_id.to_string())
        .collect()
}

/// A cron job written by the site's deployer, and one written by anything else.
fn cron_writes() -> (shrike_event::Event, shrike_event::Event) {
    let sh = scenario_shell("x.sh");
    let deployer = process("/opt/acme/bin/deployer", &["deployer"]);
    let by_deployer = open(&deployer, &sh, "/etc/cron.d/acme", WRITE_NEW);
    let other = open(&sh[0], &sh[1..], "/etc/cron.d/acme", WRITE_NEW);
    (by_deployer, other)
}

/// `enabled: false` alone (Falco's shorthand), by id or by name, turns a default rule off; the
/// rest of the pack is untouched.
#[test]
fn a_default_rule_is_disabled_by_id_or_name() {
    let (_, other) = cron_writes();
    for user in [
        "- rule: SHR-PERS-001\n  enabled: false\n",
        "- rule: Cron job created or modified\n  enabled: false\n",
        "- rule: Cron job created or modified\n  id: SHR-PERS-001\n  enabled: false\n  override:\n    enabled: replace\n",
    ] {
        let policy = pack_with(user).unwrap();
        assert!(ids(&policy, &other).is_empty(), "{user}");
        assert!(!policy.rule_by_id("SHR-PERS-001").unwrap().enabled);
        assert!(policy.rule_by_id("SHR-PERS-002").unwrap().enabled);
    }
}

/// Appending to a default list, with `override: {items: append}` or the older `append: true`,
/// extends every rule that uses it.
#[test]
fn appending_to_a_default_list_extends_the_rules_that_use_it() {
    let (by_deployer, other) = cron_writes();
    let policy = pack_with("").unwrap();
    assert_eq!(ids(&policy, &by_deployer), ["SHR-PERS-001"]);
    for user in [
        "- list: package_manager_binaries\n  items: [/opt/acme/bin/deployer]\n  override:\n    items: append\n",
        "- list: package_manager_binaries\n  append: true\n  items: [/opt/acme/bin/deployer]\n",
    ] {
        let policy = pack_with(user).unwrap();
        assert!(ids(&policy, &by_deployer).is_empty(), "{user}");
        assert_eq!(ids(&policy, &other), ["SHR-PERS-001"]);
    }
    // Replacing the list drops the defaults: dpkg is no longer trusted.
    let policy = pack_with(
        "- list: package_manager_binaries\n  items: [/opt/acme/bin/deployer]\n  override:\n    items: replace\n",
    )
    .unwrap();
    let dpkg = process("/usr/bin/dpkg", &["dpkg", "-i", "x.deb"]);
    let e = open(&dpkg, &scenario_shell("x.sh"), "/etc/cron.d/pkg", WRITE_NEW);
    assert_eq!(ids(&policy, &e), ["SHR-PERS-001"]);
}

/// Appending `or …` to a default macro widens it for every rule of the pack.
#[test]
fn appending_to_a_default_macro_changes_every_rule_that_uses_it() {
    let (by_deployer, other) = cron_writes();
    let policy = pack_with(
        "- macro: package_management\n  condition: or process.binary = /opt/acme/bin/deployer\n  override:\n    condition: append\n",
    )
    .unwrap();
    assert!(ids(&policy, &by_deployer).is_empty());
    assert_eq!(ids(&policy, &other), ["SHR-PERS-001"]);
    let rule = policy.rule_by_id("SHR-PERS-001").unwrap();
    assert!(rule.exceptions.iter().any(|x| x == "package_management"));
}

/// Appending `and not …` to a rule's condition, or an exception, suppresses it for that case
/// only; the rule's listing shows the appended condition.
#[test]
fn appending_a_condition_or_an_exception_to_a_default_rule() {
    let (by_deployer, other) = cron_writes();
    let policy = pack_with(
        "- rule: Cron job created or modified\n  condition: and not process.binary = /opt/acme/bin/deployer\n  override:\n    condition: append\n",
    )
    .unwrap();
    assert!(ids(&policy, &by_deployer).is_empty());
    assert_eq!(ids(&policy, &other), ["SHR-PERS-001"]);
    let info = policy.rule_by_id("SHR-PERS-001").unwrap();
    assert!(
        info.condition
            .ends_with("and (not process.binary = /opt/acme/bin/deployer)"),
        "{}",
        info.condition
    );
    let policy = pack_with(
        "- rule: SHR-PERS-001\n  exceptions:\n    - name: acme deployer\n      condition: process.binary = /opt/acme/bin/deployer\n  override:\n    exceptions: append\n",
    )
    .unwrap();
    assert!(ids(&policy, &by_deployer).is_empty());
    assert_eq!(ids(&policy, &other), ["SHR-PERS-001"]);
    // The pack's own exceptions are kept: dpkg is still trusted.
    let dpkg = process("/usr/bin/dpkg", &["dpkg", "-i", "x.deb"]);
    let e = open(&dpkg, &scenario_shell("x.sh"), "/etc/cron.d/pkg", WRITE_NEW);
    assert!(ids(&policy, &e).is_empty());
}

/// Severity, tags and mitre are replaced or appended; the kernel plan follows a changed
/// condition (an `or` widens what the kernel must send).
#[test]
fn replacing_metadata_and_widening_the_kernel_filter() {
    let policy = pack_with(
        "- rule: SHR-PERS-001\n  severity: critical\n  tags: [site]\n  condition: or (kind = file_open and file.path = /srv/acme/schedule and file.access contains write)\n  override:\n    severity: replace\n    tags: append\n    condition: append\n",
    )
    .unwrap();
    let info = policy.rule_by_id("SHR-PERS-001").unwrap();
    assert_eq!(info.severity.as_str(), "critical");
    let throttled =
        pack_with("- rule: SHR-PERS-001\n  throttle: 5/min\n  override:\n    throttle: replace\n")
            .unwrap();
    assert_eq!(
        throttled.rule_by_id("SHR-PERS-001").unwrap().throttle,
        Some(shrike_rules::Rate::parse("5/min").unwrap())
    );
    assert!(info.tags.contains(&"site".to_string()));
    let sh = scenario_shell("x.sh");
    let e = open(&sh[0], &sh[1..], "/srv/acme/schedule", &["write"]);
    assert_eq!(ids(&policy, &e), ["SHR-PERS-001"]);
    assert!(policy.kernel_plan().admits(&e));
}

/// Mistakes in overrides are reported at their place in the user's file.
#[test]
fn override_mistakes_have_positions() {
    assert_eq!(
        errors("- rule: SHR-PERS-0001\n  enabled: false\n"),
        ["site.yaml:1:9: no rule with name or id 'SHR-PERS-0001' is defined before this override (did you mean 'SHR-PERS-001'?)"]
    );
    assert_eq!(
        errors("- rule: SHR-PERS-001\n  condition: not process.binary = /x\n  override:\n    condition: append\n"),
        ["site.yaml:2:14: an appended condition must start with `and` or `or` (write e.g. `and not process.binary = /opt/acme/bin/agent`)"]
    );
    assert_eq!(
        errors("- rule: SHR-PERS-001\n  condition: and not process.binray = /x\n  override:\n    condition: append\n"),
        ["site.yaml:2:22: unknown field 'process.binray' (did you mean 'process.binary'?)"]
    );
    assert_eq!(
        errors("- rule: SHR-PERS-001\n  severity: low\n  override:\n    severity: append\n"),
        ["site.yaml:4:15: 'severity' can only be replaced (write `replace`)"]
    );
    assert_eq!(
        errors("- rule: SHR-PERS-001\n  severity: low\n  override:\n    severty: replace\n"),
        [
            "site.yaml:2:3: 'severity' given in an override without saying how it merges (add `severity: replace` under override)",
            "site.yaml:4:5: 'severty' cannot be overridden in a rule override (did you mean 'severity'?)",
        ]
    );
    assert_eq!(
        errors("- rule: SHR-PERS-001\n  override:\n    condition: apend\n  condition: and x\n"),
        ["site.yaml:3:16: invalid override 'apend' for 'condition' (did you mean 'append'? one of append|replace)"]
    );
    assert_eq!(
        errors("- list: no_such_list\n  items: [x]\n  override:\n    items: append\n"),
        ["site.yaml:1:9: cannot override list 'no_such_list': it is not defined before this item (remove `append`/`override` to define it)"]
    );
    assert_eq!(
        errors("- macro: package_management\n  condition: or process.binary = 7\n  override:\n    condition: replace\n"),
        ["site.yaml:2:14: unexpected 'or': expected a field, a macro, 'not' or '('"]
    );
    assert_eq!(
        errors("- rule: SHR-PERS-001\n  exceptions: [process.nme = x]\n  override:\n    exceptions: append\n"),
        ["site.yaml:2:16: unknown field 'process.nme' (did you mean 'process.name'?)"]
    );
}
