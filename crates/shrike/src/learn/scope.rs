//! What `shrike learn` observes — a cgroup, a binary and its descendants, or a container — and
//! how the learned policy says the same scope, so that the rules see exactly what learning saw.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use shrike_event::Event;

/// The workload being learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The processes of one cgroup v2 (not its sub-cgroups): `process.cgroup_id`, which the
    /// kernel reads for exec, file and network rules alike.
    Cgroup { path: String, id: u64 },
    /// A binary, by the path events report (symlinks resolved), and every image below it.
    Binary { path: String },
    /// A container, by its id (`process.container.id` while learning, `container.id` — the
    /// runtime's identity — in the policy).
    Container { id: String },
}

/// Which part of a binary scope a rule covers (a cgroup or container is one scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The whole scope (one rule).
    All,
    /// Only what the binary's descendants do: executables (the binary's own exec starts the
    /// workload), written as `ancestors.binary`.
    Descendants,
    /// Two rules, the binary itself and its descendants, so each is a conjunction the kernel
    /// can hold (an `or` of the two cannot be).
    Split,
}

impl Scope {
    /// A cgroup directory: it must exist; its id is its inode number (what the kernel reports).
    pub fn cgroup(dir: &Path) -> Result<Scope> {
        let meta = std::fs::metadata(dir)
            .with_context(|| format!("--cgroup {}: cannot read it", dir.display()))?;
        if !meta.is_dir() || !dir.join("cgroup.procs").exists() {
            bail!(
                "--cgroup {}: not a cgroup v2 directory (no cgroup.procs in it)",
                dir.display()
            );
        }
        Ok(Scope::Cgroup {
            path: dir.display().to_string(),
            id: meta.ino(),
        })
    }

    /// A binary: an absolute path, resolved as exec events report it.
    pub fn binary(path: &Path) -> Result<Scope> {
        if !path.is_absolute() {
            bail!("--binary {}: give an absolute path", path.display());
        }
        let resolved = std::fs::canonicalize(path)
            .with_context(|| format!("--binary {}: cannot resolve it", path.display()))?;
        Ok(Scope::Binary {
            path: resolved.display().to_string(),
        })
    }

    /// Whether `event` is the workload's.
    pub fn contains(&self, event: &Event) -> bool {
        let p = &event.process;
        match self {
            Scope::Cgroup { id, .. } => p.cgroup_id == *id,
            Scope::Binary { path } => {
                &*p.binary == path.as_str()
                    || event.ancestors.iter().any(|a| &*a.binary == path.as_str())
            }
            Scope::Container { id } => p.container.as_ref().is_some_and(|c| &c.id == id),
        }
    }

    /// One line for the policy's header.
    pub fn describe(&self) -> String {
        match self {
            Scope::Cgroup { path, id } => format!("the processes of cgroup {path} (id {id})"),
            Scope::Binary { path } => format!("{path} and every process below it"),
            Scope::Container { id } => format!("container {id}"),
        }
    }

    /// The macros the rules use: `(name, condition, comment)`, names prefixed with `prefix`.
    pub fn macros(&self, prefix: &str) -> Vec<(String, String, String)> {
        match self {
            Scope::Cgroup { path, id } => vec![(
                format!("{prefix}_scope"),
                format!("process.cgroup_id = {id}"),
                format!("cgroup {path}; the id changes when the cgroup is re-created: learn again or edit it"),
            )],
            Scope::Container { id } => vec![(
                format!("{prefix}_scope"),
                format!("container.id = {}", value(id)),
                "the container as its runtime describes it (the agent needs --container-runtime); it keeps its id across restarts. The kernel holds the rules for its cgroups (exec, file and privileged rules as a set of cgroups, network rules one per container) once the runtime has described it, and stops its first exec until then".into(),
            )],
            Scope::Binary { path } => vec![
                (
                    format!("{prefix}_self"),
                    format!("process.binary = {}", value(path)),
                    "the binary itself".into(),
                ),
                (
                    format!("{prefix}_descendants"),
                    format!("ancestors.binary = {}", value(path)),
                    "every image started below it (the kernel checks the 8 nearest ancestors)"
                        .into(),
                ),
                (
                    format!("{prefix}_scope"),
                    format!("({prefix}_self or {prefix}_descendants)"),
                    "both (an `or`: checked in user space)".into(),
                ),
            ],
        }
    }

    /// The rule variants for `part`: `(id suffix, macro)`.
    pub fn variants(&self, part: Part, prefix: &str) -> Vec<(&'static str, String)> {
        match (self, part) {
            (Scope::Binary { .. }, Part::Descendants) => {
                vec![("", format!("{prefix}_descendants"))]
            }
            (Scope::Binary { .. }, Part::Split) => vec![
                ("-SELF", format!("{prefix}_self")),
                ("-DESC", format!("{prefix}_descendants")),
            ],
            _ => vec![("", format!("{prefix}_scope"))],
        }
    }
}

/// A value in a condition: bare when it can be, else single-quoted.
pub fn value(text: &str) -> String {
    let bare = !text.is_empty()
        && !shrike_rules::parser::is_keyword(text)
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.+-:@%".contains(c));
    if bare {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}
