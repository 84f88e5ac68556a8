//! Filling the kernel's exec-rule maps, atomically.
//!
//! The policy's deny and kill rules on `process_exec` that the kernel can decide become
//! [`ExecRule`]s; [`set_exec_rules`] writes them into the generation the kernel is not using —
//! rule slots, the LPM trie of paths and the hash map of base names — and only then flips the
//! active generation ([`generation::replace`]), so a reload never leaves a moment with half a
//! policy or none. Layout and
//! matching semantics: `bpf/abi/enforce.h`, `bpf/lib/exec_rules.h` (must match this file).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::abi::{
    shrike_action, shrike_enforce_limits, shrike_enforce_state, shrike_exec_rule, shrike_name_key,
    shrike_path_key, shrike_rule_flags, shrike_rule_refs, shrike_rule_value_key,
    shrike_rule_value_kind,
};
use crate::generation::{self, Generations};
use crate::loader::{LoadError, Sensors};

/// What an enforcing rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleAction {
    /// The exec fails with EPERM where BPF LSM is active; elsewhere the new image is killed.
    #[default]
    Deny,
    /// The process is killed.
    Kill,
}

/// Binaries by full path or by base name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinarySet {
    pub paths: Vec<String>,
    pub names: Vec<String>,
}

impl BinarySet {
    fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.names.is_empty()
    }

    fn hashes(&self) -> Vec<u64> {
        self.paths
            .iter()
            .map(|p| fnv1a(p.as_bytes()))
            .chain(self.names.iter().map(|n| fnv1a(n.as_bytes())))
            .collect()
    }
}

/// One deny/kill rule on exec that the kernel decides alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRule {
    /// The policy's rule index (what records carry).
    pub rule_index: u16,
    pub action: RuleAction,
    /// The executed file — or, for a `#!` script, the script — by exact path, prefix or base
    /// name. At least one is required.
    pub paths: Vec<String>,
    pub prefixes: Vec<String>,
    pub names: Vec<String>,
    /// Exact paths the rule does not apply to although a prefix of it covers them (an
    /// allow-list: `startswith / and not … in (…)`). Held in the trie: each gets an exact entry
    /// whose rules are its covering prefixes' without this one, so the longest match leaves
    /// the rule out.
    pub exclude_paths: Vec<String>,
    pub uid: Vec<u32>,
    pub euid: Vec<u32>,
    pub cgroup: Vec<u64>,
    /// The parent image's binary must (not) be one of these.
    pub parent_include: BinarySet,
    pub parent_exclude: BinarySet,
    /// Some ancestor's binary must be one of these / none may be.
    pub ancestor_include: BinarySet,
    pub ancestor_exclude: BinarySet,
}

/// Why a rule cannot be loaded into the kernel as it is (user space still reports it).
pub fn unsupported(rule: &ExecRule) -> Option<String> {
    let path_max = shrike_enforce_limits::SHRIKE_RULE_PATH_MAX.0 as usize;
    if rule.paths.is_empty() && rule.prefixes.is_empty() && rule.names.is_empty() {
        return Some("the kernel indexes exec rules by the executable's path or name, and this rule names neither".into());
    }
    if let Some(p) = rule
        .paths
        .iter()
        .chain(&rule.prefixes)
        .chain(&rule.exclude_paths)
        .find(|p| p.len() >= path_max)
    {
        return Some(format!(
            "path {p:?} is longer than the kernel's rule limit of {} bytes",
            path_max - 1
        ));
    }
    None
}

/// What [`set_exec_rules`] loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRulesLoaded {
    /// Rule indexes now enforced in the kernel.
    pub loaded: Vec<u16>,
    /// Rules left to user space, with the reason.
    pub skipped: Vec<(u16, String)>,
    /// `--strict`: rules (with a path prefix) the kernel applies to an exec whose path was cut.
    pub cut_paths: Vec<u16>,
    /// `--strict`: rules with a path prefix beyond what the kernel applies to cut paths.
    pub cut_skipped: Vec<u16>,
}

/// FNV-1a 64, as `bpf/lib/exec_rules.h` and `bpf/lib/watch.h` compute it.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Base-name hash of a path, as the kernel computes it (FNV-1a of the last component).
pub fn name_hash(path: &str) -> u64 {
    fnv1a(path.rsplit('/').next().unwrap_or(path).as_bytes())
}

/// Replaces the kernel's exec rules with `rules`, atomically (see the module documentation).
pub fn set_exec_rules(sensors: &Sensors, rules: &[ExecRule]) -> Result<ExecRulesLoaded, LoadError> {
    set_exec_rules_strict(sensors, rules, false)
}

/// Like [`set_exec_rules`]; with `strict`, the rules with a path prefix also apply to an exec
/// whose path was cut at the root end (its prefix unknown, so any of them could match it): at
/// most `SHRIKE_RULES_PER_KEY` of them, the others are listed in `cut_skipped`.
pub fn set_exec_rules_strict(
    sensors: &Sensors,
    rules: &[ExecRule],
    strict: bool,
) -> Result<ExecRulesLoaded, LoadError> {
    let slots_max = shrike_enforce_limits::SHRIKE_EXEC_RULE_SLOTS.0 as usize;
    let per_key = shrike_enforce_limits::SHRIKE_RULES_PER_KEY.0 as usize;

    let mut report = ExecRulesLoaded::default();
    let mut accepted: Vec<&ExecRule> = Vec::new();
    for rule in rules {
        match unsupported(rule) {
            Some(reason) => report.skipped.push((rule.rule_index, reason)),
            None if accepted.len() == slots_max => report
                .skipped
                .push((rule.rule_index, format!("more than {slots_max} exec rules"))),
            None => accepted.push(rule),
        }
    }

    // Keys of both kinds → the slots of the rules they name.
    let mut exact: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    let mut prefixes: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    let mut names: BTreeMap<u64, Vec<u16>> = BTreeMap::new();
    // Exact paths → the slots of the rules that exclude them.
    let mut excluded: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for (slot, rule) in accepted.iter().enumerate() {
        let slot = slot as u16;
        for p in &rule.paths {
            exact.entry(p.as_str()).or_default().push(slot);
        }
        for p in &rule.exclude_paths {
            excluded.entry(p.as_str()).or_default().push(slot);
            exact.entry(p.as_str()).or_default();
        }
        for p in &rule.prefixes {
            prefixes.entry(p.as_str()).or_default().push(slot);
        }
        for n in &rule.names {
            names.entry(fnv1a(n.as_bytes())).or_default().push(slot);
        }
    }
    // The trie answers with the longest match only, so every key also carries the slots of the
    // prefixes that contain it — except the rules that exclude that exact path.
    let covering = |key: &str, own: &[u16], is_exact: bool| -> Vec<u16> {
        let mut all: BTreeSet<u16> = own.iter().copied().collect();
        for (p, slots) in &prefixes {
            if key.starts_with(p) && key.len() > p.len() {
                all.extend(slots);
            }
        }
        if is_exact {
            for slot in excluded.get(key).into_iter().flatten() {
                all.remove(slot);
            }
        }
        all.into_iter().collect()
    };
    let mut paths: Vec<(&str, bool, Vec<u16>)> = Vec::new();
    for (path, slots) in &exact {
        paths.push((path, true, covering(path, slots, true)));
    }
    for (path, slots) in &prefixes {
        paths.push((path, false, covering(path, slots, false)));
    }

    // --strict: the slots of the rules with a prefix, for paths cut at the root end.
    let with_prefix: Vec<(u16, u16)> = accepted
        .iter()
        .enumerate()
        .filter(|(_, r)| strict && !r.prefixes.is_empty())
        .map(|(slot, r)| (slot as u16, r.rule_index))
        .collect();
    let cut_slots: Vec<u16> = with_prefix.iter().take(per_key).map(|(s, _)| *s).collect();
    report.cut_paths = with_prefix.iter().take(per_key).map(|(_, i)| *i).collect();
    report.cut_skipped = with_prefix.iter().skip(per_key).map(|(_, i)| *i).collect();

    generation::replace(&mut ExecSwap {
        sensors,
        accepted: &accepted,
        paths: &paths,
        names: &names,
        cut_refs: refs(&cut_slots, per_key),
    })?;
    report.loaded = accepted.iter().map(|r| r.rule_index).collect();
    Ok(report)
}

/// One replace of the exec rules: the rules going in, their trie and name keys (the slots each
/// names), and the `--strict` cut-path slots.
struct ExecSwap<'a> {
    sensors: &'a Sensors,
    accepted: &'a [&'a ExecRule],
    paths: &'a [(&'a str, bool, Vec<u16>)],
    names: &'a BTreeMap<u64, Vec<u16>>,
    cut_refs: shrike_rule_refs,
}

fn map_err(map: &'static str) -> impl Fn(libbpf_rs::Error) -> LoadError {
    move |source| LoadError::Map { map, source }
}

impl Generations for ExecSwap<'_> {
    type Error = LoadError;

    fn active(&mut self) -> Result<u8, LoadError> {
        Ok((read_state(self.sensors)?.active_gen & 1) as u8)
    }

    fn clear(&mut self, gen: u8) -> Result<(), LoadError> {
        clear_generation(self.sensors, gen)
    }

    fn fill(&mut self, gen: u8) -> Result<(), LoadError> {
        let maps = self.sensors.process_maps();
        let slots_max = shrike_enforce_limits::SHRIKE_EXEC_RULE_SLOTS.0 as usize;
        let per_key = shrike_enforce_limits::SHRIKE_RULES_PER_KEY.0 as usize;
        for (slot, rule) in self.accepted.iter().enumerate() {
            let value = slot_value(rule);
            let index = (usize::from(gen) * slots_max + slot) as u32;
            // SAFETY: shrike_exec_rule is Plain; the byte view lives for this call only.
            let bytes = unsafe { plain::as_bytes(&value) };
            maps.exec_rule_slots
                .update(&index.to_ne_bytes(), bytes, MapFlags::ANY)
                .map_err(map_err("exec_rule_slots"))?;
            for key in value_keys(index, rule) {
                // SAFETY: as above.
                let k = unsafe { plain::as_bytes(&key) };
                maps.exec_rule_values
                    .update(k, &[1u8], MapFlags::ANY)
                    .map_err(map_err("exec_rule_values"))?;
            }
        }
        for (path, is_exact, slots) in self.paths {
            let key = path_key(gen, path, *is_exact);
            let refs = refs(slots, per_key);
            // SAFETY: both are Plain; the byte views live for this call only.
            let (k, v) = unsafe { (plain::as_bytes(&key), plain::as_bytes(&refs)) };
            maps.exec_rule_paths
                .update(k, v, MapFlags::ANY)
                .map_err(map_err("exec_rule_paths"))?;
        }
        for (hash, slots) in self.names {
            let key = shrike_name_key {
                gen,
                name_hash: *hash,
                ..Default::default()
            };
            let refs = refs(slots, per_key);
            // SAFETY: both are Plain; the byte views live for this call only.
            let (k, v) = unsafe { (plain::as_bytes(&key), plain::as_bytes(&refs)) };
            maps.exec_rule_names
                .update(k, v, MapFlags::ANY)
                .map_err(map_err("exec_rule_names"))?;
        }
        Ok(())
    }

    fn flip(&mut self, gen: u8) -> Result<(), LoadError> {
        let flipped = shrike_enforce_state {
            active_gen: u32::from(gen),
            exec_rules: self.accepted.len() as u32,
            cut_refs: self.cut_refs,
        };
        // SAFETY: Plain; the byte view lives for this call only.
        let bytes = unsafe { plain::as_bytes(&flipped) };
        self.sensors
            .process_maps()
            .enforce_state
            .update(&0u32.to_ne_bytes(), bytes, MapFlags::ANY)
            .map_err(map_err("enforce_state"))
    }
}

/// The exec-rule state word: which generation is in force, how many rules it has.
fn read_state(sensors: &Sensors) -> Result<shrike_enforce_state, LoadError> {
    let mut state = shrike_enforce_state::default();
    if let Some(bytes) = sensors
        .process_maps()
        .enforce_state
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(map_err("enforce_state"))?
    {
        plain::copy_from_bytes(&mut state, &bytes).ok();
    }
    Ok(state)
}

/// Handles on the exec-rule maps with which another thread changes, in place, the cgroup set of
/// rules already loaded ([`ExecScopeMaps::set_cgroup`]): how the agent keeps a workload-scoped
/// rule current as containers come and go without reloading the policy. The caller serialises
/// it with [`set_exec_rules`] (a change made while another generation is being filled would be
/// lost at the flip). Also the placed cgroups (`scope_settled`, generation-free): while holding
/// is on ([`ExecScopeMaps::set_holding`]), an exec a scoped rule would apply to but for a cgroup
/// not [`settle`](ExecScopeMaps::settle)d is stopped until user space decides it.
pub struct ExecScopeMaps {
    state: MapHandle,
    slots: MapHandle,
    values: MapHandle,
    settled: MapHandle,
}

impl ExecScopeMaps {
    pub fn new(sensors: &Sensors) -> Result<Self, LoadError> {
        let maps = sensors.process_maps();
        let handle = |map: &'static str, m| {
            MapHandle::try_from(m).map_err(|source| LoadError::Map { map, source })
        };
        Ok(ExecScopeMaps {
            state: handle("enforce_state", &maps.enforce_state)?,
            slots: handle("exec_rule_slots", &maps.exec_rule_slots)?,
            values: handle("exec_rule_values", &maps.exec_rule_values)?,
            settled: handle("scope_settled", &maps.scope_settled)?,
        })
    }

    /// Turns holding on for `lease` from now (renewed by calling again), or off (`None`):
    /// while on, an exec a workload-scoped rule would stop but for a cgroup not
    /// [`settle`](Self::settle)d yet is stopped until user space decides it. The kernel stops
    /// holding by itself when the lease runs out, so an agent that dies (its programs pinned
    /// and still running) cannot leave new execs stopped with nobody to resume them.
    pub fn set_holding(&self, lease: Option<Duration>) -> Result<(), LoadError> {
        match lease {
            Some(lease) => {
                let until = monotonic_now().saturating_add(lease).as_nanos() as u64;
                self.write_settled(HOLDING_KEY, until)
            }
            None => self.set_settled(HOLDING_KEY, false),
        }
    }

    /// Records that user space has placed cgroup `cgroup` (`placed`), or forgets it.
    pub fn settle(&self, cgroup: u64, placed: bool) -> Result<(), LoadError> {
        if cgroup == HOLDING_KEY {
            return Ok(());
        }
        self.set_settled(cgroup, placed)
    }

    fn set_settled(&self, key: u64, present: bool) -> Result<(), LoadError> {
        if present {
            self.write_settled(key, 1)
        } else {
            delete_if_present(&self.settled, &key.to_ne_bytes()).map_err(settled_error)
        }
    }

    fn write_settled(&self, key: u64, value: u64) -> Result<(), LoadError> {
        self.settled
            .update(&key.to_ne_bytes(), &value.to_ne_bytes(), MapFlags::ANY)
            .map_err(settled_error)
    }

    /// Adds (`present`) or removes cgroup `cgroup` in the cgroup set of every slot of rule
    /// `rule_index` in the active generation that has a cgroup constraint; returns how many
    /// slots changed.
    pub fn set_cgroup(
        &self,
        rule_index: u16,
        cgroup: u64,
        present: bool,
    ) -> Result<usize, LoadError> {
        let map_err = |map: &'static str| move |source| LoadError::Map { map, source };
        let zero = 0u32.to_ne_bytes();
        let mut state = shrike_enforce_state::default();
        if let Some(bytes) = self
            .state
            .lookup(&zero, MapFlags::ANY)
            .map_err(map_err("enforce_state"))?
        {
            plain::copy_from_bytes(&mut state, &bytes).ok();
        }
        let slots_max = shrike_enforce_limits::SHRIKE_EXEC_RULE_SLOTS.0;
        let mut changed = 0;
        for slot in 0..state.exec_rules.min(slots_max) {
            let index = (state.active_gen & 1) * slots_max + slot;
            let Some(bytes) = self
                .slots
                .lookup(&index.to_ne_bytes(), MapFlags::ANY)
                .map_err(map_err("exec_rule_slots"))?
            else {
                continue;
            };
            let mut rule = shrike_exec_rule::default();
            plain::copy_from_bytes(&mut rule, &bytes).ok();
            if rule.rule_index != rule_index
                || rule.flags & shrike_rule_flags::SHRIKE_RULE_CGROUP.0 == 0
            {
                continue;
            }
            let key = shrike_rule_value_key {
                slot: index,
                kind: shrike_rule_value_kind::SHRIKE_VALUE_CGROUP.0,
                value: cgroup,
            };
            // SAFETY: shrike_rule_value_key is Plain; the byte view lives for this call only.
            let k = unsafe { plain::as_bytes(&key) };
            if present {
                self.values
                    .update(k, &[1u8], MapFlags::ANY)
                    .map_err(map_err("exec_rule_values"))?;
            } else {
                delete_if_present(&self.values, k).map_err(map_err("exec_rule_values"))?;
            }
            changed += 1;
        }
        Ok(changed)
    }
}

/// Deletes `key` from `map`; a key that is not there is no error.
fn delete_if_present(map: &MapHandle, key: &[u8]) -> Result<(), libbpf_rs::Error> {
    match map.delete(key) {
        Err(source) if source.kind() != libbpf_rs::ErrorKind::NotFound => Err(source),
        _ => Ok(()),
    }
}

fn settled_error(source: libbpf_rs::Error) -> LoadError {
    LoadError::Map {
        map: "scope_settled",
        source,
    }
}

/// The key of `scope_settled` whose value is the holding lease (no cgroup has id 0).
const HOLDING_KEY: u64 = 0;

/// CLOCK_MONOTONIC now: the clock of the kernel's `bpf_ktime_get_ns`.
fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a pointer to a live local; the clock
    // id is a constant every Linux has.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn refs(slots: &[u16], per_key: usize) -> shrike_rule_refs {
    let mut refs = shrike_rule_refs::default();
    for (i, s) in slots.iter().take(per_key).enumerate() {
        refs.slot[i] = *s;
    }
    refs.count = slots.len().min(per_key) as u32;
    refs
}

/// The trie key of a path: exact paths include their terminating NUL in the prefix, so they
/// are strictly longer than any prefix entry of the same bytes.
fn path_key(gen: u8, path: &str, exact: bool) -> shrike_path_key {
    let mut key = shrike_path_key {
        gen,
        ..Default::default()
    };
    let bytes = path.as_bytes();
    key.path[..bytes.len()].copy_from_slice(bytes);
    let matched = 1 + bytes.len() + usize::from(exact);
    key.prefixlen = (8 * matched) as u32;
    key
}

fn slot_value(rule: &ExecRule) -> shrike_exec_rule {
    let mut flags = 0u32;
    let mut flag = |on: bool, f: shrike_rule_flags| {
        if on {
            flags |= f.0;
        }
    };
    flag(!rule.uid.is_empty(), shrike_rule_flags::SHRIKE_RULE_UID);
    flag(!rule.euid.is_empty(), shrike_rule_flags::SHRIKE_RULE_EUID);
    flag(
        !rule.cgroup.is_empty(),
        shrike_rule_flags::SHRIKE_RULE_CGROUP,
    );
    flag(
        !rule.parent_include.is_empty(),
        shrike_rule_flags::SHRIKE_RULE_PARENT_INCL,
    );
    flag(
        !rule.parent_exclude.is_empty(),
        shrike_rule_flags::SHRIKE_RULE_PARENT_EXCL,
    );
    flag(
        !rule.ancestor_include.is_empty(),
        shrike_rule_flags::SHRIKE_RULE_ANCESTOR_INCL,
    );
    flag(
        !rule.ancestor_exclude.is_empty(),
        shrike_rule_flags::SHRIKE_RULE_ANCESTOR_EXCL,
    );
    shrike_exec_rule {
        rule_index: rule.rule_index,
        action: match rule.action {
            RuleAction::Kill => shrike_action::SHRIKE_ACTION_KILL.0 as u8,
            RuleAction::Deny => shrike_action::SHRIKE_ACTION_DENY.0 as u8,
        },
        flags,
        ..Default::default()
    }
}

/// The keys of `exec_rule_values` for one rule in slot `slot` (generation included).
fn value_keys(slot: u32, rule: &ExecRule) -> Vec<shrike_rule_value_key> {
    let key = |kind: shrike_rule_value_kind, value: u64| shrike_rule_value_key {
        slot,
        kind: kind.0,
        value,
    };
    let mut keys = Vec::new();
    keys.extend(
        rule.uid
            .iter()
            .map(|&v| key(shrike_rule_value_kind::SHRIKE_VALUE_UID, u64::from(v))),
    );
    keys.extend(
        rule.euid
            .iter()
            .map(|&v| key(shrike_rule_value_kind::SHRIKE_VALUE_EUID, u64::from(v))),
    );
    keys.extend(
        rule.cgroup
            .iter()
            .map(|&v| key(shrike_rule_value_kind::SHRIKE_VALUE_CGROUP, v)),
    );
    for (set, kind) in [
        (
            &rule.parent_include,
            shrike_rule_value_kind::SHRIKE_VALUE_PARENT_INCL,
        ),
        (
            &rule.parent_exclude,
            shrike_rule_value_kind::SHRIKE_VALUE_PARENT_EXCL,
        ),
        (
            &rule.ancestor_include,
            shrike_rule_value_kind::SHRIKE_VALUE_ANCESTOR_INCL,
        ),
        (
            &rule.ancestor_exclude,
            shrike_rule_value_kind::SHRIKE_VALUE_ANCESTOR_EXCL,
        ),
    ] {
        keys.extend(set.hashes().into_iter().map(|h| key(kind, h)));
    }
    keys
}

/// Deletes every path, name and value key of one generation.
fn clear_generation(sensors: &Sensors, gen: u8) -> Result<(), LoadError> {
    let maps = sensors.process_maps();
    let slots = shrike_enforce_limits::SHRIKE_EXEC_RULE_SLOTS.0;
    let in_gen = |slot: u32| slot / slots == u32::from(gen);
    let stale: Vec<Vec<u8>> = maps
        .exec_rule_values
        .keys()
        .filter(|k| {
            k.get(..4)
                .is_some_and(|b| in_gen(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])))
        })
        .collect();
    for key in stale {
        maps.exec_rule_values
            .delete(&key)
            .map_err(|source| LoadError::Map {
                map: "exec_rule_values",
                source,
            })?;
    }
    let stale: Vec<Vec<u8>> = maps
        .exec_rule_paths
        .keys()
        .filter(|k| k.get(4) == Some(&gen))
        .collect();
    for key in stale {
        maps.exec_rule_paths
            .delete(&key)
            .map_err(|source| LoadError::Map {
                map: "exec_rule_paths",
                source,
            })?;
    }
    let stale: Vec<Vec<u8>> = maps
        .exec_rule_names
        .keys()
        .filter(|k| k.first() == Some(&gen))
        .collect();
    for key in stale {
        maps.exec_rule_names
            .delete(&key)
            .map_err(|source| LoadError::Map {
                map: "exec_rule_names",
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(name_hash("/usr/sbin/nginx"), fnv1a(b"nginx"));
    }

    #[test]
    fn exact_keys_are_longer_than_prefix_keys_of_the_same_bytes() {
        let exact = path_key(1, "/tmp/x", true);
        let prefix = path_key(1, "/tmp/x", false);
        assert_eq!(exact.prefixlen, 8 * (1 + 6 + 1));
        assert_eq!(prefix.prefixlen, 8 * (1 + 6));
        assert_eq!(exact.gen, 1);
        assert_eq!(&exact.path[..6], b"/tmp/x");
        assert_eq!(exact.path[6], 0);
    }

    #[test]
    fn rules_the_kernel_cannot_hold_are_named_with_a_reason() {
        let ok = ExecRule {
            rule_index: 1,
            action: RuleAction::Kill,
            paths: vec!["/tmp/x".into()],
            ..Default::default()
        };
        assert_eq!(unsupported(&ok), None);
        let no_path = ExecRule {
            paths: vec![],
            uid: vec![0],
            ..ok.clone()
        };
        assert!(unsupported(&no_path).unwrap().contains("path or name"));
        let long = ExecRule {
            paths: vec!["/".repeat(300)],
            ..ok.clone()
        };
        assert!(unsupported(&long).unwrap().contains("longer"));
        let many = ExecRule {
            uid: (0..100).collect(),
            ..ok
        };
        assert_eq!(
            unsupported(&many),
            None,
            "any number of values: each is a hash-map key"
        );
    }

    #[test]
    fn slots_carry_every_constraint() {
        let rule = ExecRule {
            rule_index: 7,
            action: RuleAction::Deny,
            names: vec!["sh".into()],
            uid: vec![33],
            ancestor_include: BinarySet {
                paths: vec![],
                names: vec!["nginx".into()],
            },
            ..Default::default()
        };
        let v = slot_value(&rule);
        assert_eq!(v.rule_index, 7);
        assert_eq!(v.action, shrike_action::SHRIKE_ACTION_DENY.0 as u8);
        assert_eq!(
            v.flags,
            shrike_rule_flags::SHRIKE_RULE_UID.0 | shrike_rule_flags::SHRIKE_RULE_ANCESTOR_INCL.0
        );
        let keys: Vec<(u32, u32, u64)> = value_keys(130, &rule)
            .iter()
            .map(|k| (k.slot, k.kind, k.value))
            .collect();
        assert_eq!(
            keys,
            [
                (130, shrike_rule_value_kind::SHRIKE_VALUE_UID.0, 33),
                (
                    130,
                    shrike_rule_value_kind::SHRIKE_VALUE_ANCESTOR_INCL.0,
                    fnv1a(b"nginx")
                ),
            ]
        );
    }
}
