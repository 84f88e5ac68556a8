//! Writing a compiled watch set into the kernel ([`FileWatch`]): two generations of every map,
//! the inactive one filled completely (its stale entries from two replaces ago removed first),
//! then one 32-bit word flipped, so the kernel filters with the old set or the new one, never
//! half of one and never with nothing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::abi::file::{
    shrike_file_rule, shrike_file_rule_key, shrike_file_rule_value_key, shrike_rule_list,
    shrike_watch_key, shrike_watch_name_key, shrike_watch_state,
};
use crate::generation::{self, Generations};
use crate::loader::LoadError;
use crate::skel::file::FileSkel;

use super::compile::{compile, Compiled};
use super::rules::{ENF_KINDS, NO_RULE, PATH_KINDS};
use super::{RuleValue, WatchSet};

/// What a replace wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchStats {
    /// The generation now in force (0 or 1).
    pub generation: u32,
    pub paths: usize,
    pub names: usize,
    /// Deny/kill rules now in the kernel.
    pub rules: usize,
    /// Rules (or parts of rules) the kernel does not hold, and why.
    pub not_enforced: Vec<(u16, String)>,
}

/// The watch-set maps: a cheap, cloneable handle the agent (and the policy engine) keeps to
/// replace the watch set while the sensor runs.
#[derive(Clone)]
pub struct FileWatch {
    inner: Arc<WatchMaps>,
}

struct WatchMaps {
    paths: MapHandle,
    names: MapHandle,
    state: MapHandle,
    active: MapHandle,
    rules: MapHandle,
    rule_values: MapHandle,
    rule_lists: MapHandle,
    rule_chains: MapHandle,
    dirs: MapHandle,
    /// The last generation's `serial` (the directory cache's entries name it).
    serial: AtomicU32,
    /// Serialises replaces: one writer at a time.
    lock: Mutex<()>,
}

/// A handle on one of the object's maps that outlives the skeleton's borrow.
fn handle(map: &libbpf_rs::Map<'_>, name: &'static str) -> Result<MapHandle, LoadError> {
    MapHandle::try_from(map).map_err(map_err(name))
}

pub(super) fn map_err(map: &'static str) -> impl Fn(libbpf_rs::Error) -> LoadError {
    move |source| LoadError::Map { map, source }
}

/// Deletes the keys of a hash or trie whose byte at `at` is `gen`.
fn delete_generation(
    map: &MapHandle,
    name: &'static str,
    at: usize,
    gen: u8,
) -> Result<(), LoadError> {
    let stale: Vec<Vec<u8>> = map.keys().filter(|k| k.get(at) == Some(&gen)).collect();
    for key in stale {
        map.delete(&key).map_err(map_err(name))?;
    }
    Ok(())
}

fn bytes_of<T: plain::Plain>(v: &T) -> &[u8] {
    // SAFETY: T is Plain (repr(C), integers only); the byte view lives no longer than `v`.
    unsafe { plain::as_bytes(v) }
}

impl FileWatch {
    /// The handle on a loaded file object's watch and rule maps.
    pub(super) fn open(skel: &FileSkel<'_>) -> Result<FileWatch, LoadError> {
        let m = &skel.maps;
        Ok(FileWatch {
            inner: Arc::new(WatchMaps {
                paths: handle(&m.watch_paths, "watch_paths")?,
                names: handle(&m.watch_names, "watch_names")?,
                state: handle(&m.watch_state, "watch_state")?,
                active: handle(&m.watch_active, "watch_active")?,
                rules: handle(&m.file_rules, "file_rules")?,
                rule_values: handle(&m.file_rule_values, "file_rule_values")?,
                rule_lists: handle(&m.file_rule_lists, "file_rule_lists")?,
                rule_chains: handle(&m.file_rule_chains, "file_rule_chains")?,
                dirs: handle(&m.watch_dirs, "watch_dirs")?,
                serial: AtomicU32::new(0),
                lock: Mutex::new(()),
            }),
        })
    }

    /// Replaces the watch set atomically ([`generation::replace`]): the new generation is
    /// written completely (its stale entries from two replaces ago removed first), then one
    /// word switches the kernel to it. On an error the old set stays in force.
    pub fn replace(&self, set: &WatchSet) -> Result<WatchStats, LoadError> {
        let compiled = compile(set).map_err(LoadError::Option)?;
        let _one_writer = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        let generation = generation::replace(&mut Swap {
            watch: self,
            compiled: &compiled,
        })?;
        Ok(WatchStats {
            generation: u32::from(generation),
            paths: compiled.paths.len(),
            names: compiled.names.len(),
            rules: compiled.rules.len(),
            not_enforced: compiled.not_enforced,
        })
    }

    /// Adds cgroup `cgroup` to (or removes it from) the cgroup set of rule `rule` in the
    /// generation in force, for every kind the rule has a cgroup set in: how a workload-scoped
    /// rule follows the containers its scope covers. Returns how many kinds changed.
    pub fn set_cgroup(&self, rule: u16, cgroup: u64, present: bool) -> Result<usize, LoadError> {
        let m = &self.inner;
        let _one_writer = m.lock.lock().unwrap_or_else(|e| e.into_inner());
        let gen = self.active_generation()?;
        let flag = RuleValue::CgroupIn.flag();
        let mut changed = 0;
        for kind in 0..ENF_KINDS as u8 {
            let key = shrike_file_rule_key { gen, kind, rule };
            let Some(bytes) = m
                .rules
                .lookup(bytes_of(&key), MapFlags::ANY)
                .map_err(map_err("file_rules"))?
            else {
                continue;
            };
            let mut r = shrike_file_rule::default();
            plain::copy_from_bytes(&mut r, &bytes).ok();
            if r.flags & flag == 0 {
                continue;
            }
            let value = shrike_file_rule_value_key {
                gen,
                kind,
                rule,
                vkind: flag,
                value: cgroup,
            };
            let result = if present {
                m.rule_values
                    .update(bytes_of(&value), &[1u8], MapFlags::ANY)
            } else {
                m.rule_values.delete(bytes_of(&value))
            };
            match result {
                Ok(()) => changed += 1,
                // Removing what is not there changes nothing.
                Err(_) if !present => {}
                Err(e) => return Err(map_err("file_rule_values")(e)),
            }
        }
        Ok(changed)
    }

    /// The generation the kernel filters with now (0 or 1).
    fn active_generation(&self) -> Result<u8, LoadError> {
        let word = self
            .inner
            .active
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("watch_active"))?
            .and_then(|v| {
                v.get(..4)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            })
            .unwrap_or(0);
        Ok((word & 1) as u8)
    }

    fn write_generation(&self, gen: u8, c: &Compiled) -> Result<(), LoadError> {
        let m = &self.inner;
        let none = [NO_RULE; PATH_KINDS];
        for (path, value) in &c.paths {
            let mut key = shrike_watch_key {
                prefixlen: 8 * (1 + path.len() as u32),
                gen,
                ..Default::default()
            };
            key.path[..path.len()].copy_from_slice(path);
            let rule = c.path_rules.get(path).copied().unwrap_or(none);
            m.paths
                .update(
                    bytes_of(&key),
                    bytes_of(&value.to_kernel(rule)),
                    MapFlags::ANY,
                )
                .map_err(map_err("watch_paths"))?;
        }
        for dir in c.dirs.iter().flatten() {
            // "<dir>/" and its NUL: an exact key, as exact paths are in watch_paths.
            let mut key = shrike_watch_key {
                prefixlen: 8 * (2 + dir.len() as u32),
                gen,
                ..Default::default()
            };
            key.path[..dir.len()].copy_from_slice(dir);
            m.dirs
                .update(bytes_of(&key), &[1u8], MapFlags::ANY)
                .map_err(map_err("watch_dirs"))?;
        }
        for (hash, value) in &c.names {
            let key = shrike_watch_name_key {
                gen,
                name_hash: *hash,
                ..Default::default()
            };
            let rule = c.name_rules.get(hash).copied().unwrap_or(none);
            m.names
                .update(
                    bytes_of(&key),
                    bytes_of(&value.to_kernel(rule)),
                    MapFlags::ANY,
                )
                .map_err(map_err("watch_names"))?;
        }
        for ((kind, index), r) in &c.rules {
            let key = shrike_file_rule_key {
                gen,
                kind: *kind,
                rule: *index,
            };
            let value = shrike_file_rule {
                flags: r.flags,
                access: r.access,
                access_excl: r.access_excluded,
                action: r.action,
                ..Default::default()
            };
            m.rules
                .update(bytes_of(&key), bytes_of(&value), MapFlags::ANY)
                .map_err(map_err("file_rules"))?;
        }
        for (kind, index, vkind, value) in &c.values {
            let key = shrike_file_rule_value_key {
                gen,
                kind: *kind,
                rule: *index,
                vkind: *vkind,
                value: *value,
            };
            m.rule_values
                .update(bytes_of(&key), &[1u8], MapFlags::ANY)
                .map_err(map_err("file_rule_values"))?;
        }
        for (kind, list) in c.lists.iter().enumerate() {
            let idx = u32::from(gen) * ENF_KINDS as u32 + kind as u32;
            m.rule_lists
                .update(
                    &idx.to_ne_bytes(),
                    bytes_of(&rule_list(list)),
                    MapFlags::ANY,
                )
                .map_err(map_err("file_rule_lists"))?;
        }
        for ((kind, index), list) in &c.chains {
            let key = shrike_file_rule_key {
                gen,
                kind: *kind,
                rule: *index,
            };
            m.rule_chains
                .update(bytes_of(&key), bytes_of(&rule_list(list)), MapFlags::ANY)
                .map_err(map_err("file_rule_chains"))?;
        }
        Ok(())
    }
}

/// A kind's rules without a path, or a chain, as the kernel stores it (the compiler keeps
/// both within `SHRIKE_ENF_LIST_MAX`).
fn rule_list(rules: &[u16]) -> shrike_rule_list {
    let mut value = shrike_rule_list::default();
    let n = rules.len().min(value.rule.len());
    value.rule[..n].copy_from_slice(&rules[..n]);
    value.count = n as u32;
    value
}

/// One replace: the watch maps and the set going in.
struct Swap<'a> {
    watch: &'a FileWatch,
    compiled: &'a Compiled,
}

impl Generations for Swap<'_> {
    type Error = LoadError;

    fn active(&mut self) -> Result<u8, LoadError> {
        self.watch.active_generation()
    }

    fn clear(&mut self, gen: u8) -> Result<(), LoadError> {
        let m = &self.watch.inner;
        // Path keys start with prefixlen (u32) then gen; name, rule and value keys with gen.
        delete_generation(&m.paths, "watch_paths", 4, gen)?;
        delete_generation(&m.dirs, "watch_dirs", 4, gen)?;
        delete_generation(&m.names, "watch_names", 0, gen)?;
        delete_generation(&m.rules, "file_rules", 0, gen)?;
        delete_generation(&m.rule_chains, "file_rule_chains", 0, gen)?;
        delete_generation(&m.rule_values, "file_rule_values", 0, gen)
    }

    fn fill(&mut self, gen: u8) -> Result<(), LoadError> {
        let c = self.compiled;
        self.watch.write_generation(gen, c)?;
        let state = shrike_watch_state {
            pass_all: c.pass_all,
            setid_chmod: u32::from(c.setid_chmod),
            names: c.names.len() as u32,
            entries: c.paths.len() as u32,
            enforce: c.enforce,
            serial: self.watch.inner.serial.fetch_add(1, Ordering::Relaxed) + 1,
            dir_cache: u32::from(c.dirs.is_some()),
        };
        self.watch
            .inner
            .state
            .update(
                &u32::from(gen).to_ne_bytes(),
                bytes_of(&state),
                MapFlags::ANY,
            )
            .map_err(map_err("watch_state"))
    }

    fn flip(&mut self, gen: u8) -> Result<(), LoadError> {
        // One aligned 32-bit store the kernel reads once per event.
        self.watch
            .inner
            .active
            .update(
                &0u32.to_ne_bytes(),
                &u32::from(gen).to_ne_bytes(),
                MapFlags::ANY,
            )
            .map_err(map_err("watch_active"))
    }
}
