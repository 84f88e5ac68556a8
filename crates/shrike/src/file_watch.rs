//! The policy's kernel plan as the file sensor's watch set: which file kinds to filter on which
//! paths, and which kinds of the family the policy needs at all.
//!
//! For each kind the plan lists (`KindPlan`), the file sensor sends an event when its path or
//! new path is in the plan's path sets (a chmod also when its new mode has a set-id bit the
//! plan asks about). A kind whose interest names a dimension the path filter
//! cannot test (a binary, a uid, the access words alone) is sent unfiltered (`pass_all`): the
//! filter must never drop an event some rule could match. Call [`from_plan`], then
//! `FileWatch::replace` with the set (atomic; the old set stays on error).

use std::collections::BTreeSet;

use shrike_bpf::file::{Access, FileEventKind, Pattern, Watch, WatchKind, WatchSet};
use shrike_event::EventKind;
use shrike_rules::{Dim, KernelPlan, PathSet, ValueSet};

/// The family's kind for an event kind, if the family produces it.
pub fn family_kind(kind: EventKind) -> Option<FileEventKind> {
    Some(match kind {
        EventKind::FileOpen => FileEventKind::File(WatchKind::Open),
        EventKind::FileUnlink => FileEventKind::File(WatchKind::Unlink),
        EventKind::FileRename => FileEventKind::File(WatchKind::Rename),
        EventKind::FileChmod => FileEventKind::File(WatchKind::Chmod),
        EventKind::FileChown => FileEventKind::File(WatchKind::Chown),
        EventKind::FileLink => FileEventKind::File(WatchKind::Link),
        EventKind::FileUtimes => FileEventKind::File(WatchKind::Utimes),
        EventKind::ModuleLoad => FileEventKind::ModuleLoad,
        EventKind::BpfLoad => FileEventKind::BpfLoad,
        EventKind::Ptrace => FileEventKind::Ptrace,
        EventKind::CredChange => FileEventKind::CredChange,
        EventKind::Mount | EventKind::Umount => FileEventKind::Mount,
        EventKind::NamespaceChange => FileEventKind::Namespace,
        EventKind::MemfdCreate => FileEventKind::Memfd,
        EventKind::SocketCreate => FileEventKind::Socket,
        EventKind::Signal => FileEventKind::Signal,
        _ => return None,
    })
}

/// A path set's exact paths, prefixes and base names as watch patterns.
fn patterns(paths: &PathSet) -> impl Iterator<Item = Pattern> + '_ {
    paths
        .exact
        .iter()
        .cloned()
        .map(Pattern::Exact)
        .chain(paths.prefixes.iter().cloned().map(Pattern::Prefix))
        .chain(paths.names.iter().cloned().map(Pattern::Name))
}

/// Whether the kernel can key on `pattern`: a prefix or path that is not absolute ("tmp/" from
/// a glob) cannot be a key, nor a base name that is empty or holds a '/'.
fn usable(pattern: &Pattern) -> bool {
    match pattern {
        Pattern::Exact(p) | Pattern::Prefix(p) => p.starts_with('/'),
        Pattern::Name(n) => !n.is_empty() && !n.contains('/'),
    }
}

/// The watch set a plan needs, and the family's kinds it needs (arm only those).
pub fn from_plan(plan: &KernelPlan) -> (WatchSet, BTreeSet<FileEventKind>) {
    let mut set = WatchSet::default();
    let mut kinds = BTreeSet::new();
    for kp in &plan.kinds {
        let Some(fk) = family_kind(kp.kind) else {
            continue;
        };
        kinds.insert(fk);
        let FileEventKind::File(wk) = fk else {
            continue;
        };
        // The kernel filters by path, and a chmod also by the set-id bits of its new mode.
        let filterable = |d: &Dim| match d {
            Dim::Path | Dim::NewPath => true,
            Dim::Setid => wk == WatchKind::Chmod,
            _ => false,
        };
        if kp.pass_all || !kp.interest.keys().all(filterable) || kp.interest.is_empty() {
            set.pass_all.insert(wk);
            continue;
        }
        if wk == WatchKind::Open {
            if let Some(watches) = open_watches(plan, kp.kind) {
                set.watches.extend(watches);
                continue;
            }
        }
        for (dim, value) in &kp.interest {
            if *dim == Dim::Setid {
                // Sent when the new mode has either bit: a superset of any one-bit interest.
                set.setid_chmod_anywhere = true;
                continue;
            }
            let ValueSet::Paths(paths) = value else {
                set.pass_all.insert(wk);
                continue;
            };
            for pattern in patterns(paths) {
                if !usable(&pattern) {
                    set.pass_all.insert(wk);
                    continue;
                }
                set.watches.push(Watch {
                    pattern,
                    kinds: [wk].into_iter().collect(),
                    open_access: Access::ANY,
                });
            }
        }
    }
    (set, kinds)
}

/// For opens: one watch per rule path, with the accesses that rule needs (`file.access in
/// (write, truncate)` needs no read-only open), when every rule on opens names its paths; the
/// kernel folds overlapping entries, the widest access winning. `None` when some rule does not
/// (the kind's interest, with every access, is used then).
fn open_watches(plan: &KernelPlan, kind: EventKind) -> Option<Vec<Watch>> {
    let mut out = Vec::new();
    for entry in plan
        .rules
        .iter()
        .flat_map(|r| r.entries.iter())
        .filter(|e| e.kind == kind)
    {
        let Some(ValueSet::Paths(paths)) = entry
            .constraints
            .get(&Dim::Path)
            .and_then(|c| c.include.as_ref())
        else {
            return None;
        };
        let access = match entry.constraints.get(&Dim::Access) {
            Some(c) if c.exclude.is_none() => match &c.include {
                Some(ValueSet::Paths(words)) => {
                    let mut bits = 0;
                    for word in &words.exact {
                        bits |= match word.as_str() {
                            "read" => Access::READ.0,
                            "write" => Access::WRITE.0,
                            "create" => Access::CREATE.0,
                            "truncate" => Access::TRUNCATE.0,
                            _ => return None,
                        };
                    }
                    Access(bits)
                }
                _ => Access::ANY,
            },
            _ => Access::ANY,
        };
        for pattern in patterns(paths) {
            if !usable(&pattern) {
                return None;
            }
            out.push(Watch {
                pattern,
                kinds: [WatchKind::Open].into_iter().collect(),
                open_access: access,
            });
        }
    }
    Some(out)
}

/// The watch set in force: the configuration's (built-in list and `--watch`) with the policy's
/// added, so a path either asks for is sent, and the policy's deny/kill rules the kernel
/// decides (`enforcement::file_rules`, a workload-scoped rule with the cgroup set `cgroups`
/// gives it), which switch with it.
pub fn merged(
    configured: &WatchSet,
    plan: &KernelPlan,
    cgroups: &dyn Fn(u16) -> BTreeSet<u64>,
) -> WatchSet {
    let (from_policy, _) = from_plan(plan);
    let mut set = configured.clone();
    set.watches.extend(from_policy.watches);
    set.pass_all.extend(from_policy.pass_all);
    set.setid_chmod_anywhere |= from_policy.setid_chmod_anywhere;
    set.rules = crate::enforcement::file_rules(plan, cgroups).0;
    set
}

/// Whether the file family is needed at all: some file kind is in the policy or some path is
/// configured. Without either, no file sensor is loaded and no syscall hook is armed.
pub fn needed(configured: &WatchSet, plan: &KernelPlan) -> bool {
    let (_, kinds) = from_plan(plan);
    !kinds.is_empty()
        || !configured.watches.is_empty()
        || !configured.pass_all.is_empty()
        || configured.setid_chmod_anywhere
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_bpf::file::compile;
    use shrike_rules::Policy;

    fn plan(yaml: &str) -> KernelPlan {
        Policy::compile([("p.yaml", yaml)])
            .map_err(|e| format!("{e:?}"))
            .unwrap()
            .kernel_plan()
            .clone()
    }

    #[test]
    fn path_rules_become_watches_of_their_kind_only() {
        let p = plan(
            "- rule: r\n  id: R-1\n  severity: high\n  condition: kind = file_open and file.path = /etc/shadow\n",
        );
        let (set, kinds) = from_plan(&p);
        assert_eq!(
            kinds,
            [FileEventKind::File(WatchKind::Open)].into_iter().collect()
        );
        assert!(set.pass_all.is_empty());
        assert_eq!(set.watches.len(), 1);
        assert_eq!(set.watches[0].pattern, Pattern::Exact("/etc/shadow".into()));
        let c = compile(&set).unwrap();
        assert_eq!(
            c.paths[b"/etc/shadow\0".as_slice()].kinds,
            WatchKind::Open.bit()
        );
    }

    /// A rule on writes anywhere watches `/` for writes only; a read rule on one file keeps
    /// every access there (the kernel folds the two, the wider access winning).
    #[test]
    fn open_watches_carry_the_accesses_their_rules_need() {
        let p = plan(
            "- rule: w\n  id: R-W\n  severity: high\n  condition: kind = file_open and file.access in (write, truncate) and file.path startswith / and not file.path in (/srv/ok)\n\
             - rule: r\n  id: R-R\n  severity: high\n  condition: kind = file_open and file.path = /etc/shadow\n",
        );
        let (set, _) = from_plan(&p);
        assert!(set.pass_all.is_empty(), "{:?}", set.pass_all);
        let root = set
            .watches
            .iter()
            .find(|w| w.pattern == Pattern::Prefix("/".into()))
            .unwrap();
        assert_eq!(
            root.open_access,
            Access(Access::WRITE.0 | Access::TRUNCATE.0)
        );
        let c = compile(&set).unwrap();
        assert_eq!(c.paths[b"/etc/shadow\0".as_slice()].access, Access::ANY.0);
        assert_eq!(
            c.paths[b"/".as_slice()].access,
            Access::WRITE.0 | Access::TRUNCATE.0
        );
    }

    #[test]
    fn rules_the_path_filter_cannot_express_pass_everything() {
        let p = plan(
            "- rule: r\n  id: R-2\n  severity: high\n  condition: kind = file_unlink and process.name = shred\n",
        );
        let (set, _) = from_plan(&p);
        assert!(set.pass_all.contains(&WatchKind::Unlink));
    }

    #[test]
    fn a_set_id_chmod_rule_filters_by_the_new_mode_not_by_passing_every_chmod() {
        // The default pack's shape: set-id bits, with an exception by ancestor.
        let p = plan(
            "- rule: r\n  id: R-4\n  severity: high\n  condition: kind = file_chmod and (file.mode.setuid or file.mode.setgid)\n  exceptions:\n    - ancestors.name = dpkg\n",
        );
        let (set, _) = from_plan(&p);
        assert!(set.pass_all.is_empty(), "{:?}", set.pass_all);
        assert!(set.setid_chmod_anywhere);
        assert!(set.watches.is_empty());
        // `not file.mode.setuid` says nothing the filter can use: every chmod is sent.
        let p = plan(
            "- rule: r\n  id: R-5\n  severity: high\n  condition: kind = file_chmod and not file.mode.setuid\n",
        );
        let (set, _) = from_plan(&p);
        assert!(set.pass_all.contains(&WatchKind::Chmod));
    }

    #[test]
    fn the_policy_adds_to_the_configured_set_and_an_empty_policy_needs_no_sensor() {
        let p = plan("- rule: r\n  id: R-3\n  severity: high\n  condition: kind = file_open and file.path = /srv/secret\n");
        let configured = WatchSet {
            watches: vec![Watch::all_kinds(Pattern::Prefix("/etc/".into()))],
            ..WatchSet::default()
        };
        let set = merged(&configured, &p, &|_| BTreeSet::new());
        assert_eq!(set.watches.len(), 2);
        assert!(set
            .watches
            .iter()
            .any(|w| w.pattern == Pattern::Exact("/srv/secret".into())));
        let no_files = plan("- rule: r\n  id: R-4\n  severity: high\n  condition: kind = process_exec and process.name = nc\n");
        assert!(!needed(&WatchSet::default(), &no_files));
        assert!(needed(&configured, &no_files));
        assert!(needed(&WatchSet::default(), &p));
    }

    #[test]
    fn the_default_pack_needs_the_family_and_compiles_to_a_watch_set() {
        let policy = Policy::default_pack().unwrap();
        let (set, kinds) = from_plan(policy.kernel_plan());
        assert!(kinds.contains(&FileEventKind::ModuleLoad));
        compile(&set).unwrap();
    }
}
