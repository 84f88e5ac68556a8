//! Sets of event kinds as a bit mask, so that "which kinds can this rule or field see" is one
//! `u32` and the evaluator finds the rules for an event by index instead of by string.
//!
//! [`kind_index`] is an exhaustive `match`: adding a kind to `shrike_event::EventKind` fails to
//! compile here until the kind is given a slot, so no kind is ever silently unmatched.

use std::fmt;

use shrike_event::EventKind;

/// Every event kind, in slot order.
pub const ALL_KINDS: [EventKind; 29] = [
    EventKind::ProcessExec,
    EventKind::ProcessExit,
    EventKind::ProcessFork,
    EventKind::FileOpen,
    EventKind::FileUnlink,
    EventKind::FileRename,
    EventKind::FileChmod,
    EventKind::FileChown,
    EventKind::FileLink,
    EventKind::ModuleLoad,
    EventKind::BpfLoad,
    EventKind::Ptrace,
    EventKind::CredChange,
    EventKind::Mount,
    EventKind::Umount,
    EventKind::NamespaceChange,
    EventKind::MemfdCreate,
    EventKind::Signal,
    EventKind::NetConnect,
    EventKind::NetAccept,
    EventKind::NetBind,
    EventKind::NetListen,
    EventKind::NetClose,
    EventKind::Dns,
    EventKind::EventsLost,
    EventKind::AgentHealth,
    EventKind::Incident,
    EventKind::AlertsSuppressed,
    EventKind::PolicyChange,
];

/// The slot of `kind` in [`ALL_KINDS`] and in a [`KindSet`].
pub const fn kind_index(kind: EventKind) -> usize {
    match kind {
        EventKind::ProcessExec => 0,
        EventKind::ProcessExit => 1,
        EventKind::ProcessFork => 2,
        EventKind::FileOpen => 3,
        EventKind::FileUnlink => 4,
        EventKind::FileRename => 5,
        EventKind::FileChmod => 6,
        EventKind::FileChown => 7,
        EventKind::FileLink => 8,
        EventKind::ModuleLoad => 9,
        EventKind::BpfLoad => 10,
        EventKind::Ptrace => 11,
        EventKind::CredChange => 12,
        EventKind::Mount => 13,
        EventKind::Umount => 14,
        EventKind::NamespaceChange => 15,
        EventKind::MemfdCreate => 16,
        EventKind::Signal => 17,
        EventKind::NetConnect => 18,
        EventKind::NetAccept => 19,
        EventKind::NetBind => 20,
        EventKind::NetListen => 21,
        EventKind::NetClose => 22,
        EventKind::Dns => 23,
        EventKind::EventsLost => 24,
        EventKind::AgentHealth => 25,
        EventKind::Incident => 26,
        EventKind::AlertsSuppressed => 27,
        EventKind::PolicyChange => 28,
    }
}

/// The kind named `name` in the event contract (`file_open`, …).
pub fn parse_kind(name: &str) -> Option<EventKind> {
    ALL_KINDS.iter().copied().find(|k| k.as_str() == name)
}

/// A set of event kinds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KindSet(pub u32);

impl KindSet {
    pub const EMPTY: KindSet = KindSet(0);
    pub const ALL: KindSet = KindSet((1 << ALL_KINDS.len()) - 1);

    /// The set holding exactly `kinds`.
    pub const fn of(kinds: &[EventKind]) -> KindSet {
        let mut bits = 0;
        let mut i = 0;
        while i < kinds.len() {
            bits |= 1 << kind_index(kinds[i]);
            i += 1;
        }
        KindSet(bits)
    }

    pub const fn contains(self, kind: EventKind) -> bool {
        self.0 & (1 << kind_index(kind)) != 0
    }

    pub const fn union(self, other: KindSet) -> KindSet {
        KindSet(self.0 | other.0)
    }

    pub const fn intersect(self, other: KindSet) -> KindSet {
        KindSet(self.0 & other.0)
    }

    pub const fn without(self, other: KindSet) -> KindSet {
        KindSet(self.0 & !other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in slot order.
    pub fn iter(self) -> impl Iterator<Item = EventKind> {
        ALL_KINDS.into_iter().filter(move |k| self.contains(*k))
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }
}

impl fmt::Debug for KindSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

impl fmt::Display for KindSet {
    /// Comma-separated contract names, e.g. `file_open, file_chmod`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, kind) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(kind.as_str())?;
        }
        Ok(())
    }
}

/// Kinds whose event carries a `file` object.
pub const FILE: KindSet = KindSet::of(&[
    EventKind::FileOpen,
    EventKind::FileUnlink,
    EventKind::FileRename,
    EventKind::FileChmod,
    EventKind::FileChown,
    EventKind::FileLink,
]);

/// Kinds whose event carries a `network` object.
pub const NET: KindSet = KindSet::of(&[
    EventKind::NetConnect,
    EventKind::NetAccept,
    EventKind::NetBind,
    EventKind::NetListen,
    EventKind::NetClose,
]);

/// Kinds that describe a process's own action and so carry `process`, `parent`, `ancestors`.
pub const PROCESS: KindSet = KindSet::ALL.without(KindSet::of(&[
    EventKind::EventsLost,
    EventKind::AgentHealth,
    EventKind::AlertsSuppressed,
    EventKind::PolicyChange,
]));

/// Kinds that come from a system call and may carry its `result`.
pub const SYSCALL: KindSet = FILE.union(NET).union(KindSet::of(&[
    EventKind::ModuleLoad,
    EventKind::BpfLoad,
    EventKind::Ptrace,
    EventKind::CredChange,
    EventKind::Mount,
    EventKind::Umount,
    EventKind::NamespaceChange,
    EventKind::MemfdCreate,
    EventKind::Signal,
]));

/// A kind set with one kind.
pub const fn one(kind: EventKind) -> KindSet {
    KindSet::of(&[kind])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_slot_and_round_trips_by_name() {
        for (i, kind) in ALL_KINDS.iter().enumerate() {
            assert_eq!(kind_index(*kind), i);
            assert_eq!(parse_kind(kind.as_str()), Some(*kind));
        }
        assert_eq!(KindSet::ALL.len(), ALL_KINDS.len());
    }

    #[test]
    fn set_operations_and_display() {
        let s = one(EventKind::FileOpen).union(one(EventKind::Dns));
        assert_eq!(s.to_string(), "file_open, dns");
        assert!(FILE.contains(EventKind::FileLink));
        assert!(!PROCESS.contains(EventKind::EventsLost));
        assert_eq!(FILE.intersect(NET), KindSet::EMPTY);
    }
}
