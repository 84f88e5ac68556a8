//! The default rule pack, embedded in the binary from `policies/default/*.yaml`.
//!
//! Files are compiled in the order below: `lists.yaml` first (shared lists and macros), then one
//! file per ATT&CK tactic. Rule ids are `SHR-<AREA>-<NNN>` and are never reused.

macro_rules! pack {
    ($($file:literal),+ $(,)?) => {
        &[$((concat!("policies/default/", $file), include_str!(concat!("../../../policies/default/", $file)))),+]
    };
}

/// `(name, YAML text)` of every file of the default pack, in compile order.
pub const DEFAULT_PACK: &[(&str, &str)] = pack![
    "lists.yaml",
    "credential-access.yaml",
    "persistence.yaml",
    "privilege-escalation.yaml",
    "defense-evasion.yaml",
    "execution.yaml",
    "discovery.yaml",
    "kernel-integrity.yaml",
    "container-escape.yaml",
    "command-and-control.yaml",
    "impact.yaml",
];

/// The default pack's sources, for [`crate::Policy::compile`].
pub fn sources() -> Vec<(&'static str, &'static str)> {
    DEFAULT_PACK.to_vec()
}

#[cfg(test)]
mod tests {
    use crate::cond::Cond;
    use crate::Policy;

    /// Fields that name a program by what it calls itself rather than where it is installed.
    const NAME_FIELDS: &[&str] = &[
        "process.name",
        "process.comm",
        "process.argv0",
        "parent.name",
        "ancestors.name",
    ];

    /// Collects the name fields a condition trusts: those that, when true, make the condition
    /// false (under an odd number of `not`s in a condition, an even number in an exception).
    fn trusted(c: &Cond, negated: bool, out: &mut Vec<String>) {
        match c {
            Cond::Kind(_) => {}
            Cond::Pred(p) => {
                let name = p.field.name();
                if negated && NAME_FIELDS.contains(&name.as_str()) {
                    out.push(p.to_string());
                }
            }
            Cond::Not(x) => trusted(x, !negated, out),
            Cond::And(cs) | Cond::Or(cs) => cs.iter().for_each(|x| trusted(x, negated, out)),
        }
    }

    /// Must-be-true of the pack: an exception never trusts a base name (a copy of /bin/sh saved
    /// as /tmp/dpkg is not dpkg); it names executables, scripts or ancestors by path.
    #[test]
    fn no_default_rule_trusts_a_program_by_its_name() {
        let policy = Policy::default_pack().unwrap();
        let mut found = Vec::new();
        for rule in policy.compiled() {
            let mut names = Vec::new();
            trusted(&rule.cond, false, &mut names);
            for exc in &rule.exceptions {
                trusted(exc, true, &mut names);
            }
            for n in names {
                found.push(format!("{}: {n}", rule.info.id));
            }
        }
        assert!(found.is_empty(), "name-based trust:\n{}", found.join("\n"));
    }
}
