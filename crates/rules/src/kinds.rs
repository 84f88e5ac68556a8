//! Sets of event kinds as a bit mask, so that "which kinds can this rule or field see" is one
//! `u32` and the evaluator finds the rules for an event by index instead of by string.
//!
//! Slots, names and the families below are read from the event crate's table of kinds
//! (`shrike_event::KINDS`), so a new kind has its slot and its families the moment it has its
//! row there.

use std::fmt;

use shrike_event::{EventKind, KindFacts, Origin, PayloadKind, KINDS};

/// A set of event kinds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KindSet(pub u32);

impl KindSet {
    pub const EMPTY: KindSet = KindSet(0);
    pub const ALL: KindSet = KindSet((1 << EventKind::ALL.len()) - 1);

    /// The set holding exactly `kinds`.
    pub const fn of(kinds: &[EventKind]) -> KindSet {
        let mut bits = 0;
        let mut i = 0;
        while i < kinds.len() {
            bits |= 1 << kinds[i].index();
            i += 1;
        }
        KindSet(bits)
    }

    pub const fn contains(self, kind: EventKind) -> bool {
        self.0 & (1 << kind.index()) != 0
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
        EventKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
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

/// The kinds whose row in the table of kinds satisfies a test (a macro: constant functions
/// cannot call a closure).
macro_rules! kinds_where {
    (|$row:ident| $test:expr) => {{
        let mut bits = 0;
        let mut i = 0;
        while i < KINDS.len() {
            let $row: &KindFacts = &KINDS[i];
            if $test {
                bits |= 1 << i;
            }
            i += 1;
        }
        KindSet(bits)
    }};
}

/// Kinds whose event carries a `file` object.
pub const FILE: KindSet = kinds_where!(|k| matches!(k.payload, PayloadKind::File));

/// Kinds whose event carries a `network` object of a socket action (DNS messages carry one
/// too, with the message).
pub const NET: KindSet = kinds_where!(|k| matches!(k.payload, PayloadKind::Network));

/// Kinds that describe a process's own action and so carry `process`, `parent`, `ancestors`.
pub const PROCESS: KindSet = kinds_where!(|k| !matches!(k.origin, Origin::Agent));

/// Kinds that come from a system call and may carry its `result`.
pub const SYSCALL: KindSet = kinds_where!(|k| matches!(k.origin, Origin::Syscall));

/// A kind set with one kind.
pub const fn one(kind: EventKind) -> KindSet {
    KindSet::of(&[kind])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_slot_and_round_trips_by_name() {
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(EventKind::from_name(kind.as_str()), Some(*kind));
            assert!(KindSet::ALL.contains(*kind));
        }
        assert_eq!(KindSet::ALL.len(), EventKind::ALL.len());
    }

    #[test]
    fn set_operations_and_display() {
        let s = one(EventKind::FileOpen).union(one(EventKind::Dns));
        assert_eq!(s.to_string(), "file_open, dns");
        assert!(FILE.contains(EventKind::FileLink));
        assert!(!PROCESS.contains(EventKind::EventsLost));
        assert_eq!(FILE.intersect(NET), KindSet::EMPTY);
    }

    /// The families read from the table are the ones the rule language documents.
    #[test]
    fn families_from_the_table() {
        use EventKind as K;
        assert_eq!(
            FILE,
            KindSet::of(&[
                K::FileOpen,
                K::FileUnlink,
                K::FileRename,
                K::FileChmod,
                K::FileChown,
                K::FileLink,
                K::FileUtimes
            ])
        );
        assert_eq!(
            NET,
            KindSet::of(&[
                K::NetConnect,
                K::NetAccept,
                K::NetBind,
                K::NetListen,
                K::NetClose
            ])
        );
        let agent = [
            K::EventsLost,
            K::AgentHealth,
            K::AlertsSuppressed,
            K::PolicyChange,
        ];
        assert_eq!(PROCESS, KindSet::ALL.without(KindSet::of(&agent)));
        let other_calls = [
            K::ModuleLoad,
            K::BpfLoad,
            K::Ptrace,
            K::CredChange,
            K::Mount,
            K::Umount,
            K::NamespaceChange,
            K::MemfdCreate,
            K::SocketCreate,
            K::Signal,
        ];
        assert_eq!(SYSCALL, FILE.union(NET).union(KindSet::of(&other_calls)));
    }
}
