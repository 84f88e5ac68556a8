//! What the file family watches: the kinds of file event ([`WatchKind`]) and of every event
//! the family can produce ([`FileEventKind`]), the accesses of an open ([`Access`]), and the
//! watch set ([`WatchSet`]) of patterns whose events leave the kernel, with the built-in list
//! used until a policy supplies its own. Compiled into kernel entries by `compile.rs`.

use std::collections::BTreeSet;

use crate::abi::file::{shrike_file_access, shrike_watch_kind};

use super::FileRule;

/// The file kinds the watch set filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    Open,
    Unlink,
    Rename,
    Chmod,
    Chown,
    Link,
    /// Set-times calls: utimensat (and futimens), utimes, futimesat, utime.
    Utimes,
}

impl WatchKind {
    pub const ALL: [WatchKind; 7] = [
        WatchKind::Open,
        WatchKind::Unlink,
        WatchKind::Rename,
        WatchKind::Chmod,
        WatchKind::Chown,
        WatchKind::Link,
        WatchKind::Utimes,
    ];

    /// The kind's bit in the kernel's masks (`SHRIKE_WATCH_*`).
    pub fn bit(self) -> u32 {
        match self {
            WatchKind::Open => shrike_watch_kind::SHRIKE_WATCH_OPEN.0,
            WatchKind::Unlink => shrike_watch_kind::SHRIKE_WATCH_UNLINK.0,
            WatchKind::Rename => shrike_watch_kind::SHRIKE_WATCH_RENAME.0,
            WatchKind::Chmod => shrike_watch_kind::SHRIKE_WATCH_CHMOD.0,
            WatchKind::Chown => shrike_watch_kind::SHRIKE_WATCH_CHOWN.0,
            WatchKind::Link => shrike_watch_kind::SHRIKE_WATCH_LINK.0,
            WatchKind::Utimes => shrike_watch_kind::SHRIKE_WATCH_UTIMES.0,
        }
    }

    pub(super) fn mask(kinds: &BTreeSet<WatchKind>) -> u32 {
        kinds.iter().fold(0, |m, k| m | k.bit())
    }
}

/// Every kind of event the family can produce; arming one attaches its syscalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileEventKind {
    File(WatchKind),
    ModuleLoad,
    BpfLoad,
    Ptrace,
    CredChange,
    /// mount and umount.
    Mount,
    Namespace,
    Memfd,
    /// socket(2) of netfilter's netlink (the kernel sends no other).
    Socket,
    Signal,
}

impl FileEventKind {
    /// Every kind.
    pub fn all() -> BTreeSet<FileEventKind> {
        let mut all: BTreeSet<_> = WatchKind::ALL
            .into_iter()
            .map(FileEventKind::File)
            .collect();
        all.extend([
            FileEventKind::ModuleLoad,
            FileEventKind::BpfLoad,
            FileEventKind::Ptrace,
            FileEventKind::CredChange,
            FileEventKind::Mount,
            FileEventKind::Namespace,
            FileEventKind::Memfd,
            FileEventKind::Socket,
            FileEventKind::Signal,
        ]);
        all
    }
}

/// `file.access` bits of an open; a watch with no bits watches every open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Access(pub u32);

impl Access {
    pub const ANY: Access = Access(0);
    pub const READ: Access = Access(shrike_file_access::SHRIKE_ACCESS_READ.0);
    pub const WRITE: Access = Access(shrike_file_access::SHRIKE_ACCESS_WRITE.0);
    pub const CREATE: Access = Access(shrike_file_access::SHRIKE_ACCESS_CREATE.0);
    pub const TRUNCATE: Access = Access(shrike_file_access::SHRIKE_ACCESS_TRUNCATE.0);
    /// Any change to the file: write, create or truncate.
    pub const MODIFY: Access = Access(Self::WRITE.0 | Self::CREATE.0 | Self::TRUNCATE.0);

    /// The contract's words (`read`, `write`, `create`, `truncate`), in that order.
    pub fn words(self) -> Vec<&'static str> {
        [
            (Self::READ, "read"),
            (Self::WRITE, "write"),
            (Self::CREATE, "create"),
            (Self::TRUNCATE, "truncate"),
        ]
        .into_iter()
        .filter(|(a, _)| self.0 & a.0 != 0)
        .map(|(_, w)| w)
        .collect()
    }
}

/// What a watch matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// This path exactly.
    Exact(String),
    /// Every path that starts with this string (`/etc/cron` matches `/etc/crontab`).
    Prefix(String),
    /// Every path whose last component is this name.
    Name(String),
}

/// One watched pattern, for some kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub pattern: Pattern,
    pub kinds: BTreeSet<WatchKind>,
    /// For [`WatchKind::Open`]: the accesses that make an open interesting ([`Access::ANY`]:
    /// every open).
    pub open_access: Access,
}

impl Watch {
    /// A watch for every kind and every open.
    pub fn all_kinds(pattern: Pattern) -> Watch {
        Watch {
            pattern,
            kinds: WatchKind::ALL.into_iter().collect(),
            open_access: Access::ANY,
        }
    }
}

/// The set of paths whose events leave the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchSet {
    pub watches: Vec<Watch>,
    /// Kinds whose every event is sent, unfiltered (a policy rule the path filter cannot
    /// express).
    pub pass_all: BTreeSet<WatchKind>,
    /// Send every chmod that sets setuid or setgid, wherever the file is.
    pub setid_chmod_anywhere: bool,
    /// Deny/kill rules the kernel decides, loaded with the watch set (same generation).
    pub rules: Vec<FileRule>,
}

impl WatchSet {
    /// The built-in watch list, used until a policy supplies its own: credentials, privilege
    /// configuration, persistence locations, logs, and setuid/setgid chmods anywhere.
    pub fn builtin() -> WatchSet {
        use Pattern::{Exact, Name, Prefix};
        // Home directories: not opens, and not times (tar, cp -p and rsync -t restore them
        // there all day).
        let home_kinds: BTreeSet<WatchKind> = WatchKind::ALL
            .into_iter()
            .filter(|k| !matches!(k, WatchKind::Open | WatchKind::Utimes))
            .collect();
        let any = |p: Pattern| Watch::all_kinds(p);
        // Written, replaced, removed, re-owned: reads are routine (sudo reads sudoers).
        let changed = |p: Pattern| Watch {
            pattern: p,
            kinds: WatchKind::ALL.into_iter().collect(),
            open_access: Access::MODIFY,
        };
        let mut watches = vec![
            any(Exact("/etc/shadow".into())),
            any(Exact("/etc/gshadow".into())),
            any(Exact("/etc/shadow-".into())),
            any(Exact("/etc/gshadow-".into())),
            any(Prefix("/root/.ssh/".into())),
            any(Exact("/etc/ld.so.preload".into())),
            changed(Exact("/etc/passwd".into())),
            changed(Exact("/etc/group".into())),
            changed(Exact("/etc/sudoers".into())),
            changed(Prefix("/etc/sudoers.d/".into())),
            changed(Prefix("/etc/cron".into())),
            changed(Prefix("/var/spool/cron/".into())),
            changed(Prefix("/etc/systemd/".into())),
            changed(Prefix("/etc/pam.d/".into())),
            changed(Exact("/etc/profile".into())),
            changed(Prefix("/etc/profile.d/".into())),
            changed(Exact("/etc/bash.bashrc".into())),
            changed(Exact("/etc/environment".into())),
            changed(Exact("/etc/ld.so.conf".into())),
            changed(Prefix("/etc/ld.so.conf.d/".into())),
            changed(Exact("/etc/rc.local".into())),
            changed(Prefix("/etc/init.d/".into())),
            changed(Prefix("/etc/ssh/".into())),
            changed(Prefix("/etc/modules-load.d/".into())),
            changed(Name("authorized_keys".into())),
            changed(Name("authorized_keys2".into())),
            changed(Name(".bashrc".into())),
            changed(Name(".bash_profile".into())),
            changed(Name(".profile".into())),
            changed(Name(".zshrc".into())),
            changed(Name(".bash_history".into())),
            // Logs: written all the time, so only truncation, removal, renames and links.
            Watch {
                pattern: Prefix("/var/log/".into()),
                kinds: WatchKind::ALL.into_iter().collect(),
                open_access: Access::TRUNCATE,
            },
            // Home directories: ownership, mode and link changes (reads and writes there are
            // the users' own business; the names above cover the persistence files).
            Watch {
                pattern: Prefix("/home/".into()),
                kinds: home_kinds,
                open_access: Access::ANY,
            },
        ];
        watches.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        WatchSet {
            watches,
            pass_all: BTreeSet::new(),
            setid_chmod_anywhere: true,
            rules: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_words_follow_the_contract_order() {
        assert_eq!(
            Access(Access::TRUNCATE.0 | Access::READ.0).words(),
            ["read", "truncate"]
        );
    }
}
