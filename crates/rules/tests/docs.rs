//! The generated parts of the documentation match the code: the field table in the crate README
//! and the rule table of the default pack.

fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let begin = format!("<!-- {name}:begin -->\n");
    let end = format!("<!-- {name}:end -->");
    let start = text
        .find(&begin)
        .map(|i| i + begin.len())
        .expect("begin marker");
    let stop = text.find(&end).expect("end marker");
    &text[start..stop]
}

/// `README.md`'s field table is `text::fields_markdown()`; regenerate it with
/// `cargo run -p shrike-rules --example policy -- fields`.
#[test]
fn readme_field_table_is_current() {
    let readme = include_str!("../README.md");
    assert_eq!(
        section(readme, "fields"),
        shrike_rules::text::fields_markdown()
    );
}

/// `policies/default/README.md`'s rule table is `text::rules_markdown()` of the pack; regenerate
/// it with `cargo run -p shrike-rules --example policy -- pack-table`.
#[test]
fn pack_rule_table_is_current() {
    let readme = include_str!("../../../policies/default/README.md");
    let policy = shrike_rules::Policy::default_pack().unwrap();
    assert_eq!(
        section(readme, "rules"),
        shrike_rules::text::rules_markdown(&policy)
    );
}
