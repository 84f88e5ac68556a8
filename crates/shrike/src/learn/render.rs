//! The learned policy as YAML a person can review: a header that says what was watched and
//! when, one macro for the scope, one list per kind of thing the workload did (each item with
//! how often it was seen), and one deny rule per kind of action for everything else, each with
//! a comment saying whether the kernel decides it.
//!
//! The rules are written so that the kernel can hold most of them: conjunctions of the scope
//! and an exclusion (`process.binary startswith / and not process.binary in (…)`, `file.path
//! startswith / and not file.path in (…)`, `not network.daddr in (…)`), which the agent turns
//! into trie exclusions and complements (`crate::enforcement`, `crate::exclusion`); file paths
//! that change between runs become directory prefixes, and only the process's own /proc files
//! (globs over the pid) are left to a rule user space decides. A binary scope splits file,
//! network and privileged rules into the binary itself and its descendants for the same reason:
//! an `or` of the two could only be checked in user space.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::observe::{Counted, Observations, Privileged};
use super::scope::Part;

/// Directories where more than this many distinct files were written are allowed as a whole
/// (`startswith dir/`): a workload that writes many files there writes new names next time.
const DIR_FILES: usize = 5;

/// How the policy is written.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Rule ids are `PREFIX-EXEC`, …; macro and list names `prefix_scope`, … (lower case).
    pub id_prefix: String,
    /// `audit` or `enforce`.
    pub mode: &'static str,
    /// The node the workload was learned on.
    pub node: String,
}

/// List items and the comment written after each.
type Items = Vec<(String, String)>;

/// A rule before it is written.
struct Rule {
    id: String,
    name: String,
    description: String,
    severity: &'static str,
    condition: String,
}

/// The names lists and macros use: the id prefix in lower case, `_` for anything else.
pub fn name_prefix(id_prefix: &str) -> String {
    let mut out: String = id_prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert(0, 'x');
    }
    out
}

/// The policy text. `notes` maps rule ids to what the kernel does with them (written above
/// each rule when given).
pub fn render(
    obs: &Observations,
    opts: &RenderOptions,
    notes: &BTreeMap<String, String>,
) -> String {
    let p = name_prefix(&opts.id_prefix);
    let id = |suffix: &str| format!("{}-{suffix}", opts.id_prefix);
    let mut out = String::new();
    header(&mut out, obs, opts);

    for (name, condition, comment) in obs.scope.macros(&p) {
        let _ = writeln!(
            out,
            "- macro: {name}\n  # {comment}\n  condition: {condition}\n"
        );
    }

    let files = generalize(&obs.files);
    let addresses: BTreeMap<String, u64> = sum_by(&obs.peers, |(a, _)| a.clone());
    let ports: BTreeMap<u16, u64> = sum_by(&obs.peers, |(_, port)| *port);
    let mut bound = obs.bound.seen.clone();
    bound.entry(0).or_insert(0);
    let lists: Vec<(String, &str, Items)> = vec![
        (
            format!("{p}_executables"),
            "binaries and #! scripts executed",
            counted(&obs.executables.seen, "exec"),
        ),
        (
            format!("{p}_files"),
            "files written, created, truncated, removed, renamed, linked, chmod'ed or chown'ed",
            files.exact,
        ),
        (
            format!("{p}_file_dirs"),
            "directories written in with names that change between runs (ptys, busy directories): anything below them",
            files.dirs,
        ),
        (
            format!("{p}_proc_files"),
            "files of the process's own /proc directory (the pid changes between runs)",
            files.proc_globs,
        ),
        (
            format!("{p}_peer_addresses"),
            "addresses connected to",
            counted(&addresses, "connect"),
        ),
        (
            format!("{p}_peer_ports"),
            "ports connected to (on any learned address)",
            counted(&ports, "connect"),
        ),
        (
            format!("{p}_bound_ports"),
            "local ports bound; 0 is a bind that lets the kernel pick",
            bound
                .iter()
                .map(|(port, n)| {
                    let comment = if *port == 0 && *n == 0 {
                        "the kernel picks the port".to_string()
                    } else {
                        times(*n, "bind")
                    };
                    (port.to_string(), comment)
                })
                .collect(),
        ),
    ];
    let mut present = BTreeSet::new();
    for (name, what, items) in &lists {
        if items.is_empty() {
            continue;
        }
        present.insert(name.clone());
        let _ = writeln!(out, "- list: {name}\n  # {what}\n  items:");
        for (item, comment) in items {
            let _ = writeln!(out, "    - {}  # {comment}", yaml_item(item));
        }
        out.push('\n');
    }
    let has = |name: &str| present.contains(name);
    let not_in = |field: &str, list: String| {
        if has(&list) {
            format!(" and not {field} in ({list})")
        } else {
            String::new()
        }
    };

    let mut rules: Vec<(Part, Rule)> = Vec::new();
    rules.push((
        Part::Descendants,
        Rule {
            id: id("EXEC"),
            name: "Executable outside what was learned".into(),
            description: "The workload ran a binary it did not run while it was learned. (`startswith /` matches every path: it lets the kernel find the rule by path.)".into(),
            severity: "high",
            condition: format!(
                "kind = process_exec and {{scope}} and process.binary startswith /{}",
                not_in("process.binary", format!("{p}_executables"))
            ),
        },
    ));
    rules.push((
        Part::Descendants,
        Rule {
            id: id("SCRIPT"),
            name: "Script outside what was learned".into(),
            description: "The workload ran a #! script it did not run while it was learned (the kernel checks a script's path with the executable rule's list).".into(),
            severity: "high",
            condition: format!(
                "kind = process_exec and {{scope}} and process.script startswith /{}",
                not_in("process.script", format!("{p}_executables"))
            ),
        },
    ));
    // Exact paths and prefixes only, so the kernel holds the rules; files of the process's
    // own /proc directory (globs) get a rule of their own that user space decides.
    let proc_files = has(&format!("{p}_proc_files"));
    let file_exclusions = format!(
        "{}{}{}",
        not_in("file.path", format!("{p}_files")),
        if has(&format!("{p}_file_dirs")) {
            format!(" and not file.path startswith ({p}_file_dirs)")
        } else {
            String::new()
        },
        if proc_files {
            " and not file.path startswith /proc/"
        } else {
            ""
        }
    );
    rules.push((
        Part::Split,
        Rule {
            id: id("WRITE"),
            name: "File written outside what was learned".into(),
            description: "The workload opened for writing or truncated a file it did not while it was learned. (`startswith /` lets the kernel send only writes, not every open.)".into(),
            severity: "medium",
            condition: format!(
                "kind = file_open and {{scope}} and file.access in (write, truncate) and file.path startswith /{file_exclusions}"
            ),
        },
    ));
    if proc_files {
        rules.push((
            Part::All,
            Rule {
                id: id("PROC-WRITE"),
                name: "/proc file written outside what was learned".into(),
                description: "The workload wrote a file under /proc it did not write while it was learned (globs over the pid: decided in user space).".into(),
                severity: "medium",
                condition: format!(
                    "kind = file_open and {{scope}} and file.access in (write, truncate) and file.path startswith /proc/ and not file.path glob ({p}_proc_files)"
                ),
            },
        ));
    }
    rules.push((
        Part::Split,
        Rule {
            id: id("CHANGE"),
            name: "File changed outside what was learned".into(),
            description: "The workload removed, renamed, linked, chmod'ed or chown'ed a file it did not while it was learned.".into(),
            severity: "medium",
            condition: format!(
                "kind in (file_unlink, file_rename, file_link, file_chmod, file_chown) and {{scope}}{file_exclusions}"
            ),
        },
    ));
    rules.push((
        Part::Split,
        Rule {
            id: id("CONNECT"),
            name: "Connection to an address outside what was learned".into(),
            description: "The workload connected (or sent a first UDP datagram) to an address it did not talk to while it was learned.".into(),
            severity: "high",
            condition: format!(
                "kind = net_connect and {{scope}}{}",
                not_in("network.daddr", format!("{p}_peer_addresses"))
            ),
        },
    ));
    if has(&format!("{p}_peer_addresses")) {
        rules.push((
            Part::Split,
            Rule {
                id: id("PORT"),
                name: "Connection to a learned address on another port".into(),
                description: "The workload connected to an address it knows on a port it did not use while it was learned.".into(),
                severity: "high",
                condition: format!(
                    "kind = net_connect and {{scope}} and network.daddr in ({p}_peer_addresses){}",
                    not_in("network.dport", format!("{p}_peer_ports"))
                ),
            },
        ));
    }
    rules.push((
        Part::Split,
        Rule {
            id: id("BIND"),
            name: "Bind to a port outside what was learned".into(),
            description: "The workload bound a local port it did not bind while it was learned."
                .into(),
            severity: "medium",
            condition: format!(
                "kind = net_bind and {{scope}}{}",
                not_in("network.sport", format!("{p}_bound_ports"))
            ),
        },
    ));
    let mut privileged_lists = String::new();
    for op in Privileged::ALL {
        let (suffix, kind, field, name, part) = privileged(op);
        let noun = name.to_ascii_lowercase();
        let values: Vec<(&String, u64)> = obs
            .privileged
            .seen
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|((_, v), n)| (v, *n))
            .collect();
        if values.iter().any(|(v, _)| v.is_empty()) {
            // Seen with no value to tell one from another: nothing to allow-list it by.
            continue;
        }
        let list = format!("{p}_{}", suffix.to_ascii_lowercase());
        let exclusion = if values.is_empty() {
            String::new()
        } else {
            let _ = writeln!(
                privileged_lists,
                "- list: {list}\n  # {field} of each {noun} seen\n  items:"
            );
            for (v, n) in &values {
                let _ = writeln!(
                    privileged_lists,
                    "    - {}  # {}",
                    yaml_item(v),
                    times(*n, "time")
                );
            }
            privileged_lists.push('\n');
            format!(" and not {field} in ({list})")
        };
        rules.push((
            part,
            Rule {
                id: id(suffix),
                name: format!("{name} outside what was learned"),
                description: format!(
                    "The workload did a {noun} it did not do while it was learned."
                ),
                severity: "high",
                condition: format!("{kind} and {{scope}}{exclusion}"),
            },
        ));
    }
    out.push_str(&privileged_lists);

    for (part, rule) in rules {
        for (suffix, scope) in obs.scope.variants(part, &p) {
            let rid = format!("{}{suffix}", rule.id);
            if let Some(note) = notes.get(&rid) {
                let _ = writeln!(out, "# {rid}: {note}");
            }
            let _ = writeln!(out, "- rule: {}{}", rule.name, variant_name(suffix));
            let _ = writeln!(out, "  id: {rid}");
            let _ = writeln!(out, "  description: >-\n    {}", rule.description);
            let _ = writeln!(out, "  severity: {}", rule.severity);
            let _ = writeln!(
                out,
                "  condition: >-\n    {}",
                rule.condition.replace("{scope}", &scope)
            );
            let _ = writeln!(
                out,
                "  action: deny\n  mode: {}\n  tags: [learned]\n",
                opts.mode
            );
        }
    }
    out
}

fn variant_name(suffix: &str) -> &'static str {
    match suffix {
        "-SELF" => " (the binary itself)",
        "-DESC" => " (below the binary)",
        _ => "",
    }
}

/// `(id suffix, kind condition, value field, display name, part)` of a privileged operation.
fn privileged(op: Privileged) -> (&'static str, &'static str, &'static str, &'static str, Part) {
    match op {
        Privileged::ModuleLoad => (
            "MODULE",
            "kind = module_load",
            "module.path",
            "Kernel module load",
            Part::Split,
        ),
        Privileged::BpfLoad => (
            "BPF",
            "kind = bpf_load",
            "bpf.prog_name",
            "BPF program load",
            Part::Split,
        ),
        Privileged::Ptrace => (
            "PTRACE",
            "kind = ptrace",
            "ptrace.target_binary",
            "Ptrace",
            Part::Split,
        ),
        Privileged::CredChange => (
            "CRED",
            "kind = cred_change",
            "cred.syscall",
            "Credential change",
            Part::All,
        ),
        Privileged::Mount => (
            "MOUNT",
            "kind in (mount, umount)",
            "mount.target",
            "Mount",
            Part::All,
        ),
        Privileged::Namespace => (
            "NAMESPACE",
            "kind = namespace_change",
            "namespace.syscall",
            "Namespace change",
            Part::All,
        ),
    }
}

fn header(out: &mut String, obs: &Observations, opts: &RenderOptions) {
    let when = match (obs.first, obs.last) {
        (Some(a), Some(b)) => format!("from {a} to {b}"),
        _ => "(nothing of the workload was seen)".to_string(),
    };
    let _ = writeln!(
        out,
        "# Least-privilege policy for {}, learned by `shrike learn` on {}\n# {when}: {} events of the workload.",
        obs.scope.describe(),
        opts.node,
        obs.events
    );
    let _ = writeln!(
        out,
        "# Learned: {}, {}, {}, {}, {}.",
        plural(obs.executables.seen.len(), "executable"),
        plural(obs.files.seen.len(), "file written or changed"),
        plural(obs.peers.seen.len(), "peer"),
        plural(obs.bound.seen.len(), "bound port"),
        plural(obs.privileged.seen.len(), "privileged operation")
    );
    let dropped = obs.executables.dropped
        + obs.files.dropped
        + obs.peers.dropped
        + obs.bound.dropped
        + obs.privileged.dropped;
    if dropped > 0 {
        let _ = writeln!(out, "# {dropped} observations did not fit the lists ({} values per list at most): those actions will be reported.", super::observe::MAX_VALUES);
    }
    if obs.unlisted_paths > 0 {
        let _ = writeln!(out, "# {} paths with bytes that are not UTF-8 are not listed: those actions will be reported.", obs.unlisted_paths);
    }
    let _ = writeln!(
        out,
        "#\n# Every rule denies what the workload did not do while it was learned, in mode {}:\n\
         # `audit` reports would_deny and stops nothing; `enforce` stops what the kernel decides\n\
         # (the comment above each rule says which) and reports the rest as alerted. Review it,\n\
         # then `shrike policy validate` and `shrike policy explain` it.\n",
        opts.mode
    );
}

fn plural(n: usize, what: &str) -> String {
    match n {
        0 => format!("no {what}"),
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

fn times(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn counted<K: ToString>(seen: &BTreeMap<K, u64>, what: &str) -> Items {
    seen.iter()
        .map(|(k, n)| (k.to_string(), times(*n, what)))
        .collect()
}

fn sum_by<K: Ord, T: Ord>(c: &Counted<T>, key: impl Fn(&T) -> K) -> BTreeMap<K, u64> {
    let mut out = BTreeMap::new();
    for (k, n) in &c.seen {
        *out.entry(key(k)).or_insert(0) += n;
    }
    out
}

/// The files a workload wrote, as the lists its rules allow.
#[derive(Debug, Default)]
struct FileLists {
    /// Exact paths.
    exact: Items,
    /// Directories allowed with everything below them (`startswith`, which the kernel
    /// holds): pseudo-terminals, and directories where more than [`DIR_FILES`] files were
    /// written.
    dirs: Items,
    /// Globs for files of the process's own /proc directory (`/proc/*/…`: the pid changes from
    /// run to run), which only user space can match.
    proc_globs: Items,
}

/// Exact paths, and what stands for the paths that change from run to run: pids under /proc,
/// pty numbers, directories where many files were written.
fn generalize(files: &Counted<String>) -> FileLists {
    let mut dirs: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut proc_globs: BTreeMap<String, u64> = BTreeMap::new();
    let mut rest: BTreeMap<&str, u64> = BTreeMap::new();
    for (path, n) in &files.seen {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.get(1) == Some(&"proc")
            && parts
                .get(2)
                .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
        {
            let tail: Vec<String> = parts[3..].iter().map(|c| glob_escape(c)).collect();
            *proc_globs
                .entry(format!("/proc/*/{}", tail.join("/")))
                .or_insert(0) += n;
        } else if path.starts_with("/dev/pts/") {
            let e = dirs
                .entry("/dev/pts/".to_string())
                .or_insert((0, "pseudo-terminals".to_string()));
            e.0 += n;
        } else {
            rest.insert(path, *n);
        }
    }
    let mut by_dir: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for path in rest.keys() {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        by_dir.entry(dir).or_default().push(path);
    }
    let mut exact = Vec::new();
    for (dir, paths) in by_dir {
        if paths.len() > DIR_FILES && !dir.is_empty() {
            let n: u64 = paths.iter().map(|p| rest[p]).sum();
            dirs.insert(
                format!("{dir}/"),
                (
                    n,
                    format!(
                        "{} files in this directory: anything in it or below",
                        paths.len()
                    ),
                ),
            );
        } else {
            for path in paths {
                exact.push((path.to_string(), times(rest[path], "write")));
            }
        }
    }
    FileLists {
        exact,
        dirs: dirs
            .into_iter()
            .map(|(d, (n, why))| (d, format!("{}: {why}", times(n, "write"))))
            .collect(),
        proc_globs: proc_globs
            .into_iter()
            .map(|(g, n)| {
                let why = format!(
                    "{}: a file of the process's own /proc directory",
                    times(n, "write")
                );
                (g, why)
            })
            .collect(),
    }
}

fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A YAML list item: plain when that is unambiguous, else double-quoted.
fn yaml_item(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.+-".contains(c))
        && !text.starts_with('-')
        && !text.starts_with('.');
    if plain {
        return text.to_string();
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_quoted_only_when_needed() {
        assert_eq!(yaml_item("/usr/bin/python3.11"), "/usr/bin/python3.11");
        assert_eq!(yaml_item("127.0.0.1"), "127.0.0.1");
        assert_eq!(yaml_item("::1"), "\"::1\"");
        assert_eq!(yaml_item("/tmp/a \"b\"\\c"), "\"/tmp/a \\\"b\\\"\\\\c\"");
        assert_eq!(yaml_item("/proc/*/fd/1"), "\"/proc/*/fd/1\"");
    }

    #[test]
    fn paths_that_change_between_runs_become_directories_or_proc_globs() {
        let mut files = Counted::default();
        for p in [
            "/proc/123/attr/current",
            "/proc/456/attr/current",
            "/dev/pts/3",
            "/srv/out.txt",
        ] {
            files.seen.insert(p.to_string(), 1);
        }
        for i in 0..7 {
            files.seen.insert(format!("/var/cache/app/f{i}"), 1);
        }
        let lists = generalize(&files);
        let names =
            |items: &Items| -> Vec<String> { items.iter().map(|(p, _)| p.clone()).collect() };
        assert_eq!(names(&lists.exact), ["/srv/out.txt"]);
        assert_eq!(names(&lists.dirs), ["/dev/pts/", "/var/cache/app/"]);
        assert_eq!(names(&lists.proc_globs), ["/proc/*/attr/current"]);
        assert!(
            lists.proc_globs[0].1.starts_with("2 writes"),
            "{:?}",
            lists.proc_globs
        );
    }
}
