//! What the workload did while `shrike learn` watched: executables, files written, network
//! peers and bound ports, privileged operations — counted per value, from the events `shrike
//! run` would write (read back from the agent's JSON stream, or from a recorded file).
//!
//! Memory: at most [`MAX_VALUES`] distinct values per category; beyond, values are counted as
//! dropped and the policy's header says so (those actions would be reported by the policy).

use std::collections::BTreeMap;
use std::io::{self, Write};

use shrike_event::{Event, EventKind, Timestamp};

use super::scope::Scope;

/// Distinct values kept per category.
pub const MAX_VALUES: usize = 4096;

/// A privileged operation's kind as the policy names it, and the field its value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Privileged {
    ModuleLoad,
    BpfLoad,
    Ptrace,
    CredChange,
    Mount,
    Namespace,
}

impl Privileged {
    pub const ALL: [Privileged; 6] = [
        Privileged::ModuleLoad,
        Privileged::BpfLoad,
        Privileged::Ptrace,
        Privileged::CredChange,
        Privileged::Mount,
        Privileged::Namespace,
    ];

    fn of(event: &Event) -> Option<(Privileged, String)> {
        Some(match event.kind {
            EventKind::ModuleLoad => (
                Privileged::ModuleLoad,
                event.module()?.path.clone().unwrap_or_default(),
            ),
            EventKind::BpfLoad => (Privileged::BpfLoad, event.bpf()?.prog_name.clone()),
            EventKind::Ptrace => (Privileged::Ptrace, event.ptrace()?.target_binary.clone()),
            EventKind::CredChange => (Privileged::CredChange, event.cred()?.syscall.clone()),
            EventKind::Mount | EventKind::Umount => {
                (Privileged::Mount, event.mount()?.target.clone())
            }
            EventKind::NamespaceChange => {
                (Privileged::Namespace, event.namespace()?.syscall.clone())
            }
            _ => return None,
        })
    }
}

/// Values and how often each was seen, bounded.
#[derive(Debug, Clone)]
pub struct Counted<K: Ord> {
    pub seen: BTreeMap<K, u64>,
    /// Values not kept because the category was full.
    pub dropped: u64,
}

impl<K: Ord> Default for Counted<K> {
    fn default() -> Self {
        Counted {
            seen: BTreeMap::new(),
            dropped: 0,
        }
    }
}

impl<K: Ord> Counted<K> {
    fn add(&mut self, key: K) {
        if let Some(n) = self.seen.get_mut(&key) {
            *n += 1;
        } else if self.seen.len() < MAX_VALUES {
            self.seen.insert(key, 1);
        } else {
            self.dropped += 1;
        }
    }
}

/// Everything learned about the scope.
#[derive(Debug, Clone)]
pub struct Observations {
    pub scope: Scope,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// Events of the scope seen.
    pub events: u64,
    /// Executed binaries and `#!` scripts, by path.
    pub executables: Counted<String>,
    /// Files opened for writing, created, truncated, removed, renamed (both names), linked,
    /// chmod'ed or chown'ed.
    pub files: Counted<String>,
    /// Peers connected to: (address, port).
    pub peers: Counted<(String, u16)>,
    /// Local ports bound.
    pub bound: Counted<u16>,
    /// Privileged operations: (kind, value).
    pub privileged: Counted<(Privileged, String)>,
    /// Paths with bytes that are not UTF-8 (written `\xNN` in events): not listed, since the
    /// kernel compares the raw bytes.
    pub unlisted_paths: u64,
}

impl Observations {
    pub fn new(scope: Scope) -> Self {
        Observations {
            scope,
            first: None,
            last: None,
            events: 0,
            executables: Counted::default(),
            files: Counted::default(),
            peers: Counted::default(),
            bound: Counted::default(),
            privileged: Counted::default(),
            unlisted_paths: 0,
        }
    }

    /// Takes one event into account if it is the workload's.
    pub fn observe(&mut self, event: &Event) {
        if !event.kind.from_sensor() || !self.scope.contains(event) {
            return;
        }
        self.events += 1;
        self.first.get_or_insert(event.time);
        self.last = Some(event.time);
        let p = &event.process;
        match event.kind {
            EventKind::ProcessExec => {
                self.path(Target::Exec, &p.binary);
                if let Some(script) = &p.script {
                    self.path(Target::Exec, script);
                }
            }
            EventKind::FileOpen => {
                if let Some(f) = event.file() {
                    if writes(&f.access) {
                        self.path(Target::File, &f.path);
                    }
                }
            }
            EventKind::FileUnlink
            | EventKind::FileRename
            | EventKind::FileChmod
            | EventKind::FileChown
            | EventKind::FileLink => {
                if let Some(f) = event.file() {
                    self.path(Target::File, &f.path);
                    if let Some(new) = &f.new_path {
                        self.path(Target::File, new);
                    }
                }
            }
            EventKind::NetConnect => {
                if let Some(n) = event.network() {
                    self.peers.add((n.daddr.clone(), n.dport));
                }
            }
            EventKind::NetBind => {
                if let Some(n) = event.network() {
                    self.bound.add(n.sport);
                }
            }
            _ => {
                if let Some(op) = Privileged::of(event) {
                    self.privileged.add(op);
                }
            }
        }
    }

    fn path(&mut self, target: Target, path: &str) {
        if path.contains("\\x") {
            self.unlisted_paths += 1;
            return;
        }
        match target {
            Target::Exec => self.executables.add(path.to_string()),
            Target::File => self.files.add(path.to_string()),
        }
    }
}

/// Whether an open writes: `write` or `truncate` access. (`create` alone is not taken: the
/// sensor also reports it for every `O_DIRECTORY` open, whose bits `O_TMPFILE` contains, and a
/// create without write access writes nothing. The learned rule matches the same words.)
pub fn writes(access: &[String]) -> bool {
    access.iter().any(|a| a == "write" || a == "truncate")
}

enum Target {
    Exec,
    File,
}

/// A `Write` that reads the agent's JSON lines back as events and observes them: `shrike
/// learn` runs the same agent as `shrike run` and learns from exactly what it would write.
pub struct Sink<'a> {
    obs: &'a mut Observations,
    line: Vec<u8>,
    /// Lines that were not events (none expected).
    pub bad_lines: u64,
}

impl<'a> Sink<'a> {
    pub fn new(obs: &'a mut Observations) -> Self {
        Sink {
            obs,
            line: Vec::new(),
            bad_lines: 0,
        }
    }

    fn take_line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match serde_json::from_slice::<Event>(line) {
            Ok(event) => self.obs.observe(&event),
            Err(_) => self.bad_lines += 1,
        }
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.line.is_empty() {
                self.take_line(&rest[..i]);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..i]);
                self.take_line(&line);
            }
            rest = &rest[i + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
