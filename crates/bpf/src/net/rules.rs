//! The deny rules' handle: every source's rules (configuration, policy) compiled together and
//! written to the inactive generation of the kernel maps, then one word switches generation, so
//! a hook sees the old rule set or the new one, never a mix.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::compile::{compile, Compiled, FsResolver};
use super::tc::{all_interfaces, attach_tc_ingress, TcAttachment};
use super::{NetRule, NetRuleError, NetRuleSource, TcInterfaces};
use crate::abi::net::{
    shrike_net_cfg, shrike_net_direction, shrike_net_lpm_key, shrike_net_match, RULES_MAX,
};
use crate::generation::{self, Generations};
use crate::loader::LoadError;

/// The handle the policy engine (or the configuration) uses to replace the deny rules. Cheap
/// to clone; every clone drives the same maps.
#[derive(Clone)]
pub struct NetRules(pub(super) Arc<Mutex<RulesInner>>);

pub(super) struct RulesInner {
    pub(super) sets: BTreeMap<NetRuleSource, Vec<NetRule>>,
    /// Map fds (owned copies): the handle is Send and borrows nothing.
    pub(super) lpm: OwnedFd,
    pub(super) rules: OwnedFd,
    pub(super) cfg: OwnedFd,
    pub(super) cgroup2: PathBuf,
    /// The tc program, unless the kernel refused it (inbound deny rules are then refused).
    pub(super) tc_prog: Option<OwnedFd>,
    pub(super) tc_interfaces: TcInterfaces,
    pub(super) tc: Vec<TcAttachment>,
}

/// `bpf_map_update_elem` on a map fd.
fn map_update(
    fd: &OwnedFd,
    key: &[u8],
    value: &[u8],
    map: &'static str,
) -> Result<(), NetRuleError> {
    // SAFETY: key and value are valid for reads of the map's key and value sizes (callers pass
    // the contract structs of exactly those types); the fd is an open map.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_update_elem(
            fd.as_raw_fd(),
            key.as_ptr().cast(),
            value.as_ptr().cast(),
            0,
        )
    };
    if rc < 0 {
        return Err(map_err(map)(libbpf_rs::Error::from(
            std::io::Error::from_raw_os_error(-rc),
        )));
    }
    Ok(())
}

/// `bpf_map_lookup_elem` into `value`; a missing key leaves it as it was.
fn map_lookup<T: plain::Plain>(
    fd: &OwnedFd,
    key: &[u8],
    value: &mut T,
    map: &'static str,
) -> Result<(), NetRuleError> {
    // SAFETY: key is valid for reads of the map's key size and value for writes of its value
    // size (callers pass the contract structs of exactly those types); T is Plain, so any bytes
    // the kernel writes are a valid T; the fd is an open map.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_lookup_elem(
            fd.as_raw_fd(),
            key.as_ptr().cast(),
            (value as *mut T).cast(),
        )
    };
    if rc < 0 && -rc != libc::ENOENT {
        return Err(map_err(map)(libbpf_rs::Error::from(
            std::io::Error::from_raw_os_error(-rc),
        )));
    }
    Ok(())
}

/// Every key of a map whose keys are `key_size` bytes (`bpf_map_get_next_key` from the start).
fn map_keys(
    fd: &OwnedFd,
    key_size: usize,
    map: &'static str,
) -> Result<Vec<Vec<u8>>, NetRuleError> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut next = vec![0u8; key_size];
        let prev = keys.last().map_or(std::ptr::null(), |k| k.as_ptr().cast());
        // SAFETY: prev is NULL (the first key) or a key of key_size bytes; next has room for
        // key_size bytes; the fd is an open map whose keys are key_size bytes.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_map_get_next_key(
                fd.as_raw_fd(),
                prev,
                next.as_mut_ptr().cast(),
            )
        };
        if rc < 0 {
            if -rc == libc::ENOENT {
                return Ok(keys);
            }
            return Err(map_err(map)(libbpf_rs::Error::from(
                std::io::Error::from_raw_os_error(-rc),
            )));
        }
        keys.push(next);
    }
}

/// `bpf_map_delete_elem`; a missing key is not an error.
fn map_delete(fd: &OwnedFd, key: &[u8], map: &'static str) -> Result<(), NetRuleError> {
    // SAFETY: key is valid for reads of the map's key size; the fd is an open map.
    let rc =
        unsafe { libbpf_rs::libbpf_sys::bpf_map_delete_elem(fd.as_raw_fd(), key.as_ptr().cast()) };
    if rc < 0 && -rc != libc::ENOENT {
        return Err(map_err(map)(libbpf_rs::Error::from(
            std::io::Error::from_raw_os_error(-rc),
        )));
    }
    Ok(())
}

fn bytes_of<T: plain::Plain>(value: &T) -> &[u8] {
    // SAFETY: T is Plain (repr(C), integers only); the slice lives as long as `value`.
    unsafe { plain::as_bytes(value) }
}

fn map_err(map: &'static str) -> impl Fn(libbpf_rs::Error) -> NetRuleError {
    move |source| NetRuleError::Map(LoadError::Map { map, source })
}

impl NetRules {
    /// Replaces the policy engine's deny rules (see [`NetRules::replace_source`]).
    pub fn replace(&self, rules: &[NetRule]) -> Result<(), NetRuleError> {
        self.replace_source(NetRuleSource::Policy, rules)
    }

    /// Replaces the rules of one source; the kernel then enforces the union of all sources
    /// (configuration rules first, so they win ties). The whole union is written to the
    /// inactive generation and takes effect with one write; on error the rules in force stay
    /// in force. Ingress rules attach the tc program on first use (to the configured
    /// interfaces). Each rule's `index` is what its refusal events carry: the policy engine's
    /// rule index, or (for the configuration) [`CONFIG_INDEX_BASE`] + position.
    pub fn replace_source(
        &self,
        source: NetRuleSource,
        rules: &[NetRule],
    ) -> Result<(), NetRuleError> {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut sets = inner.sets.clone();
        sets.insert(source, rules.to_vec());
        let union: Vec<NetRule> = sets.values().flatten().cloned().collect();
        let compiled = compile(
            &union,
            &FsResolver {
                cgroup2: inner.cgroup2.clone(),
            },
        )?;
        if compiled.directions & shrike_net_direction::SHRIKE_NET_DIR_INGRESS.0 != 0 {
            inner.attach_tc()?;
        }
        inner.load(&compiled)?;
        inner.sets = sets;
        Ok(())
    }

    /// The tc attachments in place, for the log and `doctor`.
    pub fn tc_hooks(&self) -> Vec<String> {
        let inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        inner.tc.iter().map(TcAttachment::describe).collect()
    }
}

impl RulesInner {
    fn load(&mut self, c: &Compiled) -> Result<(), NetRuleError> {
        generation::replace(&mut Swap {
            inner: self,
            compiled: c,
        })?;
        Ok(())
    }

    fn attach_tc(&mut self) -> Result<(), NetRuleError> {
        if !self.tc.is_empty() {
            return Ok(());
        }
        let names = match &self.tc_interfaces {
            TcInterfaces::Named(names) => names.clone(),
            TcInterfaces::All => all_interfaces(),
        };
        let Some(prog) = &self.tc_prog else {
            return Err(NetRuleError::Tc {
                iface: "any".into(),
                why: "this kernel refused the tc ingress program (net_ingress_deny is unavailable: see `shrike doctor`)".into(),
            });
        };
        for iface in names {
            let attachment = attach_tc_ingress(prog, &iface)?;
            self.tc.push(attachment);
        }
        Ok(())
    }
}

/// One replace: the rule maps and the rule set going in.
struct Swap<'a> {
    inner: &'a RulesInner,
    compiled: &'a Compiled,
}

impl Generations for Swap<'_> {
    type Error = NetRuleError;

    fn active(&mut self) -> Result<u8, NetRuleError> {
        let mut cfg = shrike_net_cfg::default();
        map_lookup(&self.inner.cfg, &0u32.to_ne_bytes(), &mut cfg, "net_cfg")?;
        Ok((cfg.gen & 1) as u8)
    }

    fn clear(&mut self, gen: u8) -> Result<(), NetRuleError> {
        // The rules array needs no clearing: only the trie's matches name its slots.
        let at = std::mem::offset_of!(shrike_net_lpm_key, gen);
        let keys = map_keys(
            &self.inner.lpm,
            std::mem::size_of::<shrike_net_lpm_key>(),
            "net_lpm",
        )?;
        for key in keys.iter().filter(|k| k.get(at) == Some(&gen)) {
            map_delete(&self.inner.lpm, key, "net_lpm")?;
        }
        Ok(())
    }

    fn fill(&mut self, gen: u8) -> Result<(), NetRuleError> {
        let c = self.compiled;
        for (slot, rule) in c.rules.iter().enumerate() {
            let key = (slot as u32 + u32::from(gen) * RULES_MAX as u32).to_ne_bytes();
            map_update(&self.inner.rules, &key, bytes_of(rule), "net_rules")?;
        }
        for (prefix, addr, bits) in &c.prefixes {
            let key = shrike_net_lpm_key {
                prefixlen: 8 + prefix,
                gen,
                addr: *addr,
                ..Default::default()
            };
            let value = shrike_net_match { slots: *bits };
            map_update(&self.inner.lpm, bytes_of(&key), bytes_of(&value), "net_lpm")?;
        }
        Ok(())
    }

    fn flip(&mut self, gen: u8) -> Result<(), NetRuleError> {
        // One array element, written whole.
        let cfg = shrike_net_cfg {
            gen: u32::from(gen),
            directions: self.compiled.directions,
        };
        map_update(
            &self.inner.cfg,
            &0u32.to_ne_bytes(),
            bytes_of(&cfg),
            "net_cfg",
        )
    }
}
