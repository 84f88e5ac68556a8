//! The watch set and its rules compiled into the kernel's entries ([`compile`], pure and
//! unit-tested): LPM keys for exact paths and prefixes, name hashes for base names, the rules of
//! each kind on each entry (the covering prefixes' rules folded into longer entries, since the
//! trie answers with the longest match only; one rule as the entry's slot, several as a chain),
//! entries of their own for the paths and prefixes a rule excludes (which leave it out), and the
//! rules without a path in per-kind lists. Written into the maps by `maps.rs`.

use std::collections::{BTreeMap, BTreeSet};

use crate::abi::file::{
    shrike_file_limits, shrike_file_rule_flags, shrike_watch_flags, shrike_watch_value,
    WATCH_PATH_MAX,
};
use crate::abi::shrike_action;
use crate::enforce::RuleAction;

use super::rules::{ENF_KINDS, NO_RULE, PATH_KINDS, RULES_PER_KIND};
use super::{fnv1a, EnforceKind, FileRule, Pattern, RuleSite, Watch, WatchKind, WatchSet};

/// One watch-set entry as the kernel stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryValue {
    pub kinds: u32,
    pub access: u32,
    pub flags: u32,
}

impl EntryValue {
    fn of(w: &Watch, flags: u32) -> EntryValue {
        EntryValue {
            kinds: WatchKind::mask(&w.kinds),
            access: if w.kinds.contains(&WatchKind::Open) {
                w.open_access.0
            } else {
                0
            },
            flags,
        }
    }

    /// Both entries' kinds; for opens, the wider access (no bits = every access).
    fn merge(&mut self, other: &EntryValue) {
        let open = WatchKind::Open.bit();
        self.access = match (self.kinds & open != 0, other.kinds & open != 0) {
            (true, true) if self.access == 0 || other.access == 0 => 0,
            (true, true) => self.access | other.access,
            (false, true) => other.access,
            (_, false) => self.access,
        };
        self.kinds |= other.kinds;
        self.flags |= other.flags;
    }

    pub(super) fn to_kernel(self, rule: [u16; PATH_KINDS]) -> shrike_watch_value {
        shrike_watch_value {
            kinds: self.kinds,
            access: self.access,
            flags: self.flags,
            rule,
        }
    }
}

/// A file-family rule as the kernel stores it (`struct shrike_file_rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRule {
    pub flags: u32,
    pub access: u32,
    pub access_excluded: u32,
    pub action: u8,
}

/// A watch set compiled into the kernel's entries (without generation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Compiled {
    /// LPM entries: the key's bytes (an exact path ends with its NUL) and what they watch.
    pub paths: BTreeMap<Vec<u8>, EntryValue>,
    /// FNV-1a 64 of base names and what they watch.
    pub names: BTreeMap<u64, EntryValue>,
    /// Every directory above a path entry that watches opens or holds an open rule
    /// ("<dir>/"), for the kernel's directory cache (bpf/lib/dir_cache.h); `None` when there
    /// are more than [`WATCH_DIRS_MAX`] (no cache).
    pub dirs: Option<BTreeSet<Vec<u8>>>,
    pub pass_all: u32,
    pub setid_chmod: bool,
    /// The rules acting per kind (`SHRIKE_ENF_*` < 6) on a path entry, the covering prefixes'
    /// folded in, as the entry's slots: one rule's index, or [`CHAIN_BIT`] and a chain's index
    /// in `chains`; every key is also in `paths`.
    pub path_rules: BTreeMap<Vec<u8>, [u16; PATH_KINDS]>,
    /// The same for base names (keys also in `names`).
    pub name_rules: BTreeMap<u64, [u16; PATH_KINDS]>,
    /// Chains of rules, by (kind, chain index): on an entry several rules of a kind act on.
    pub chains: BTreeMap<(u8, u16), Vec<u16>>,
    /// Rules by (kind, index).
    pub rules: BTreeMap<(u8, u16), KernelRule>,
    /// Constraint values: (kind, index, `SHRIKE_FRULE_*` bit, value).
    pub values: BTreeSet<(u8, u16, u32, u64)>,
    /// Rules without a path, per `SHRIKE_ENF_*` kind.
    pub lists: [Vec<u16>; ENF_KINDS],
    /// `1 << SHRIKE_ENF_*` of every kind with a rule.
    pub enforce: u32,
    /// Rules (or parts of rules) the kernel does not hold, and why: user space decides them.
    pub not_enforced: Vec<(u16, String)>,
}

/// Most path entries and base names one generation holds (the maps hold two generations).
pub const WATCH_PATHS_MAX: usize = shrike_file_limits::SHRIKE_WATCH_PATHS_MAX.0 as usize;
pub const WATCH_NAMES_MAX: usize = shrike_file_limits::SHRIKE_WATCH_NAMES_MAX.0 as usize;
pub const WATCH_DIRS_MAX: usize = shrike_file_limits::SHRIKE_WATCH_DIRS_MAX.0 as usize;

/// Compiles a watch set: exact paths get their NUL, long ones become prefixes of their first
/// [`WATCH_PATH_MAX`] bytes, and every entry carries the kinds of the prefixes covering it (the
/// kernel's longest match must decide alone).
pub fn compile(set: &WatchSet) -> Result<Compiled, String> {
    let mut paths: BTreeMap<Vec<u8>, EntryValue> = BTreeMap::new();
    let mut names: BTreeMap<u64, EntryValue> = BTreeMap::new();
    let exact = shrike_watch_flags::SHRIKE_WATCH_EXACT.0;
    let prefix = shrike_watch_flags::SHRIKE_WATCH_PREFIX.0;
    for w in &set.watches {
        if w.kinds.is_empty() {
            continue;
        }
        let (key, flags) = match &w.pattern {
            Pattern::Name(name) => {
                if name.is_empty() || name.contains('/') {
                    return Err(format!(
                        "watch name {name:?}: a base name has no '/' and is not empty"
                    ));
                }
                names
                    .entry(fnv1a(name.as_bytes()))
                    .or_default()
                    .merge(&EntryValue::of(w, 0));
                continue;
            }
            Pattern::Exact(p) | Pattern::Prefix(p) if !p.starts_with('/') => {
                return Err(format!("watch path {p:?}: paths are absolute"));
            }
            Pattern::Exact(p) if p.len() < WATCH_PATH_MAX => {
                let mut key = p.as_bytes().to_vec();
                key.push(0);
                (key, exact)
            }
            Pattern::Exact(p) | Pattern::Prefix(p) => {
                let key = p.as_bytes()[..p.len().min(WATCH_PATH_MAX)].to_vec();
                (key, prefix)
            }
        };
        paths
            .entry(key)
            .or_default()
            .merge(&EntryValue::of(w, flags));
    }
    let mut path_lists: BTreeMap<Vec<u8>, RuleLists> = BTreeMap::new();
    let mut name_lists: BTreeMap<u64, RuleLists> = BTreeMap::new();
    let mut rules = BTreeMap::new();
    let mut values = BTreeSet::new();
    let mut lists: [Vec<u16>; ENF_KINDS] = Default::default();
    let mut not_enforced = Vec::new();
    let mut exclusions: Vec<Exclusion> = Vec::new();
    let mut sorted: Vec<&FileRule> = set.rules.iter().collect();
    sorted.sort_by_key(|r| (r.index, r.kind));
    for rule in sorted {
        let k = rule.kind.index();
        let mut flags = rule.values.iter().fold(0, |f, (v, _)| f | v.flag());
        if rule.index >= CHAIN_BIT {
            not_enforced.push((
                rule.index,
                format!(
                    "rule index {} is beyond the {CHAIN_BIT} the kernel's entries can name",
                    rule.index
                ),
            ));
            continue;
        }
        match &rule.site {
            RuleSite::Every => {
                let list = &mut lists[usize::from(k)];
                if list.len() >= RULES_PER_KIND {
                    not_enforced.push((
                        rule.index,
                        format!("more than {RULES_PER_KIND} {} rules without a path: the kernel checks that many per kind", rule.kind),
                    ));
                    continue;
                }
                list.push(rule.index);
            }
            RuleSite::Path {
                patterns,
                new_path,
                excluded,
            } => {
                let EnforceKind::File(wk) = rule.kind else {
                    not_enforced.push((rule.index, format!("{} actions have no path", rule.kind)));
                    continue;
                };
                if let Some(bad) = patterns
                    .iter()
                    .chain(excluded)
                    .find_map(unusable_rule_pattern)
                {
                    not_enforced.push((rule.index, bad));
                    continue;
                }
                if let Some(Pattern::Name(n)) =
                    excluded.iter().find(|p| matches!(p, Pattern::Name(_)))
                {
                    not_enforced.push((
                        rule.index,
                        format!("excludes the base name {n:?}: the kernel excludes exact paths and prefixes only"),
                    ));
                    continue;
                }
                if !excluded.is_empty() && patterns.iter().any(|p| matches!(p, Pattern::Name(_))) {
                    not_enforced.push((
                        rule.index,
                        "found by a base name, which no path entry can leave out: the kernel excludes paths only from a rule found by path".into(),
                    ));
                    continue;
                }
                for pattern in excluded {
                    // An entry of its own, so the longest match lands there and not on the
                    // rule's prefix; it watches what the prefixes covering it watch.
                    let (Pattern::Exact(p) | Pattern::Prefix(p)) = pattern else {
                        continue;
                    };
                    let exact = matches!(pattern, Pattern::Exact(_));
                    let key = path_key(p, exact);
                    paths.entry(key.clone()).or_default().merge(&EntryValue {
                        kinds: 0,
                        access: 0,
                        flags: watch_flag(exact),
                    });
                    exclusions.push(Exclusion {
                        kind: usize::from(k),
                        rule: rule.index,
                        prefix: !exact,
                        key,
                    });
                }
                if *new_path {
                    flags |= shrike_file_rule_flags::SHRIKE_FRULE_NEW_PATH.0;
                }
                let entry = EntryValue {
                    kinds: wk.bit(),
                    access: if wk == WatchKind::Open {
                        rule.access.0
                    } else {
                        0
                    },
                    flags: 0,
                };
                for pattern in patterns {
                    let (slots, what) = match pattern {
                        Pattern::Name(name) => {
                            let hash = fnv1a(name.as_bytes());
                            names.entry(hash).or_default().merge(&entry);
                            (name_lists.entry(hash).or_default(), pattern)
                        }
                        Pattern::Exact(p) | Pattern::Prefix(p) => {
                            let exact = matches!(pattern, Pattern::Exact(_));
                            let key = path_key(p, exact);
                            paths.entry(key.clone()).or_default().merge(&EntryValue {
                                flags: watch_flag(exact),
                                ..entry
                            });
                            (path_lists.entry(key).or_default(), pattern)
                        }
                    };
                    if let Err(why) = add_rule(&mut slots[usize::from(k)], rule.index) {
                        not_enforced.push((rule.index, format!("not on {what:?}: {why}")));
                    }
                }
            }
        }
        rules.insert(
            (k, rule.index),
            KernelRule {
                flags,
                access: rule.access.0,
                access_excluded: rule.access_excluded.0,
                action: match rule.action {
                    RuleAction::Deny => shrike_action::SHRIKE_ACTION_DENY.0 as u8,
                    RuleAction::Kill => shrike_action::SHRIKE_ACTION_KILL.0 as u8,
                },
            },
        );
        for (v, value) in &rule.values {
            values.insert((k, rule.index, v.flag(), *value));
        }
    }
    // The trie answers with the longest match only: an entry takes, after its own rules, the
    // rules of every prefix covering it, longest first (but not where a rule excludes it).
    let prefix_flag = shrike_watch_flags::SHRIKE_WATCH_PREFIX.0;
    let ruled_prefixes: Vec<(Vec<u8>, RuleLists)> = path_lists
        .iter()
        .filter(|(key, _)| paths.get(*key).is_some_and(|v| v.flags & prefix_flag != 0))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !ruled_prefixes.is_empty() {
        for key in paths.keys() {
            let mut covering: Vec<&(Vec<u8>, RuleLists)> = ruled_prefixes
                .iter()
                .filter(|(p, _)| p.len() < key.len() && key.starts_with(p))
                .collect();
            covering.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
            for (prefix, prules) in covering {
                let slots = path_lists.entry(key.clone()).or_default();
                for kind in 0..PATH_KINDS {
                    for &r in &prules[kind] {
                        if excluded_at(&exclusions, kind, r, key) {
                            continue;
                        }
                        if let Err(why) = add_rule(&mut slots[kind], r) {
                            let note = format!(
                                "not on {:?} (under {:?}): {why}",
                                String::from_utf8_lossy(key.strip_suffix(&[0]).unwrap_or(key)),
                                String::from_utf8_lossy(prefix),
                            );
                            if !not_enforced.contains(&(r, note.clone())) {
                                not_enforced.push((r, note));
                            }
                        }
                    }
                }
            }
        }
    }
    // A rule never acts where it excludes, even when its own pattern lies there.
    for (key, slots) in path_lists.iter_mut() {
        for (kind, list) in slots.iter_mut().enumerate() {
            list.retain(|r| !excluded_at(&exclusions, kind, *r, key));
        }
    }
    let mut chains = Chains::default();
    let path_rules: BTreeMap<Vec<u8>, [u16; PATH_KINDS]> = path_lists
        .into_iter()
        .map(|(key, l)| (key, chains.slots(&l)))
        .collect();
    let name_rules = name_lists
        .into_iter()
        .map(|(hash, l)| (hash, chains.slots(&l)))
        .collect();
    let enforce = rules
        .keys()
        .fold(0u32, |m, (k, _)| m | (1u32 << u32::from(*k)));
    // Fold covering prefixes into longer entries.
    let prefixes: Vec<(Vec<u8>, EntryValue)> = paths
        .iter()
        .filter(|(_, v)| v.flags & prefix != 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    for (key, value) in paths.iter_mut() {
        for (p, pv) in &prefixes {
            if p.len() < key.len() && key.starts_with(p) {
                value.merge(&EntryValue { flags: 0, ..*pv });
            }
        }
    }
    if paths.len() > WATCH_PATHS_MAX {
        return Err(format!(
            "{} watched paths: at most {WATCH_PATHS_MAX}",
            paths.len()
        ));
    }
    if chains.by_index.len() > CHAINS_MAX {
        return Err(format!(
            "{} chains of rules sharing a path: at most {CHAINS_MAX}",
            chains.by_index.len()
        ));
    }
    if names.len() > WATCH_NAMES_MAX {
        return Err(format!(
            "{} watched names: at most {WATCH_NAMES_MAX}",
            names.len()
        ));
    }
    // Only entries opens can meet: a read in a directory whose entries watch removals is cold.
    let open_slot = usize::from(EnforceKind::File(WatchKind::Open).index());
    let dirs = dirs_above(paths.iter().filter_map(|(key, v)| {
        let ruled = path_rules
            .get(key)
            .is_some_and(|slots| slots[open_slot] != NO_RULE);
        (v.kinds & WatchKind::Open.bit() != 0 || ruled).then_some(key)
    }));
    Ok(Compiled {
        dirs: (dirs.len() <= WATCH_DIRS_MAX).then_some(dirs),
        paths,
        names,
        pass_all: WatchKind::mask(&set.pass_all),
        setid_chmod: set.setid_chmod_anywhere,
        path_rules,
        name_rules,
        chains: chains.by_index,
        rules,
        values,
        lists,
        enforce,
        not_enforced,
    })
}

/// Every directory ("<dir>/", up to and including each '/') some path key lies below or in:
/// a file opened there may match, so its directory is never filed as holding nothing watched.
/// The kernel files directories whose "<dir>/" and NUL leave a byte of the key free, so longer
/// ones need no entry.
fn dirs_above<'a>(keys: impl Iterator<Item = &'a Vec<u8>>) -> BTreeSet<Vec<u8>> {
    let mut dirs = BTreeSet::new();
    for key in keys {
        let slashes = key.iter().enumerate().filter(|(_, b)| **b == b'/');
        for (i, _) in slashes.take_while(|(i, _)| i + 3 <= WATCH_PATH_MAX) {
            dirs.insert(key[..=i].to_vec());
        }
    }
    dirs
}

/// A watch entry's slot holding a chain of rules rather than one rule (`SHRIKE_RULE_CHAIN`); a
/// rule's index must stay below it.
pub const CHAIN_BIT: u16 = shrike_file_limits::SHRIKE_RULE_CHAIN.0 as u16;
/// Most chains one generation holds.
pub const CHAINS_MAX: usize = shrike_file_limits::SHRIKE_RULE_CHAINS_MAX.0 as usize;

/// The rules acting on one entry, per kind, in the order the kernel tries them.
type RuleLists = [Vec<u16>; PATH_KINDS];

/// Adds `rule` to an entry's rules of one kind, unless it is there or the entry is full.
fn add_rule(list: &mut Vec<u16>, rule: u16) -> Result<(), String> {
    if list.contains(&rule) {
        return Ok(());
    }
    if list.len() >= RULES_PER_KIND {
        return Err(format!(
            "rules {list:?} already act there (the kernel tries {RULES_PER_KIND} per path and kind)"
        ));
    }
    list.push(rule);
    Ok(())
}

/// The chains of rules one generation needs: equal lists of a kind share one.
#[derive(Default)]
struct Chains {
    by_list: BTreeMap<(u8, Vec<u16>), u16>,
    by_index: BTreeMap<(u8, u16), Vec<u16>>,
}

impl Chains {
    /// An entry's slots for its rule lists: no rule, the one rule, or a chain.
    fn slots(&mut self, lists: &RuleLists) -> [u16; PATH_KINDS] {
        let mut slots = [NO_RULE; PATH_KINDS];
        for (kind, list) in lists.iter().enumerate() {
            slots[kind] = match list.as_slice() {
                [] => NO_RULE,
                [one] => *one,
                _ => {
                    let kind = kind as u8;
                    let next = self.by_index.len() as u16;
                    let index = *self.by_list.entry((kind, list.clone())).or_insert(next);
                    self.by_index.insert((kind, index), list.clone());
                    CHAIN_BIT | index
                }
            };
        }
        slots
    }
}

/// The watch flag of an exact path's or a prefix's entry.
fn watch_flag(exact: bool) -> u32 {
    if exact {
        shrike_watch_flags::SHRIKE_WATCH_EXACT.0
    } else {
        shrike_watch_flags::SHRIKE_WATCH_PREFIX.0
    }
}

/// Where a rule of one kind does not act: an exact path's key or a prefix.
struct Exclusion {
    kind: usize,
    rule: u16,
    prefix: bool,
    key: Vec<u8>,
}

/// Whether rule `rule` of `kind` leaves out the entry `key`.
fn excluded_at(exclusions: &[Exclusion], kind: usize, rule: u16, key: &[u8]) -> bool {
    exclusions.iter().any(|e| {
        e.kind == kind
            && e.rule == rule
            && if e.prefix {
                key.starts_with(&e.key)
            } else {
                key == e.key.as_slice()
            }
    })
}

/// A path's LPM key: an exact path ends with its NUL, a prefix does not.
fn path_key(path: &str, exact: bool) -> Vec<u8> {
    let mut key = path.as_bytes().to_vec();
    if exact {
        key.push(0);
    }
    key
}

/// Why a rule's path pattern cannot be a kernel key that decides exactly, if it cannot: a
/// relative path, or one longer than a key holds (the kernel would match it as a prefix and
/// refuse more than the rule says).
fn unusable_rule_pattern(p: &Pattern) -> Option<String> {
    match p {
        Pattern::Name(n) if n.is_empty() || n.contains('/') => {
            Some(format!("{n:?} is not a base name"))
        }
        Pattern::Name(_) => None,
        Pattern::Exact(p) | Pattern::Prefix(p) if !p.starts_with('/') => {
            Some(format!("{p:?} is not an absolute path"))
        }
        Pattern::Exact(p) if p.len() >= WATCH_PATH_MAX => Some(format!(
            "{p:?} is longer than the {} bytes a kernel key holds",
            WATCH_PATH_MAX - 1
        )),
        Pattern::Prefix(p) if p.len() > WATCH_PATH_MAX => Some(format!(
            "{p:?} is longer than the {WATCH_PATH_MAX} bytes a kernel key holds"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::file::shrike_watch_flags;
    use crate::file::{Access, RuleValue};

    fn w(pattern: Pattern, kinds: &[WatchKind], access: Access) -> Watch {
        Watch {
            pattern,
            kinds: kinds.iter().copied().collect(),
            open_access: access,
        }
    }

    #[test]
    fn exact_paths_end_with_nul_and_prefixes_do_not() {
        let set = WatchSet {
            watches: vec![
                w(
                    Pattern::Exact("/etc/shadow".into()),
                    &[WatchKind::Open],
                    Access::READ,
                ),
                w(
                    Pattern::Prefix("/etc/cron.d/".into()),
                    &[WatchKind::Unlink],
                    Access::ANY,
                ),
            ],
            ..Default::default()
        };
        let c = compile(&set).unwrap();
        assert!(c.paths.contains_key(b"/etc/shadow\0".as_slice()));
        assert!(c.paths.contains_key(b"/etc/cron.d/".as_slice()));
        assert_eq!(c.paths[b"/etc/shadow\0".as_slice()].access, Access::READ.0);
    }

    #[test]
    fn covering_prefixes_are_folded_into_longer_entries() {
        let set = WatchSet {
            watches: vec![
                w(
                    Pattern::Prefix("/etc/".into()),
                    &[WatchKind::Open],
                    Access::WRITE,
                ),
                w(
                    Pattern::Exact("/etc/shadow".into()),
                    &[WatchKind::Open],
                    Access::READ,
                ),
                w(
                    Pattern::Prefix("/etc/ssh/".into()),
                    &[WatchKind::Chmod],
                    Access::ANY,
                ),
            ],
            ..Default::default()
        };
        let c = compile(&set).unwrap();
        let shadow = c.paths[b"/etc/shadow\0".as_slice()];
        assert_eq!(shadow.kinds, WatchKind::Open.bit());
        assert_eq!(shadow.access, Access::READ.0 | Access::WRITE.0);
        let ssh = c.paths[b"/etc/ssh/".as_slice()];
        assert_eq!(ssh.kinds, WatchKind::Open.bit() | WatchKind::Chmod.bit());
        assert_eq!(
            ssh.access,
            Access::WRITE.0,
            "open access comes from /etc/ only"
        );
    }

    #[test]
    fn any_access_wins_over_specific_access() {
        let mut a = EntryValue {
            kinds: WatchKind::Open.bit(),
            access: Access::READ.0,
            flags: 0,
        };
        a.merge(&EntryValue {
            kinds: WatchKind::Open.bit(),
            access: 0,
            flags: 0,
        });
        assert_eq!(a.access, 0);
    }

    #[test]
    fn every_directory_above_an_entry_is_listed_for_the_directory_cache() {
        let set = WatchSet {
            watches: vec![
                w(
                    Pattern::Exact("/etc/ssh/sshd_config".into()),
                    &[WatchKind::Open],
                    Access(0),
                ),
                w(
                    Pattern::Prefix("/etc/cron".into()),
                    &[WatchKind::Unlink],
                    Access(0),
                ),
                w(
                    Pattern::Prefix("/root/.ssh/".into()),
                    &[WatchKind::Open],
                    Access(0),
                ),
                w(
                    Pattern::Name("authorized_keys".into()),
                    &[WatchKind::Open],
                    Access(0),
                ),
            ],
            ..WatchSet::default()
        };
        let c = compile(&set).unwrap();
        let dirs: Vec<&[u8]> = c.dirs.as_ref().unwrap().iter().map(|d| &d[..]).collect();
        assert_eq!(
            dirs,
            [&b"/"[..], b"/etc/", b"/etc/ssh/", b"/root/", b"/root/.ssh/"],
            "names add no directory, nor entries no open meets (/etc/cron: removals only)"
        );
        let cron = WatchSet {
            watches: vec![w(
                Pattern::Prefix("/etc/cron".into()),
                &[WatchKind::Open],
                Access(0),
            )],
            ..WatchSet::default()
        };
        let dirs: Vec<Vec<u8>> = compile(&cron).unwrap().dirs.unwrap().into_iter().collect();
        assert_eq!(
            dirs,
            [b"/".to_vec(), b"/etc/".to_vec()],
            "a prefix without a slash lists its directory"
        );
        let many = WatchSet {
            // Two directories each, fewer paths than the trie holds.
            watches: (0..WATCH_DIRS_MAX / 2 + 1)
                .map(|i| {
                    w(
                        Pattern::Exact(format!("/d{i}/e/f")),
                        &[WatchKind::Open],
                        Access(0),
                    )
                })
                .collect(),
            ..WatchSet::default()
        };
        assert!(
            compile(&many).unwrap().dirs.is_none(),
            "too many: no cache, still a set"
        );
    }

    #[test]
    fn long_exact_paths_become_prefixes_of_the_key_size() {
        let long = format!("/{}", "a".repeat(400));
        let set = WatchSet {
            watches: vec![Watch::all_kinds(Pattern::Exact(long.clone()))],
            ..Default::default()
        };
        let c = compile(&set).unwrap();
        let (key, v) = c.paths.iter().next().unwrap();
        assert_eq!(key.len(), WATCH_PATH_MAX);
        assert_eq!(v.flags, shrike_watch_flags::SHRIKE_WATCH_PREFIX.0);
    }

    #[test]
    fn names_are_hashed_like_the_kernel_and_relative_paths_refused() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let set = WatchSet {
            watches: vec![Watch::all_kinds(Pattern::Name("authorized_keys".into()))],
            ..Default::default()
        };
        assert!(compile(&set)
            .unwrap()
            .names
            .contains_key(&fnv1a(b"authorized_keys")));
        let bad = WatchSet {
            watches: vec![Watch::all_kinds(Pattern::Prefix("etc/".into()))],
            ..Default::default()
        };
        assert!(compile(&bad).unwrap_err().contains("absolute"));
    }

    #[test]
    fn builtin_set_compiles_and_watches_the_issue_paths() {
        let c = compile(&WatchSet::builtin()).unwrap();
        assert!(c.paths.contains_key(b"/etc/shadow\0".as_slice()));
        assert!(c.paths.contains_key(b"/etc/cron".as_slice()));
        assert!(c.setid_chmod);
    }

    fn deny(index: u16, kind: EnforceKind, site: RuleSite) -> FileRule {
        FileRule {
            index,
            kind,
            action: RuleAction::Deny,
            site,
            access: Access::ANY,
            access_excluded: Access::ANY,
            values: Vec::new(),
        }
    }

    fn on(patterns: &[Pattern]) -> RuleSite {
        RuleSite::Path {
            patterns: patterns.to_vec(),
            new_path: false,
            excluded: Vec::new(),
        }
    }

    #[test]
    fn rules_sit_on_their_paths_per_kind_and_prefix_rules_fold_into_longer_entries() {
        let open = EnforceKind::File(WatchKind::Open);
        let unlink = EnforceKind::File(WatchKind::Unlink);
        let set = WatchSet {
            watches: vec![w(
                Pattern::Exact("/srv/a/b".into()),
                &[WatchKind::Chmod],
                Access::ANY,
            )],
            rules: vec![
                deny(3, open, on(&[Pattern::Exact("/etc/shadow".into())])),
                deny(4, unlink, on(&[Pattern::Prefix("/srv/a/".into())])),
                deny(5, open, on(&[Pattern::Name("id_rsa".into())])),
                FileRule {
                    values: vec![(RuleValue::BinaryNotIn, fnv1a(b"sshd"))],
                    ..deny(6, EnforceKind::Ptrace, RuleSite::Every)
                },
            ],
            ..Default::default()
        };
        let c = compile(&set).unwrap();
        assert!(c.not_enforced.is_empty(), "{:?}", c.not_enforced);
        let shadow = c.path_rules[b"/etc/shadow\0".as_slice()];
        assert_eq!(shadow[usize::from(open.index())], 3);
        assert_eq!(shadow[usize::from(unlink.index())], NO_RULE);
        assert_eq!(
            c.paths[b"/etc/shadow\0".as_slice()].kinds,
            WatchKind::Open.bit(),
            "a rule's path is watched for its kind"
        );
        // The watched exact path under the ruled prefix takes the prefix's rule.
        assert_eq!(
            c.path_rules[b"/srv/a/b\0".as_slice()][usize::from(unlink.index())],
            4
        );
        assert_eq!(
            c.name_rules[&fnv1a(b"id_rsa")][usize::from(open.index())],
            5
        );
        assert_eq!(c.lists[usize::from(EnforceKind::Ptrace.index())], [6]);
        let ptrace = c.rules[&(EnforceKind::Ptrace.index(), 6)];
        assert_eq!(ptrace.flags, RuleValue::BinaryNotIn.flag());
        assert!(c.values.contains(&(
            EnforceKind::Ptrace.index(),
            6,
            RuleValue::BinaryNotIn.flag(),
            fnv1a(b"sshd")
        )));
        assert_eq!(
            c.enforce,
            (1 << open.index()) | (1 << unlink.index()) | (1 << EnforceKind::Ptrace.index())
        );
    }

    /// An allow-list of paths (`file.path startswith / and not file.path in (…)`): the
    /// excluded exact paths and prefixes get entries of their own without the rule, the
    /// entries under an excluded prefix do not take the rule from a shorter prefix, another
    /// rule covering an excluded path still acts there, and what the prefixes watch is still
    /// watched on the new entries.
    #[test]
    fn excluded_paths_and_prefixes_get_entries_without_the_rule() {
        let open = EnforceKind::File(WatchKind::Open);
        let unlink = EnforceKind::File(WatchKind::Unlink);
        let k = usize::from(open.index());
        let set = WatchSet {
            watches: vec![w(
                Pattern::Exact("/srv/cache/a".into()),
                &[WatchKind::Chmod],
                Access::ANY,
            )],
            rules: vec![
                FileRule {
                    access: Access::WRITE,
                    ..deny(
                        7,
                        open,
                        RuleSite::Path {
                            patterns: vec![Pattern::Prefix("/".into())],
                            new_path: false,
                            excluded: vec![
                                Pattern::Exact("/srv/state.txt".into()),
                                Pattern::Prefix("/srv/cache/".into()),
                            ],
                        },
                    )
                },
                deny(8, unlink, on(&[Pattern::Prefix("/srv/".into())])),
            ],
            ..Default::default()
        };
        let c = compile(&set).unwrap();
        assert!(c.not_enforced.is_empty(), "{:?}", c.not_enforced);
        assert_eq!(c.path_rules[b"/".as_slice()][k], 7);
        let state = b"/srv/state.txt\0".as_slice();
        assert_eq!(
            c.path_rules.get(state).map_or(NO_RULE, |r| r[k]),
            NO_RULE,
            "an excluded exact path"
        );
        assert_eq!(
            c.path_rules[state][usize::from(unlink.index())],
            8,
            "another rule still acts on the excluded path"
        );
        assert_eq!(
            c.path_rules
                .get(b"/srv/cache/".as_slice())
                .map_or(NO_RULE, |r| r[k]),
            NO_RULE
        );
        assert_eq!(
            c.path_rules
                .get(b"/srv/cache/a\0".as_slice())
                .map_or(NO_RULE, |r| r[k]),
            NO_RULE,
            "a watched path under an excluded prefix"
        );
        assert_eq!(c.path_rules[b"/srv/".as_slice()][k], 7, "not excluded");
        for key in [state, b"/srv/cache/".as_slice()] {
            let v = c.paths[key];
            assert_ne!(v.kinds & WatchKind::Open.bit(), 0, "still watched: {key:?}");
            assert_eq!(v.access, Access::WRITE.0);
        }
    }

    #[test]
    fn exclusions_the_kernel_cannot_hold_leave_the_rule_to_user_space() {
        let open = EnforceKind::File(WatchKind::Open);
        let site = |patterns: Vec<Pattern>, excluded: Vec<Pattern>| RuleSite::Path {
            patterns,
            new_path: false,
            excluded,
        };
        let c = compile(&WatchSet {
            rules: vec![
                deny(
                    1,
                    open,
                    site(
                        vec![Pattern::Prefix("/".into())],
                        vec![Pattern::Name("a.txt".into())],
                    ),
                ),
                deny(
                    2,
                    open,
                    site(
                        vec![Pattern::Name("id_rsa".into())],
                        vec![Pattern::Exact("/root/.ssh/id_rsa".into())],
                    ),
                ),
            ],
            ..Default::default()
        })
        .unwrap();
        let why: Vec<&str> = c.not_enforced.iter().map(|(_, w)| w.as_str()).collect();
        assert!(why[0].contains("base name \"a.txt\""), "{why:?}");
        assert!(why[1].contains("found by a base name"), "{why:?}");
        assert!(c.rules.is_empty());
    }

    #[test]
    fn rules_the_layout_cannot_hold_are_named_not_loaded_half() {
        let open = EnforceKind::File(WatchKind::Open);
        let long = format!("/{}", "x".repeat(300));
        let mut rules = vec![deny(3, open, on(&[Pattern::Exact(long)]))];
        // More rules on one path than the kernel tries.
        for i in 0..=RULES_PER_KIND as u16 {
            rules.push(deny(
                100 + i,
                open,
                on(&[Pattern::Exact("/etc/gshadow".into())]),
            ));
        }
        for i in 0..=RULES_PER_KIND as u16 {
            rules.push(deny(10 + i, EnforceKind::BpfLoad, RuleSite::Every));
        }
        let c = compile(&WatchSet {
            rules,
            ..Default::default()
        })
        .unwrap();
        let why = |i: u16| {
            c.not_enforced
                .iter()
                .find(|(r, _)| *r == i)
                .map(|(_, w)| w.clone())
                .unwrap_or_default()
        };
        assert!(why(3).contains("longer than"), "{}", why(3));
        assert!(!c.rules.contains_key(&(open.index(), 3)));
        let last = 100 + RULES_PER_KIND as u16;
        assert!(why(last).contains("already act there"), "{}", why(last));
        assert!(why(10 + RULES_PER_KIND as u16).contains("without a path"));
        assert_eq!(
            c.lists[usize::from(EnforceKind::BpfLoad.index())].len(),
            RULES_PER_KIND
        );
    }

    /// Several rules of a kind on one entry (their own path, or a covering prefix's) form a
    /// chain the kernel tries in order; equal chains are shared; one rule stays a plain slot.
    #[test]
    fn rules_sharing_an_entry_form_a_chain() {
        let open = EnforceKind::File(WatchKind::Open);
        let k = usize::from(open.index());
        let root = || on(&[Pattern::Prefix("/".into())]);
        let c = compile(&WatchSet {
            rules: vec![
                deny(1, open, root()),
                deny(2, open, root()),
                deny(3, open, on(&[Pattern::Exact("/etc/shadow".into())])),
                deny(4, open, on(&[Pattern::Name("id_rsa".into())])),
            ],
            ..Default::default()
        })
        .unwrap();
        assert!(c.not_enforced.is_empty(), "{:?}", c.not_enforced);
        let slot = |key: &[u8]| c.path_rules[key][k];
        let chain = |slot: u16| {
            assert_ne!(slot & CHAIN_BIT, 0, "{slot:#x} is not a chain");
            c.chains[&(open.index(), slot & !CHAIN_BIT)].clone()
        };
        assert_eq!(chain(slot(b"/")), [1, 2]);
        assert_eq!(chain(slot(b"/etc/shadow\0")), [3, 1, 2], "own rule first");
        assert_eq!(c.name_rules[&fnv1a(b"id_rsa")][k], 4, "one rule: no chain");
        assert_eq!(c.chains.len(), 2);
        let twice = compile(&WatchSet {
            rules: vec![
                deny(
                    1,
                    open,
                    on(&[Pattern::Exact("/a".into()), Pattern::Exact("/b".into())]),
                ),
                deny(
                    2,
                    open,
                    on(&[Pattern::Exact("/a".into()), Pattern::Exact("/b".into())]),
                ),
            ],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(twice.chains.len(), 1, "equal chains are shared");
        assert_eq!(
            twice.path_rules[b"/a\0".as_slice()],
            twice.path_rules[b"/b\0".as_slice()]
        );
    }
}
