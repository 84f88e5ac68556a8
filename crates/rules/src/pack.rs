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
];

/// The default pack's sources, for [`crate::Policy::compile`].
pub fn sources() -> Vec<(&'static str, &'static str)> {
    DEFAULT_PACK.to_vec()
}
