//! Compiler errors: exact `file:line:col: message (hint)` text for each kind of mistake, all of
//! them collected in one run, with positions inside folded conditions.

use shrike_rules::Policy;

fn errors(yaml: &str) -> Vec<String> {
    match Policy::compile([("policy.yaml", yaml)]) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(d) => d.iter().map(ToString::to_string).collect(),
    }
}

fn rule(condition: &str) -> String {
    format!("- rule: r\n  id: R\n  severity: low\n  condition: {condition}\n")
}

/// An unknown field names the nearest known one, at the field's line and column.
#[test]
fn unknown_field_with_suggestion() {
    assert_eq!(
        errors(&rule("kind = process_exec and proc.nmae = x")),
        ["policy.yaml:4:38: unknown field 'proc.nmae' (did you mean 'process.name'?)"]
    );
}

/// Positions inside a folded (`>`) condition point at the token's own line.
#[test]
fn positions_in_folded_conditions() {
    let yaml = "- rule: r\n  id: R\n  severity: low\n  condition: >\n    kind = file_open\n    and file.pth = /etc/shadow\n";
    assert_eq!(
        errors(yaml),
        ["policy.yaml:6:9: unknown field 'file.pth' (did you mean 'file.path'?)"]
    );
}

/// Every kind of mistake is reported, in file order, from one compile.
#[test]
fn all_errors_are_collected() {
    let yaml = r#"- list: shells
  items: [sh, bash]
- macro: a
  condition: b and kind = process_exec
- macro: b
  condition: a
- rule: one
  id: X-1
  severity: hgh
  action: block
  mode: audt
  mitre: [T10]
  condition: kind = file_open and file.path cidr 10.0.0.0/8
- rule: two
  id: X-1
  severity: low
  condition: kind = process_exec and file.path = /x
- rule: three
  id: X-3
  severity: low
  condition: kind = net_connect and network.daddr cidr 10.1.0.0/8 and network.dport = http
- rule: four
  id: X-4
  severity: low
  condition: kind = process_exec and process.name in (shellz) and process.binary glob /usr/[a-
- rule: five
  id: X-5
  severity: low
  condition: process.name = x
- rule: six
  id: X-6
  severity: low
  condition: kind = file_opn and a
- rule: seven
  id: X-7
  severity: low
  conditon: kind = file_open
- rule: eight
  id: X-8
  severity: low
  condition: kind = process_exec and (process.name = x
"#;
    let got = errors(yaml);
    let expected = [
        "policy.yaml:4:14: macro cycle: b -> a -> b (a macro cannot use itself, directly or through others)",
        "policy.yaml:6:14: macro cycle: a -> b -> a (a macro cannot use itself, directly or through others)",
        "policy.yaml:9:13: invalid severity 'hgh' (did you mean 'high'? one of info|low|medium|high|critical)",
        "policy.yaml:10:11: invalid action 'block' (use one of alert|deny|kill)",
        "policy.yaml:11:9: invalid mode 'audt' (did you mean 'audit'? one of enforce|audit)",
        "policy.yaml:12:11: 'T10' is not an ATT&CK technique id (write e.g. T1003 or T1003.008)",
        "policy.yaml:13:45: operator 'cidr' does not apply to string field 'file.path' (cidr applies to address fields: network.saddr, network.daddr, process.stdio_sockets.peer_addr)",
        "policy.yaml:15:7: duplicate rule id 'X-1' (first defined at policy.yaml:8:7; give this rule its own id)",
        "policy.yaml:21:56: invalid network: '10.1.0.0/8' has host bits set (did you mean '10.0.0.0/8'?)",
        "policy.yaml:21:87: 'http' is not a number (field 'network.dport' is a number) (write e.g. 0, 1000, 0x10 or 0o4000)",
        "policy.yaml:25:87: invalid glob: unclosed '[' at character 6 of glob '/usr/[a-' (escape a literal '[' as '\\[')",
        "policy.yaml:29:14: rule 'X-5' does not constrain `kind` (add e.g. `kind = process_exec and …`)",
        "policy.yaml:33:21: unknown event kind 'file_opn' (did you mean 'file_open'?)",
        "policy.yaml:34:3: rule is missing 'condition' (add `condition: …`)",
        "policy.yaml:37:3: unknown key 'conditon' in a rule (did you mean 'condition'?)",
        "policy.yaml:41:55: condition ends early: expected ')'",
    ];
    for (g, e) in got.iter().zip(expected.iter()) {
        assert_eq!(g, e, "all: {got:#?}");
    }
    assert_eq!(got.len(), expected.len(), "{got:#?}");
}

/// A field that cannot exist for the rule's kinds is an error at the field.
#[test]
fn field_not_available_for_kind() {
    assert_eq!(
        errors(&rule("kind = process_exec and file.path = /x")),
        ["policy.yaml:4:38: field 'file.path' does not exist for kind process_exec (it exists for file_open, file_unlink, file_rename, file_chmod, file_chown, file_link, file_utimes)"]
    );
    // In an `or`, each branch is checked against its own kinds.
    assert!(Policy::compile([(
        "p.yaml",
        rule("(kind = process_exec and process.name = x) or (kind = file_open and file.path = /x)")
            .as_str()
    )])
    .is_ok());
}

/// Operators that do not fit the field's type are refused with the ones that do.
#[test]
fn operator_type_mismatch() {
    assert_eq!(
        errors(&rule("kind = net_connect and network.dport contains 44")),
        ["policy.yaml:4:51: operator 'contains' does not apply to number field 'network.dport' (a number field takes = != < <= > >= in)"]
    );
    assert_eq!(
        errors(&rule("kind = file_open and file.path < 3")),
        ["policy.yaml:4:45: operator '<' does not apply to string field 'file.path' (a string field takes = != in contains startswith endswith glob)"]
    );
    assert_eq!(
        errors(&rule("kind = file_open and file.path != (a, b)")),
        ["policy.yaml:4:45: '!=' takes a single value, found a list (use `not … in (…)` to exclude several values)"]
    );
}

/// YAML syntax errors and layout errors have positions too.
#[test]
fn yaml_and_layout_errors() {
    assert_eq!(
        errors("- rule: [x\n  id: : y\n"),
        ["policy.yaml:2:5: invalid YAML: illegal placement of ':' indicator"]
    );
    assert_eq!(
        errors("- rul: x\n"),
        ["policy.yaml:1:3: item is not a rule, list or macro (did you mean 'rule'?)"]
    );
    assert_eq!(
        errors("rule: x\n"),
        ["policy.yaml:1:1: a policy file must be a list of items, found a mapping (start each item with `- rule:`, `- list:` or `- macro:`)"]
    );
    assert_eq!(
        errors("- list: a\n  items: [x]\n- list: a\n  items: [y]\n"),
        ["policy.yaml:3:9: list 'a' is already defined (first defined at policy.yaml:1:9; add `append: true` to extend it)"]
    );
}

/// Unreadable files are reported by name.
#[test]
fn unreadable_file() {
    let d = Policy::load(&["/nonexistent/p.yaml"]).unwrap_err();
    assert_eq!(d.len(), 1);
    assert!(
        d[0].to_string()
            .starts_with("/nonexistent/p.yaml: cannot read policy file:"),
        "{}",
        d[0]
    );
}

/// A later file can append to a list of an earlier one, and use its macros.
#[test]
fn later_files_extend_earlier_ones() {
    let base = "- list: l\n  items: [a]\n- macro: m\n  condition: kind = process_exec\n";
    let extra = "- list: l\n  append: true\n  items: [b]\n- rule: r\n  id: R\n  severity: low\n  condition: m and process.name in (l)\n";
    let p = Policy::compile([("base.yaml", base), ("extra.yaml", extra)]).unwrap();
    assert_eq!(p.rules().count(), 1);
    assert_eq!(p.rule_by_id("R").unwrap().file, "extra.yaml");
}

/// Macros that use each other several times cannot blow up the compiler.
#[test]
fn exponential_macro_expansion_is_bounded() {
    let mut yaml = String::from("- macro: m0\n  condition: kind = dns\n");
    for i in 1..40 {
        yaml.push_str(&format!(
            "- macro: m{i}\n  condition: m{p} and m{p} and m{p}\n",
            p = i - 1
        ));
    }
    yaml.push_str("- rule: r\n  id: R\n  severity: low\n  condition: m39\n");
    let start = std::time::Instant::now();
    let got = errors(&yaml);
    assert!(
        got.iter()
            .any(|e| e.contains("expands to more than 20000 comparisons")),
        "{got:?}"
    );
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

/// Issue 19, case 5: 63 lists each naming the previous one twice (2^63 items, a 2 KB file) are
/// refused at the first list past the bound, quickly and with one error, not expanded.
#[test]
fn doubling_lists_are_refused_at_the_bound() {
    let mut yaml = String::from("- list: b0\n  items: [x]\n");
    for i in 1..63 {
        yaml.push_str(&format!("- list: b{i}\n  items: [b{p}, b{p}]\n", p = i - 1));
    }
    yaml.push_str(&rule("kind = process_exec and process.name in (b62)"));
    let start = std::time::Instant::now();
    let got = errors(&yaml);
    assert_eq!(
        got,
        ["policy.yaml:39:9: list 'b19' expands to 524288 items: at most 500000 are supported (a list that names another list several times repeats its items: name it once)"]
    );
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
}

/// Issue 19, case 5: 10,000 lists each naming the previous one are refused at the first list
/// nested too deep, quickly, without overflowing the compiler's stack.
#[test]
fn chained_lists_are_refused_at_the_depth_bound() {
    let mut yaml = String::from("- list: c0\n  items: [x]\n");
    for i in 1..10_000 {
        yaml.push_str(&format!("- list: c{i}\n  items: [c{}, y{i}]\n", i - 1));
    }
    yaml.push_str(&rule("kind = process_exec and process.name in (c9999)"));
    let start = std::time::Instant::now();
    let got = errors(&yaml);
    assert_eq!(
        got,
        ["policy.yaml:65:9: list 'c32' nests lists more than 32 levels deep (include the items instead of a chain of lists)"]
    );
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    // 32 levels are fine.
    let mut yaml = String::from("- list: c0\n  items: [x]\n");
    for i in 1..32 {
        yaml.push_str(&format!("- list: c{i}\n  items: [c{}, y{i}]\n", i - 1));
    }
    yaml.push_str(&rule("kind = process_exec and process.name in (c31)"));
    let policy = Policy::compile([("policy.yaml", yaml.as_str())]).unwrap();
    assert_eq!(policy.rules().count(), 1);
}

/// Thousands of rules each using one large list would expand to billions of values: the whole
/// policy is bounded too, with one error.
#[test]
fn a_large_list_used_by_many_rules_is_bounded() {
    let items: Vec<String> = (0..50_000).map(|i| format!("n{i}")).collect();
    let mut yaml = format!("- list: big\n  items: [{}]\n", items.join(", "));
    for i in 0..100 {
        yaml.push_str(&format!(
            "- rule: r{i}\n  id: R{i}\n  severity: low\n  condition: kind = process_exec and process.name in (big)\n"
        ));
    }
    let start = std::time::Instant::now();
    let got = errors(&yaml);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("the policy's conditions expand to more than 2000000 values"),
        "{got:?}"
    );
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

/// Issue 19, case 6: a diagnostic quoting the policy's text escapes what a terminal would act
/// on (an escape sequence written as a YAML escape), and stays one line.
#[test]
fn diagnostics_escape_control_characters() {
    let got = errors(&rule("\"kind = process_exec and \\e[2J\\u202ex = 1\""));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("unknown field '\\u001b[2J\\u202ex'"),
        "{got:?}"
    );
    assert!(
        !got[0].chars().any(shrike_event::text::is_unsafe_char),
        "{got:?}"
    );
}

/// Unknown macros and list names are reported with the nearest known name.
#[test]
fn unknown_macro_and_list() {
    let yaml = "- list: shells\n  items: [sh]\n- macro: spawned\n  condition: kind = process_exec\n- rule: r\n  id: R\n  severity: low\n  condition: spawnd and process.name in shellz\n";
    assert_eq!(
        errors(yaml),
        [
            "policy.yaml:8:14: unknown macro or field 'spawnd' (did you mean 'spawned'?)",
            "policy.yaml:8:41: unknown list 'shellz' (did you mean 'shells'?)",
        ]
    );
}

/// A compiled policy can be shared between threads (the agent swaps it in behind an `Arc`).
#[test]
fn policy_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<shrike_rules::KernelPlan>();
}

/// `throttle:` takes a rate; anything else is an error at the value, with the fix.
#[test]
fn throttle_must_be_a_rate_and_is_kept_on_the_rule() {
    let base = "- rule: r\n  id: R\n  severity: low\n  condition: kind = process_exec\n";
    assert_eq!(
        errors(&format!("{base}  throttle: 10/day\n")),
        ["policy.yaml:5:13: invalid throttle: '10/day': unknown unit 'day': use s, min or h"]
    );
    assert_eq!(
        errors(&format!("{base}  throttle: 0/min\n")),
        ["policy.yaml:5:13: invalid throttle: '0/min': the count must be a whole number from 1 to 1000000"]
    );
    assert_eq!(
        errors(&format!("{base}  throtle: 10/min\n")),
        ["policy.yaml:5:3: unknown key 'throtle' in a rule (did you mean 'throttle'?)"]
    );
    let policy = Policy::compile([("p.yaml", format!("{base}  throttle: 10/min\n"))]).unwrap();
    let rule = policy.rule_by_id("R").unwrap();
    assert_eq!(
        rule.throttle.map(|r| r.to_string()).as_deref(),
        Some("10/min")
    );
    assert!(shrike_rules::text::explain(&policy).contains("throttle:    10/min"));
}
