//! Fields computed in user space from what an event already carries: the shape of a DNS name
//! (length, labels, the entropy of its leftmost labels, the parent domain), whether an open asked
//! for a directory, whether a file action targets the acting process's own program or another
//! process's `/proc` entry, and a few counts. Each is a pure function of one event; the field
//! table (`fields.rs`) has one line per field that calls these.
//!
//! DNS names: the *parent domain* is the registrable-looking suffix, the last two labels, or the
//! last three when the second-to-last is a common second-level label under a two-letter country
//! code (`example.co.uk`, `example.com.au`); the *subdomain* is everything left of it. This is a
//! heuristic, not the Public Suffix List: it errs towards a shorter parent (`a.b.github.io` has
//! parent `github.io`), which only makes the per-parent counts of a rate rule larger.

use shrike_event::{Event, Process};

use crate::fields::basename;

/// `O_DIRECTORY` (asm-generic/fcntl.h, x86 and arm64 alike).
const O_DIRECTORY: u32 = 0o200000;
/// The bit of `O_TMPFILE` that is not `O_DIRECTORY` (`__O_TMPFILE`).
const O_TMPFILE_ONLY: u32 = 0o20000000;

/// True when an open asked for a directory (`O_DIRECTORY` without `O_TMPFILE`): listing a
/// directory reads it, whatever else the flags say.
pub fn directory_open(flags: u32) -> bool {
    flags & O_DIRECTORY != 0 && flags & O_TMPFILE_ONLY == 0
}

/// The pid a `/proc/<pid>/…` path names, if it is one.
pub fn proc_pid(path: &str) -> Option<u32> {
    let rest = path.strip_prefix("/proc/")?;
    let digits = rest.split('/').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// True when the event's file is a `/proc/<pid>/…` entry of a process other than the actor.
pub fn proc_other(e: &Event) -> Option<bool> {
    let file = e.file()?;
    let pid = proc_pid(&file.path)?;
    Some(pid != e.process.pid && pid != e.tid)
}

/// Base-name prefixes of interpreters whose first operand is the program they run.
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "python", "perl", "ruby", "php",
    "node", "lua",
];

/// Whether `path` is the program an interpreter process runs: its first argument that is not
/// an option, taken against its working directory when relative (`sh ./x.sh` in /tmp runs
/// `/tmp/x.sh`). Allocates nothing.
fn runs_program(p: &Process, path: &str) -> bool {
    let name = basename(&p.binary);
    if !INTERPRETERS.iter().any(|i| name.starts_with(i)) {
        return false;
    }
    let Some(first) = p.args.get(1) else {
        return false;
    };
    if first.starts_with('-') || first.is_empty() {
        return false;
    }
    if first.starts_with('/') {
        return first == path;
    }
    let rel = first.strip_prefix("./").unwrap_or(first);
    path.strip_prefix(p.cwd.trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| rest == rel)
}

/// True when the event's file (or, for a rename, its old name) is the program that is running:
/// the acting process's binary, script or interpreted program, or its parent's (a dropper that
/// runs `rm "$0"`, a binary that unlinks itself).
pub fn own_program(e: &Event) -> Option<bool> {
    let path = e.file()?.path.as_str();
    if path.is_empty() {
        return None;
    }
    let is = |p: &Process| {
        &*p.binary == path || p.script.as_deref() == Some(path) || runs_program(p, path)
    };
    Some(is(&e.process) || e.parent.as_deref().is_some_and(is))
}

/// True when a rename or link adds an extension to the name and keeps the rest
/// (`report.pdf` → `report.pdf.locked`): what ransomware does to every file it encrypts.
pub fn extension_added(e: &Event) -> Option<bool> {
    let file = e.file()?;
    let new = file.new_path.as_deref()?;
    let added = new
        .strip_prefix(file.path.as_str())
        .and_then(|rest| rest.strip_prefix('.'));
    Some(added.is_some_and(|ext| !ext.is_empty() && ext.len() <= 16 && !ext.contains('/')))
}

/// The query name without a trailing dot.
fn name(query: &str) -> &str {
    query.strip_suffix('.').unwrap_or(query)
}

/// Second-level labels that sit under a country code as part of the public suffix.
const SECOND_LEVEL: &[&str] = &[
    "co", "com", "net", "org", "gov", "edu", "ac", "ne", "or", "go", "gob", "mil", "nic",
];

/// Where the parent domain starts in `name` (a byte offset).
fn parent_start(name: &str) -> usize {
    let labels: Vec<(usize, &str)> = {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, c) in name.char_indices() {
            if c == '.' {
                out.push((start, &name[start..i]));
                start = i + 1;
            }
        }
        out.push((start, &name[start..]));
        out
    };
    let n = labels.len();
    if n <= 2 {
        return 0;
    }
    let tld = labels[n - 1].1;
    let second = labels[n - 2].1.to_ascii_lowercase();
    let keep = if tld.len() == 2 && SECOND_LEVEL.contains(&second.as_str()) {
        3
    } else {
        2
    };
    if n <= keep {
        0
    } else {
        labels[n - keep].0
    }
}

/// The parent domain of a query (`x1.evil.example.com` → `example.com`).
pub fn parent_domain(query: &str) -> &str {
    let n = name(query);
    &n[parent_start(n)..]
}

/// The labels left of the parent domain, dots included (`x1.evil.example.com` → `x1.evil`).
pub fn subdomain(query: &str) -> &str {
    let n = name(query);
    let start = parent_start(n);
    if start == 0 {
        ""
    } else {
        &n[..start - 1]
    }
}

/// How many labels the name has.
pub fn label_count(query: &str) -> i64 {
    let n = name(query);
    if n.is_empty() {
        0
    } else {
        n.split('.').count() as i64
    }
}

/// The longest label's length.
pub fn longest_label(query: &str) -> i64 {
    name(query)
        .split('.')
        .map(|l| l.len() as i64)
        .max()
        .unwrap_or(0)
}

/// The Shannon entropy of the subdomain's characters (dots left out, letters folded to lower
/// case), in hundredths of a bit per character: `www` is 0, random base32 is about 450.
pub fn subdomain_entropy(query: &str) -> i64 {
    let mut counts = [0u32; 256];
    let mut total = 0u32;
    for b in subdomain(query).bytes().filter(|b| *b != b'.') {
        counts[usize::from(b.to_ascii_lowercase())] += 1;
        total += 1;
    }
    if total == 0 {
        return 0;
    }
    let total = f64::from(total);
    let bits: f64 = counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / total;
            -p * p.log2()
        })
        .sum();
    (bits * 100.0).round() as i64
}

/// The base name of argv[0] (`/usr/sbin/sshd` → `sshd`, `-bash` → `-bash`).
pub fn argv0_name(p: &Process) -> Option<&str> {
    p.args.first().map(|a| basename(a))
}

/// True when argv[0]'s base name is neither the binary's nor the script's: a process started
/// under another name (`exec -a sshd ./x`). Login shells (`-bash`) are not a mismatch.
pub fn argv0_mismatch(p: &Process) -> Option<bool> {
    let name = argv0_name(p)?;
    let name = name.strip_prefix('-').unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    let same = |path: &str| basename(path) == name;
    Some(!(same(&p.binary) || p.script.as_deref().is_some_and(same)))
}

/// True when some argument carries an encoded blob: a token (split at blanks, quotes and shell
/// punctuation) of 16+ base64 characters mixing upper case, lower case and digits, or of 24+
/// hex digits. Paths (a leading `/`) and anything with other characters (`.`, `:`) are not
/// blobs. Allocates nothing.
pub fn args_encoded_blob(args: &[String]) -> bool {
    let is_sep = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '\'' | '"'
                    | '`'
                    | '('
                    | ')'
                    | ';'
                    | '|'
                    | '&'
                    | '<'
                    | '>'
                    | ','
                    | '$'
                    | '{'
                    | '}'
                    | '['
                    | ']'
            )
    };
    args.iter().flat_map(|a| a.split(is_sep)).any(|t| {
        if t.starts_with('/') || t.starts_with('-') {
            return false;
        }
        let body = t.trim_end_matches('=');
        let b64 = body.len() >= 16
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
            && body.bytes().any(|b| b.is_ascii_digit())
            && body.bytes().any(|b| b.is_ascii_uppercase())
            && body.bytes().any(|b| b.is_ascii_lowercase());
        let hex = t.len() >= 24
            && t.bytes().all(|b| b.is_ascii_hexdigit())
            && t.bytes().any(|b| b.is_ascii_digit())
            && t.bytes().any(|b| b.is_ascii_alphabetic());
        b64 || hex
    })
}

/// The process's argument count, argv[0] included.
pub fn args_count(p: &Process) -> i64 {
    p.args.len() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_event::{EventKind, FileInfo, Timestamp};
    use std::sync::Arc;

    #[test]
    fn directory_opens_are_not_tmpfile_opens() {
        assert!(directory_open(0o200000 | 0o4000000));
        assert!(!directory_open(0o20200000 | 0o2));
        assert!(!directory_open(0o101));
    }

    #[test]
    fn proc_paths_name_their_pid() {
        assert_eq!(proc_pid("/proc/1234/mem"), Some(1234));
        assert_eq!(proc_pid("/proc/self/mem"), None);
        assert_eq!(proc_pid("/proc/sys/kernel/x"), None);
        assert_eq!(proc_pid("/etc/1234"), None);
    }

    #[test]
    fn encoded_blobs_in_arguments() {
        let args = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(args_encoded_blob(&args(&[
            "sh",
            "-c",
            "echo ZWNobyBoZWxsbyB3b3JsZAo= | base64 -d | sh"
        ])));
        assert!(args_encoded_blob(&args(&[
            "python3",
            "-c",
            "import base64;exec(base64.b64decode(\"aW1wb3J0IG9zO29zLnN5c3RlbSgnaWQnKQ==\"))"
        ])));
        assert!(args_encoded_blob(&args(&[
            "sh",
            "-c",
            "echo 69642026262075616d65202d61 | xxd -r -p"
        ])));
        assert!(!args_encoded_blob(&args(&[
            "cc",
            "-o",
            "/usr/lib/x86_64-linux-gnu/libXcomposite.so.1"
        ])));
        assert!(!args_encoded_blob(&args(&[
            "docker",
            "rm",
            "3f9a2c4b-1d2e-4f5a-8b9c-0d1e2f3a4b5c"
        ])));
        assert!(!args_encoded_blob(&args(&[
            "sh",
            "-c",
            "kubectl get secret db -o jsonpath={.data.password} | base64 -d"
        ])));
    }

    #[test]
    fn dns_shapes() {
        let q = "MZXW6YTBOI.MFRGGZDFMZTWQ2LK.t.example.com.";
        assert_eq!(parent_domain(q), "example.com");
        assert_eq!(subdomain(q), "MZXW6YTBOI.MFRGGZDFMZTWQ2LK.t");
        assert_eq!(label_count(q), 5);
        assert_eq!(longest_label(q), 16);
        assert!(subdomain_entropy(q) > 350, "{}", subdomain_entropy(q));
        assert_eq!(parent_domain("www.bbc.co.uk"), "bbc.co.uk");
        assert_eq!(subdomain("www.bbc.co.uk"), "www");
        assert_eq!(subdomain_entropy("www.example.com"), 0);
        assert_eq!(parent_domain("example.com"), "example.com");
        assert_eq!(subdomain("example.com"), "");
        assert_eq!(parent_domain("localhost"), "localhost");
        assert_eq!(label_count(""), 0);
    }

    #[test]
    fn own_program_covers_the_binary_the_script_and_the_parent() {
        let me = Arc::new(Process {
            pid: 7,
            binary: "/usr/bin/rm".into(),
            ..Process::default()
        });
        let parent = Arc::new(Process {
            binary: "/usr/bin/dash".into(),
            script: Some("/tmp/drop.sh".into()),
            ..Process::default()
        });
        let mut e = Event::new(Timestamp(0), EventKind::FileUnlink, "n".into(), me);
        e.parent = Some(parent);
        e.set_file(FileInfo {
            path: "/tmp/drop.sh".into(),
            ..FileInfo::default()
        });
        assert_eq!(own_program(&e), Some(true));
        e.set_file(FileInfo {
            path: "/tmp/other".into(),
            ..FileInfo::default()
        });
        assert_eq!(own_program(&e), Some(false));
        let parent = Arc::new(Process {
            binary: "/usr/bin/dash".into(),
            args: vec!["sh".into(), "./drop.sh".into()].into(),
            cwd: "/tmp".into(),
            ..Process::default()
        });
        e.parent = Some(parent);
        e.set_file(FileInfo {
            path: "/tmp/drop.sh".into(),
            ..FileInfo::default()
        });
        assert_eq!(own_program(&e), Some(true), "sh ./drop.sh removing itself");
        e.process = Arc::new(Process {
            pid: 7,
            binary: "/usr/bin/rm".into(),
            args: vec!["rm".into(), "/tmp/a".into()].into(),
            ..Process::default()
        });
        e.parent = None;
        e.set_file(FileInfo {
            path: "/tmp/a".into(),
            ..FileInfo::default()
        });
        assert_eq!(
            own_program(&e),
            Some(false),
            "rm's operand is not rm's program"
        );
        e.set_file(FileInfo {
            path: "/proc/8/mem".into(),
            ..FileInfo::default()
        });
        assert_eq!(proc_other(&e), Some(true));
    }
}
