//! Deduplication: repeats of the same rule on the same process image and target within a
//! window are counted instead of written.
//!
//! The key is a hash of the rule id, the image's executable (`process.binary`) and the action's
//! target, which depends on the kind ([`hash_target`]; for an exec, the incident it is part of).
//! The window is fixed from the alert that was written: the first
//! repeat after it ends is written again and opens a new window. Memory: at most
//! [`MAX_KEYS`] keys (16 bytes each plus the map's overhead); when full, the oldest key is
//! forgotten early, so a repeat may be written again — never lost.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use shrike_event::{Event, EventKind};

/// Keys remembered at most.
pub const MAX_KEYS: usize = 16_384;

pub(super) struct Dedup {
    window_ns: u64,
    /// Key → end of its window.
    until: HashMap<u64, u64>,
    /// Keys in the order their windows started (= the order they end: the window is fixed).
    order: VecDeque<(u64, u64)>,
}

impl Dedup {
    pub fn new(window_ns: u64) -> Self {
        Dedup {
            window_ns,
            until: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// True when an alert with `key` was written within the window before `now`.
    pub fn is_repeat(&mut self, key: u64, now: u64) -> bool {
        if self.window_ns == 0 {
            return false;
        }
        self.expire(now);
        self.until.get(&key).is_some_and(|&end| end > now)
    }

    /// Records that an alert with `key` was written at `now`: its window starts.
    pub fn remember(&mut self, key: u64, now: u64) {
        if self.window_ns == 0 {
            return;
        }
        let end = now.saturating_add(self.window_ns);
        self.until.insert(key, end);
        self.order.push_back((key, end));
        while self.until.len() > MAX_KEYS {
            self.pop_oldest();
        }
    }

    /// Forgets keys whose window has ended.
    pub fn expire(&mut self, now: u64) {
        while self.order.front().is_some_and(|&(_, end)| end <= now) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((key, end)) = self.order.pop_front() {
            // The key may have a newer window (re-inserted after this one ended).
            if self.until.get(&key) == Some(&end) {
                self.until.remove(&key);
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.until.len()
    }
}

/// The dedup key of `rule_id` on `event`, which joined the incident `incident`.
pub(super) fn key(rule_id: &str, event: &Event, incident: Option<&str>) -> u64 {
    let mut h = DefaultHasher::new();
    rule_id.hash(&mut h);
    event.process.binary.hash(&mut h);
    event.kind.hash(&mut h);
    if event.kind == EventKind::ProcessExec {
        incident.hash(&mut h);
    }
    hash_target(event, &mut h);
    h.finish()
}

/// What the action was done to, per kind: the file (and the new name), the peer (connect,
/// accept) or local port (bind, listen), the DNS name, the module, BPF program, ptrace or
/// signal target's binary, the new credentials, the mount point, the namespaces, the memfd
/// name. An exec has no target of its own: it is keyed by its incident instead ([`key`]), so
/// a reverse shell whose descendants start the same shell binary again and again is one alert,
/// while the same binary started in two unrelated sessions (two incidents) is two.
fn hash_target(event: &Event, h: &mut DefaultHasher) {
    if let Some(f) = event.file() {
        f.path.hash(h);
        f.new_path.hash(h);
    }
    if let Some(n) = event.network() {
        n.protocol.hash(h);
        match event.kind {
            EventKind::NetBind | EventKind::NetListen => n.sport.hash(h),
            _ => {
                n.daddr.hash(h);
                n.dport.hash(h);
            }
        }
    }
    if let Some(d) = event.dns() {
        d.query.hash(h);
    }
    if let Some(m) = event.module() {
        m.name.hash(h);
        m.path.hash(h);
    }
    if let Some(b) = event.bpf() {
        b.prog_type.hash(h);
        b.prog_name.hash(h);
    }
    if let Some(p) = event.ptrace() {
        p.request.hash(h);
        p.target_binary.hash(h);
    }
    if let Some(s) = event.signal() {
        s.signal.hash(h);
        s.target_binary.hash(h);
    }
    if let Some(c) = event.cred() {
        c.syscall.hash(h);
        c.new.uid.hash(h);
        c.new.euid.hash(h);
        c.caps_gained.hash(h);
    }
    if let Some(m) = event.mount() {
        m.target.hash(h);
        m.fstype.hash(h);
    }
    if let Some(n) = event.namespace() {
        n.namespaces.hash(h);
    }
    if let Some(m) = event.memfd() {
        m.name.hash(h);
    }
    if let Some(x) = event.exit() {
        x.code.hash(h);
        x.signal.hash(h);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shrike_event::{FileInfo, Process, Timestamp};

    use super::*;

    const S: u64 = 1_000_000_000;

    /// Asks, and remembers when written (what the shaper does with an alert it lets through).
    fn seen(d: &mut Dedup, key: u64, now: u64) -> bool {
        let repeat = d.is_repeat(key, now);
        if !repeat {
            d.remember(key, now);
        }
        repeat
    }

    fn open(binary: &str, path: &str) -> Event {
        let p = Arc::new(Process {
            binary: binary.into(),
            ..Process::default()
        });
        let mut e = Event::new(Timestamp(0), EventKind::FileOpen, "n".into(), p);
        e.set_file(FileInfo {
            path: path.into(),
            ..FileInfo::default()
        });
        e
    }

    /// The same rule, binary and file repeat; another file or binary or rule does not.
    #[test]
    fn keys_separate_rule_image_and_target() {
        let a = key("R", &open("/usr/bin/cat", "/etc/shadow"), None);
        assert_eq!(a, key("R", &open("/usr/bin/cat", "/etc/shadow"), None));
        assert_ne!(a, key("R", &open("/usr/bin/cat", "/etc/gshadow"), None));
        assert_ne!(a, key("R", &open("/usr/bin/less", "/etc/shadow"), None));
        assert_ne!(a, key("Q", &open("/usr/bin/cat", "/etc/shadow"), None));
    }

    /// The same shell binary started twice in one incident is a repeat, whatever its
    /// command line; started in two incidents (two unrelated sessions) it is two alerts.
    #[test]
    fn an_exec_is_keyed_by_its_incident() {
        let exec = |args: &[&str]| {
            let p = Arc::new(Process {
                binary: "/usr/bin/bash".into(),
                args: args
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .into(),
                ..Process::default()
            });
            Event::new(Timestamp(0), EventKind::ProcessExec, "n".into(), p)
        };
        let a = key("R", &exec(&["sh", "-c", "cat /etc/shadow"]), Some("i1"));
        assert_eq!(a, key("R", &exec(&["sh", "-c", "id"]), Some("i1")));
        assert_ne!(
            a,
            key("R", &exec(&["sh", "-c", "cat /etc/shadow"]), Some("i2"))
        );
    }

    /// Repeats inside the window are repeats; the first after it is written and starts anew.
    #[test]
    fn the_window_is_fixed_from_the_written_alert() {
        let mut d = Dedup::new(60 * S);
        assert!(!seen(&mut d, 7, 0));
        assert!(seen(&mut d, 7, 30 * S));
        assert!(seen(&mut d, 7, 59 * S));
        assert!(!seen(&mut d, 7, 60 * S), "the window ended");
        assert!(seen(&mut d, 7, 61 * S));
        assert!(!seen(&mut d, 8, 61 * S));
        d.expire(200 * S);
        assert_eq!(d.len(), 0);
    }

    /// Memory stays bounded: the oldest key goes first and is then written again.
    #[test]
    fn keys_are_bounded_and_the_oldest_is_forgotten() {
        let mut d = Dedup::new(3600 * S);
        for k in 0..(MAX_KEYS as u64 + 10) {
            assert!(!seen(&mut d, k, S));
        }
        assert_eq!(d.len(), MAX_KEYS);
        assert!(!seen(&mut d, 0, 2 * S), "forgotten, so written again");
        assert!(seen(&mut d, MAX_KEYS as u64 + 9, 2 * S));
    }

    /// A zero window turns deduplication off.
    #[test]
    fn zero_window_never_repeats() {
        let mut d = Dedup::new(0);
        assert!(!seen(&mut d, 1, 0));
        assert!(!seen(&mut d, 1, 0));
    }
}
