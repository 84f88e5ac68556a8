//! The network family: loading and attaching `bpf/net.bpf.c`, and the deny rules it enforces.
//!
//! The socket hooks are cgroup programs attached to the cgroup v2 root, so every process on the
//! machine is covered whatever cgroup it is in; the TCP state changes come from the
//! `inet_sock_set_state` tracepoint (tp_btf); DNS from cgroup_skb on the same root; inbound drops
//! from a tc program (tcx where the kernel has it, else a clsact filter) on the interfaces the
//! configuration names.
//!
//! Rules are compiled here ([`compile`], pure, unit-tested) into an LPM trie of CIDRs, each
//! prefix carrying the set of rule slots whose CIDR contains it, and an array of rules. The
//! kernel holds two generations of both; [`NetRules::replace`] writes the inactive generation
//! completely and then switches one word, so a hook sees the old rule set or the new one, never
//! a mix.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::MapCore;
use libbpf_rs::{Link, OpenObject, TcHook, TcHookBuilder, TC_INGRESS};

use crate::abi::net::{
    shrike_net_cfg, shrike_net_direction, shrike_net_fault, shrike_net_lpm_key, shrike_net_match,
    shrike_net_rule, shrike_net_rule_flags, shrike_net_scope, RULES_MAX,
};
use crate::capability::{
    attach_refused, disable, load_degrading, statuses, Capability, ProgramCap, Refusal, Status,
};
use crate::loader::{Family, LoadError, SharedMaps};
use crate::skel::net::{NetSkel, NetSkelBuilder};

/// Which interfaces get the tc ingress program.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TcInterfaces {
    /// Every interface present when ingress rules are first loaded, loopback included.
    #[default]
    All,
    /// These interfaces, by name.
    Named(Vec<String>),
}

/// How the network sensor is configured at load.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetOptions {
    /// Copy DNS messages (UDP port 53) to user space (cgroup_skb egress + ingress).
    pub dns: bool,
    /// Where the tc ingress program goes, once there are ingress rules.
    pub tc_interfaces: TcInterfaces,
    /// The deny rules of the network configuration, in force from the start.
    pub rules: Vec<NetRule>,
    /// Fail the agent when the sensor cannot load (set when rules were configured: a rule
    /// that is not enforced must not pass silently). Otherwise the agent runs without it.
    pub required: bool,
}

/// Who a set of rules comes from. The kernel enforces the union of every source's rules;
/// each source replaces only its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetRuleSource {
    /// The network configuration (`--net-config`).
    Config,
    /// The policy engine.
    Policy,
}

/// Which action a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetDirection {
    /// connect() and UDP sends: the CIDR and ports are the peer's.
    Egress,
    /// bind(): the CIDR and ports are the local address being bound.
    Bind,
    /// Inbound packets at tc: the CIDR is the source, the ports the local destination.
    Ingress,
}

/// The transport a rule is about; `None` in [`NetRule::protocol`] means both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetProtocol {
    Tcp,
    Udp,
}

impl NetProtocol {
    fn number(self) -> u8 {
        match self {
            NetProtocol::Tcp => 6,
            NetProtocol::Udp => 17,
        }
    }
}

/// Which processes a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NetScope {
    /// Every process.
    Host,
    /// Processes running this executable: its path with symlinks resolved when the rules load,
    /// compared with the path the kernel recorded at exec (FNV-1a 64 of it, as the lineage
    /// map keeps it). A copy at another path is not matched.
    Binary(PathBuf),
    /// Processes in this cgroup v2 directory or any cgroup below it (a container).
    Cgroup(PathBuf),
    /// Processes whose own cgroup has this id (`process.cgroup_id`), descendants excluded.
    CgroupId(u64),
}

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Parses `a.b.c.d/n`, `x::y/n`, or an address alone (a host).
    pub fn parse(text: &str) -> Result<IpNet, NetRuleError> {
        let bad = || NetRuleError::Cidr(text.to_string());
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(IpNet { addr, prefix })
    }

    /// The network as the trie keys it: IPv6, IPv4 as `::ffff:a.b.c.d/96+n`, host bits cleared.
    fn key(&self) -> ([u8; 16], u32) {
        let (bytes, prefix) = match self.addr {
            IpAddr::V4(a) => (a.to_ipv6_mapped().octets(), 96 + u32::from(self.prefix)),
            IpAddr::V6(a) => (a.octets(), u32::from(self.prefix)),
        };
        (mask(bytes, prefix), prefix)
    }
}

fn mask(mut bytes: [u8; 16], prefix: u32) -> [u8; 16] {
    for (i, b) in bytes.iter_mut().enumerate() {
        let bits = (prefix as i64 - (i as i64) * 8).clamp(0, 8) as u32;
        *b &= if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
    }
    bytes
}

/// One deny rule, as the policy engine or the configuration gives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetRule {
    /// The number kernel records carry to say which rule acted (the policy's rule index).
    pub index: u16,
    pub direction: NetDirection,
    pub network: IpNet,
    /// Inclusive port range; `0..=65535` for any port.
    pub ports: (u16, u16),
    /// `None`: TCP and UDP.
    pub protocol: Option<NetProtocol>,
    pub scope: NetScope,
    /// Report the match (`would_deny`) without refusing the action.
    pub audit: bool,
}

/// Why a rule set cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum NetRuleError {
    /// Not an address or CIDR.
    #[error("'{0}' is not an IP address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32, 192.0.2.1)")]
    Cidr(String),
    /// More rules than the kernel maps hold.
    #[error("{0} network rules: at most {RULES_MAX} can be loaded")]
    TooMany(usize),
    /// A port range with its ends the wrong way round.
    #[error("rule {index}: port range {lo}-{hi} is empty")]
    Ports { index: u16, lo: u16, hi: u16 },
    /// A binary-scoped rule whose executable cannot be found.
    #[error("rule {index}: cannot resolve binary {path}: {source} (binary scopes are resolved when the rules load: give an existing executable)")]
    Binary {
        index: u16,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A cgroup-scoped rule whose cgroup is not a cgroup v2 directory.
    #[error("rule {index}: {path} is not a directory of the cgroup v2 hierarchy at {root}")]
    Cgroup {
        index: u16,
        path: PathBuf,
        root: PathBuf,
    },
    /// Ingress rules are decided at tc, where no process is known.
    #[error(
        "rule {index}: an ingress rule can only be host-wide (tc sees packets, not processes)"
    )]
    IngressScope { index: u16 },
    /// Attaching the tc program failed.
    #[error("attaching the tc ingress program to {iface}: {why}")]
    Tc { iface: String, why: String },
    /// A map write failed.
    #[error(transparent)]
    Map(#[from] LoadError),
}

/// A rule set in the layout of the kernel maps, for one generation.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// Per distinct prefix: (prefix length over the 16-byte address, address, slot bits).
    pub prefixes: Vec<(u32, [u8; 16], [u64; 4])>,
    /// Rules by slot.
    pub rules: Vec<shrike_net_rule>,
    /// `SHRIKE_NET_DIR_*` bits that have at least one rule.
    pub directions: u32,
}

/// Resolves scopes against the file system; a trait so [`compile`] is testable without one.
pub trait ScopeResolver {
    /// The identity of an executable as the lineage map records it: FNV-1a 64 of its absolute
    /// path with symlinks resolved.
    fn binary(&self, path: &Path) -> std::io::Result<u64>;
    /// (cgroup id, level below the root) of a cgroup v2 directory.
    fn cgroup(&self, path: &Path) -> Option<(u64, u32)>;
    /// The cgroup v2 root, for messages.
    fn cgroup_root(&self) -> PathBuf;
}

/// The real file system.
pub struct FsResolver {
    pub cgroup2: PathBuf,
}

impl ScopeResolver for FsResolver {
    fn binary(&self, path: &Path) -> std::io::Result<u64> {
        use std::os::unix::ffi::OsStrExt;
        let real = path.canonicalize()?;
        Ok(crate::enforce::fnv1a(real.as_os_str().as_bytes()))
    }

    fn cgroup(&self, path: &Path) -> Option<(u64, u32)> {
        let path = path.canonicalize().ok()?;
        let rel = path.strip_prefix(&self.cgroup2).ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_dir() || !path.join("cgroup.procs").exists() {
            return None;
        }
        Some((meta.ino(), rel.components().count() as u32))
    }

    fn cgroup_root(&self) -> PathBuf {
        self.cgroup2.clone()
    }
}

/// A user-space `dev_t` in the kernel's `s_dev` encoding (`major << 20 | minor`).
pub fn kernel_dev(dev: u64) -> u32 {
    let major = libc::major(dev);
    let minor = libc::minor(dev);
    (major << 20) | (minor & 0xfffff)
}

/// Compiles rules into the layout of the kernel maps. The order of `rules` is the slot order;
/// the kernel prefers a deny rule over an audit rule and otherwise the lowest slot.
pub fn compile(rules: &[NetRule], resolve: &dyn ScopeResolver) -> Result<Compiled, NetRuleError> {
    if rules.len() > RULES_MAX {
        return Err(NetRuleError::TooMany(rules.len()));
    }
    let mut out = Compiled::default();
    let mut nets: BTreeMap<([u8; 16], u32), [u64; 4]> = BTreeMap::new();
    for (slot, rule) in rules.iter().enumerate() {
        let (lo, hi) = rule.ports;
        if lo > hi {
            return Err(NetRuleError::Ports {
                index: rule.index,
                lo,
                hi,
            });
        }
        let (scope, scope_id, scope_dev) = match &rule.scope {
            NetScope::Host => (shrike_net_scope::SHRIKE_NET_SCOPE_HOST, 0, 0),
            _ if rule.direction == NetDirection::Ingress => {
                return Err(NetRuleError::IngressScope { index: rule.index })
            }
            NetScope::Binary(path) => {
                let hash = resolve
                    .binary(path)
                    .map_err(|source| NetRuleError::Binary {
                        index: rule.index,
                        path: path.clone(),
                        source,
                    })?;
                (shrike_net_scope::SHRIKE_NET_SCOPE_BINARY, hash, 0)
            }
            NetScope::Cgroup(path) => {
                let (id, level) = resolve.cgroup(path).ok_or_else(|| NetRuleError::Cgroup {
                    index: rule.index,
                    path: path.clone(),
                    root: resolve.cgroup_root(),
                })?;
                (shrike_net_scope::SHRIKE_NET_SCOPE_CGROUP, id, level)
            }
            NetScope::CgroupId(id) => (shrike_net_scope::SHRIKE_NET_SCOPE_CGROUP, *id, LEAF),
        };
        let direction = match rule.direction {
            NetDirection::Egress => shrike_net_direction::SHRIKE_NET_DIR_EGRESS,
            NetDirection::Bind => shrike_net_direction::SHRIKE_NET_DIR_BIND,
            NetDirection::Ingress => shrike_net_direction::SHRIKE_NET_DIR_INGRESS,
        };
        out.directions |= direction.0;
        out.rules.push(shrike_net_rule {
            scope_id,
            scope_dev,
            scope: scope.0,
            flags: if rule.audit {
                shrike_net_rule_flags::SHRIKE_NET_RULE_AUDIT.0
            } else {
                0
            },
            index: rule.index,
            port_lo: lo,
            port_hi: hi,
            direction: direction.0 as u8,
            protocol: rule.protocol.map_or(0, NetProtocol::number),
            ..Default::default()
        });
        nets.entry(rule.network.key()).or_default()[slot / 64] |= 1u64 << (slot % 64);
    }
    // Each prefix carries every rule whose network contains it: the trie returns only the
    // longest matching prefix, and every network containing an address contains that prefix.
    let keys: Vec<([u8; 16], u32)> = nets.keys().copied().collect();
    for &(addr, prefix) in &keys {
        let mut bits = [0u64; 4];
        for &(other, other_prefix) in &keys {
            if other_prefix <= prefix && mask(addr, other_prefix) == other {
                for (b, o) in bits.iter_mut().zip(nets[&(other, other_prefix)]) {
                    *b |= o;
                }
            }
        }
        out.prefixes.push((prefix, addr, bits));
    }
    Ok(out)
}

/// Indexes of configuration rules start here, above any policy's rule indexes.
pub const CONFIG_INDEX_BASE: u16 = 0xf000;

/// `scope_dev` of a cgroup-id rule: match the process's own cgroup only.
const LEAF: u32 = u32::MAX;

/// The network sensor's loaded object and attachments. Dropping it detaches them.
pub struct NetSensor {
    _skel: NetSkel<'static>,
    _links: Vec<Link>,
    hooks: Vec<String>,
}

impl Family for NetSensor {
    fn hooks(&self) -> Vec<String> {
        self.hooks.clone()
    }
}

/// The handle the policy engine (or the configuration) uses to replace the deny rules. Cheap
/// to clone; every clone drives the same maps.
#[derive(Clone)]
pub struct NetRules(Arc<Mutex<RulesInner>>);

struct RulesInner {
    sets: BTreeMap<NetRuleSource, Vec<NetRule>>,
    /// Map fds (owned copies): the handle is Send and borrows nothing.
    lpm: OwnedFd,
    rules: OwnedFd,
    cfg: OwnedFd,
    gen: u32,
    /// Trie keys written per generation, to clear a generation before it is rewritten.
    keys: [Vec<Vec<u8>>; 2],
    cgroup2: PathBuf,
    /// The tc program, unless the kernel refused it (inbound deny rules are then refused).
    tc_prog: Option<OwnedFd>,
    tc_interfaces: TcInterfaces,
    tc: Vec<TcAttachment>,
}

/// One interface's tc ingress attachment; dropping it detaches.
enum TcAttachment {
    /// A tcx link (kernel 6.6+): closing the link fd detaches.
    Tcx { iface: String, _link: OwnedFd },
    /// A clsact filter (older kernels): detached on drop.
    Clsact {
        iface: String,
        ifindex: i32,
        prog: OwnedFd,
    },
}

impl TcAttachment {
    fn describe(&self) -> String {
        match self {
            TcAttachment::Tcx { iface, .. } => format!("tcx/ingress {iface}"),
            TcAttachment::Clsact { iface, .. } => format!("tc clsact ingress {iface}"),
        }
    }
}

/// The clsact filter this sensor installs: its handle and priority identify it for detach.
const TC_HANDLE: u32 = 0x5348; // "SH"
const TC_PRIORITY: u32 = 1;

fn clsact_hook(prog: &OwnedFd, ifindex: i32) -> TcHook {
    let mut builder = TcHookBuilder::new(prog.as_fd());
    builder
        .ifindex(ifindex)
        .replace(true)
        .handle(TC_HANDLE)
        .priority(TC_PRIORITY);
    builder.hook(TC_INGRESS)
}

impl Drop for TcAttachment {
    fn drop(&mut self) {
        if let TcAttachment::Clsact {
            iface,
            ifindex,
            prog,
        } = self
        {
            if let Err(err) = clsact_hook(prog, *ifindex).detach() {
                tracing::warn!(%iface, %err, "detaching the tc ingress filter");
            }
        }
    }
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
        let next = 1 - self.gen;
        // Clear what the inactive generation held (it has not been read since the last
        // switch, long ago in kernel time).
        for key in std::mem::take(&mut self.keys[next as usize]) {
            map_delete(&self.lpm, &key, "net_lpm")?;
        }
        for (slot, rule) in c.rules.iter().enumerate() {
            let key = (slot as u32 + next * RULES_MAX as u32).to_ne_bytes();
            map_update(&self.rules, &key, bytes_of(rule), "net_rules")?;
        }
        for (prefix, addr, bits) in &c.prefixes {
            let key = shrike_net_lpm_key {
                prefixlen: 8 + prefix,
                gen: next as u8,
                addr: *addr,
                ..Default::default()
            };
            let value = shrike_net_match { slots: *bits };
            let key_bytes = bytes_of(&key).to_vec();
            map_update(&self.lpm, &key_bytes, bytes_of(&value), "net_lpm")?;
            self.keys[next as usize].push(key_bytes);
        }
        // The switch: one array element, written whole.
        let cfg = shrike_net_cfg {
            gen: next,
            directions: c.directions,
        };
        map_update(&self.cfg, &0u32.to_ne_bytes(), bytes_of(&cfg), "net_cfg")?;
        self.gen = next;
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

/// Every network interface of this network namespace.
fn all_interfaces() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn if_index(iface: &str) -> Result<u32, NetRuleError> {
    let name = CString::new(iface).map_err(|_| NetRuleError::Tc {
        iface: iface.to_string(),
        why: "not an interface name".into(),
    })?;
    // SAFETY: name is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(NetRuleError::Tc {
            iface: iface.to_string(),
            why: format!("no such interface ({})", std::io::Error::last_os_error()),
        });
    }
    Ok(index)
}

/// tcx where the kernel has it (6.6+), else a clsact filter.
fn attach_tc_ingress(prog: &OwnedFd, iface: &str) -> Result<TcAttachment, NetRuleError> {
    let ifindex = if_index(iface)?;
    // SAFETY: a zeroed bpf_link_create_opts with its size set is the documented default.
    let mut opts: libbpf_rs::libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_link_create_opts>() as _;
    // SAFETY: prog is an open BPF program fd; opts is initialised above and outlives the call.
    let fd = unsafe {
        libbpf_rs::libbpf_sys::bpf_link_create(
            prog.as_raw_fd(),
            ifindex as i32,
            libbpf_rs::libbpf_sys::BPF_TCX_INGRESS,
            &opts,
        )
    };
    if fd >= 0 {
        // SAFETY: bpf_link_create returned a new fd that nothing else owns.
        let link = unsafe { OwnedFd::from_raw_fd(fd) };
        return Ok(TcAttachment::Tcx {
            iface: iface.to_string(),
            _link: link,
        });
    }
    let tcx_err = std::io::Error::from_raw_os_error(-fd);
    let mut hook = clsact_hook(prog, ifindex as i32);
    // The clsact qdisc may already exist (EEXIST): that is fine.
    let _ = hook.create();
    match hook.attach() {
        Ok(_) => Ok(TcAttachment::Clsact {
            iface: iface.to_string(),
            ifindex: ifindex as i32,
            prog: prog.try_clone().map_err(|e| NetRuleError::Tc {
                iface: iface.to_string(),
                why: format!("duplicating the program fd: {e}"),
            })?,
        }),
        Err(err) => Err(NetRuleError::Tc {
            iface: iface.to_string(),
            why: format!("tcx: {tcx_err}; clsact: {err}"),
        }),
    }
}

/// The cgroup v2 root: where it is mounted, or mounted now at /run/shrike/cgroup2.
pub fn cgroup2_root() -> Result<PathBuf, LoadError> {
    if let Some(path) = crate::mounts::find_mount("cgroup2") {
        return Ok(path);
    }
    let path = PathBuf::from("/run/shrike/cgroup2");
    std::fs::create_dir_all(&path)
        .map_err(|e| LoadError::Option(format!("creating {}: {e}", path.display())))?;
    let target =
        CString::new("/run/shrike/cgroup2").map_err(|_| LoadError::Option("path".into()))?;
    let fstype = CString::new("cgroup2").map_err(|_| LoadError::Option("fstype".into()))?;
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(LoadError::Option(format!(
            "cgroup v2 is not mounted and mounting it at {} failed: {} (the network sensor attaches to the cgroup v2 root)",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    tracing::info!(path = %path.display(), "mounted cgroup2 (it was not mounted)");
    Ok(path)
}

/// The network family's programs, each with the capability it serves. Every one is optional:
/// a program the kernel refuses costs its capability, not the sensor.
pub const PROGRAMS: &[ProgramCap] = &[
    net_prog("net_connect4", "cgroup/connect4", Capability::NetSockets),
    net_prog("net_connect6", "cgroup/connect6", Capability::NetSockets),
    net_prog("net_sendmsg4", "cgroup/sendmsg4", Capability::NetSockets),
    net_prog("net_sendmsg6", "cgroup/sendmsg6", Capability::NetSockets),
    net_prog("net_bind4", "cgroup/bind4", Capability::NetSockets),
    net_prog("net_bind6", "cgroup/bind6", Capability::NetSockets),
    net_prog(
        "net_post_bind4",
        "cgroup/post_bind4",
        Capability::NetBindResults,
    ),
    net_prog(
        "net_post_bind6",
        "cgroup/post_bind6",
        Capability::NetBindResults,
    ),
    net_prog(
        "net_tcp_state",
        "tp_btf/inet_sock_set_state",
        Capability::NetTcpState,
    ),
    net_prog(
        "net_seed_tasks",
        "iter/task_file",
        Capability::NetOlderSockets,
    ),
    net_prog("net_seed_tcp", "iter/tcp", Capability::NetOlderSockets),
    net_prog("net_seed_udp", "iter/udp", Capability::NetOlderSockets),
    net_prog("net_skb_egress", "cgroup_skb/egress", Capability::NetDns),
    net_prog("net_skb_ingress", "cgroup_skb/ingress", Capability::NetDns),
    net_prog(
        "net_tc_ingress",
        "tc ingress (tcx or clsact)",
        Capability::NetIngressDeny,
    ),
];

const fn net_prog(program: &'static str, hook: &'static str, capability: Capability) -> ProgramCap {
    ProgramCap {
        program,
        hook,
        capability,
    }
}

/// Opens, loads and attaches the network sensor, sharing the process object's maps. A program
/// the kernel refuses (at load or attach) is left out and reported in the returned statuses.
pub fn load(
    shared: &SharedMaps<'_>,
    wakeup_bytes: u64,
    opts: &NetOptions,
) -> Result<(NetSensor, NetRules, Vec<Status>), LoadError> {
    let cgroup2 = cgroup2_root()?;
    let off: &[&str] = if opts.dns {
        &[]
    } else {
        &["net_skb_egress", "net_skb_ingress"]
    };
    let (skel, mut refused) = load_degrading("net", PROGRAMS, |refused| {
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open =
            NetSkelBuilder::default()
                .open(storage)
                .map_err(|source| LoadError::Open {
                    object: "net",
                    source,
                })?;
        {
            let maps = &mut open.maps;
            shared.reuse(&mut maps.events, &mut maps.counters, &mut maps.procs)?;
        }
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.cfg_wakeup_bytes = wakeup_bytes;
            rodata.cfg_fault_refuse = fault_bits();
        }
        disable(open.open_object_mut(), refused);
        for name in off {
            disable_named(open.open_object_mut(), name);
        }
        Ok(open)
    })?;
    let runs = |refused: &[Refusal], name: &str| {
        !off.contains(&name) && !refused.iter().any(|r| r.program == name)
    };

    let root = File::open(&cgroup2)
        .map_err(|e| LoadError::Option(format!("opening {}: {e}", cgroup2.display())))?;
    let fd = root.as_raw_fd();
    let progs = &skel.progs;
    let mut links = Vec::new();
    let mut hooks = Vec::new();
    let cgroup_progs = [
        ("net_connect4", &progs.net_connect4),
        ("net_connect6", &progs.net_connect6),
        ("net_sendmsg4", &progs.net_sendmsg4),
        ("net_sendmsg6", &progs.net_sendmsg6),
        ("net_bind4", &progs.net_bind4),
        ("net_bind6", &progs.net_bind6),
        ("net_post_bind4", &progs.net_post_bind4),
        ("net_post_bind6", &progs.net_post_bind6),
        ("net_skb_egress", &progs.net_skb_egress),
        ("net_skb_ingress", &progs.net_skb_ingress),
    ];
    for (name, prog) in cgroup_progs {
        if !runs(&refused, name) {
            continue;
        }
        match prog.attach_cgroup(fd) {
            Ok(link) => {
                links.push(link);
                hooks.push(format!("{} ({})", hook_of(name), cgroup2.display()));
            }
            Err(err) => attach_refused(&mut refused, PROGRAMS, name, &err),
        }
    }
    if runs(&refused, "net_tcp_state") {
        match progs.net_tcp_state.attach() {
            Ok(link) => {
                links.push(link);
                hooks.push(hook_of("net_tcp_state").into());
            }
            Err(err) => attach_refused(&mut refused, PROGRAMS, "net_tcp_state", &err),
        }
    }
    // The seeding passes work together: one missing (or failing) makes the others useless.
    const SEEDS: [&str; 3] = ["net_seed_tasks", "net_seed_tcp", "net_seed_udp"];
    let seeding = if SEEDS.iter().all(|p| runs(&refused, p)) {
        seed_owners(&skel).map_err(|e| format!("running the seeding iterators: {e}"))
    } else {
        Err("another seeding pass was refused".to_string())
    };
    if let Err(why) = seeding {
        for name in SEEDS {
            if runs(&refused, name) {
                attach_refused(&mut refused, PROGRAMS, name, &why);
            }
        }
    }

    let handle = |map: &libbpf_rs::Map<'_>, name: &'static str| {
        map.as_fd()
            .try_clone_to_owned()
            .map_err(|e| LoadError::Option(format!("duplicating the {name} map fd: {e}")))
    };
    let tc_prog = if runs(&refused, "net_tc_ingress") {
        Some(
            progs
                .net_tc_ingress
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| LoadError::Option(format!("duplicating the tc program fd: {e}")))?,
        )
    } else {
        None
    };
    let rules = NetRules(Arc::new(Mutex::new(RulesInner {
        sets: BTreeMap::new(),
        lpm: handle(&skel.maps.net_lpm, "net_lpm")?,
        rules: handle(&skel.maps.net_rules, "net_rules")?,
        cfg: handle(&skel.maps.net_cfg, "net_cfg")?,
        gen: 0,
        keys: [Vec::new(), Vec::new()],
        cgroup2,
        tc_prog,
        tc_interfaces: opts.tc_interfaces.clone(),
        tc: Vec::new(),
    })));
    rules
        .replace_source(NetRuleSource::Config, &opts.rules)
        .map_err(|e| match e {
            NetRuleError::Map(e) => e,
            other => LoadError::Option(other.to_string()),
        })?;
    hooks.extend(rules.tc_hooks());
    let statuses = statuses(PROGRAMS, &refused, off);
    Ok((
        NetSensor {
            _skel: skel,
            _links: links,
            hooks,
        },
        rules,
        statuses,
    ))
}

/// `cfg_fault_refuse` for the capabilities the tests ask to be refused (see
/// [`crate::capability::fault_injected`]).
fn fault_bits() -> u64 {
    let mut bits = 0;
    for cap in crate::capability::fault_injected() {
        bits |= match cap {
            Capability::NetDns => shrike_net_fault::SHRIKE_NET_FAULT_DNS.0,
            Capability::NetOlderSockets => shrike_net_fault::SHRIKE_NET_FAULT_OLDER_SOCKETS.0,
            _ => 0,
        } as u64;
    }
    bits
}

fn hook_of(program: &str) -> &'static str {
    PROGRAMS
        .iter()
        .find(|p| p.program == program)
        .map_or("?", |p| p.hook)
}

fn disable_named(object: &mut OpenObject, name: &str) {
    for mut prog in object.progs_mut() {
        if prog.name() == name {
            prog.set_autoload(false);
        }
    }
}

/// Sockets older than the agent (see the seeding passes in bpf/net.bpf.c): the task_file pass
/// records each socket's holder, then the tcp and udp passes give every TCP and UDP socket
/// with no owner yet the holder found. Runs after the hooks are attached, so no socket falls
/// between the two; the temporary map is emptied afterwards.
fn seed_owners(skel: &NetSkel<'_>) -> Result<(), libbpf_rs::Error> {
    use std::io::Read;
    let progs = &skel.progs;
    for prog in [
        &progs.net_seed_tasks,
        &progs.net_seed_tcp,
        &progs.net_seed_udp,
    ] {
        let link = prog.attach()?;
        let mut iter = libbpf_rs::Iter::new(&link)?;
        let mut sink = Vec::new();
        iter.read_to_end(&mut sink)
            .map_err(libbpf_rs::Error::from)?;
    }
    let seeds = &skel.maps.net_seed;
    let keys: Vec<Vec<u8>> = seeds.keys().collect();
    for key in keys {
        // A key that vanished meanwhile is fine: the map only needs to end up empty.
        let _ = seeds.delete(&key);
    }
    Ok(())
}

/// An IPv6 address that is really IPv4 (`::ffff:a.b.c.d`) as IPv4; anything else unchanged.
pub fn unmap(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    struct Fake;

    impl ScopeResolver for Fake {
        fn binary(&self, path: &Path) -> std::io::Result<u64> {
            if path == Path::new("/usr/bin/curl") {
                Ok(42)
            } else {
                Err(std::io::Error::from_raw_os_error(libc::ENOENT))
            }
        }
        fn cgroup(&self, path: &Path) -> Option<(u64, u32)> {
            (path == Path::new("/cg/a/b")).then_some((77, 2))
        }
        fn cgroup_root(&self) -> PathBuf {
            PathBuf::from("/cg")
        }
    }

    fn rule(index: u16, cidr: &str) -> NetRule {
        NetRule {
            index,
            direction: NetDirection::Egress,
            network: IpNet::parse(cidr).unwrap(),
            ports: (0, 65535),
            protocol: None,
            scope: NetScope::Host,
            audit: false,
        }
    }

    #[test]
    fn cidrs_parse_and_reject_garbage() {
        assert_eq!(
            IpNet::parse("10.1.0.0/16").unwrap(),
            IpNet {
                addr: "10.1.0.0".parse().unwrap(),
                prefix: 16
            }
        );
        assert_eq!(IpNet::parse("::1").unwrap().prefix, 128);
        assert_eq!(IpNet::parse("192.0.2.7").unwrap().prefix, 32);
        for bad in ["10.0.0.0/33", "x", "10.0.0/8", "::/129", "1.2.3.4/-1", ""] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv4_is_keyed_as_mapped_ipv6_with_host_bits_cleared() {
        let (addr, prefix) = IpNet::parse("10.1.2.3/8").unwrap().key();
        assert_eq!(prefix, 104);
        assert_eq!(
            addr,
            "::ffff:10.0.0.0".parse::<Ipv6Addr>().unwrap().octets()
        );
        let (addr, prefix) = IpNet::parse("2001:db8:ffff::1/33").unwrap().key();
        assert_eq!(prefix, 33);
        assert_eq!(
            addr,
            "2001:db8:8000::".parse::<Ipv6Addr>().unwrap().octets()
        );
    }

    #[test]
    fn each_prefix_carries_the_rules_of_every_network_containing_it() {
        let rules = [
            rule(10, "0.0.0.0/0"),
            rule(11, "10.0.0.0/8"),
            rule(12, "10.1.0.0/16"),
            rule(13, "192.168.0.0/16"),
            rule(14, "10.1.0.0/16"),
        ];
        let c = compile(&rules, &Fake).unwrap();
        let bits = |cidr: &str| {
            let (addr, prefix) = IpNet::parse(cidr).unwrap().key();
            c.prefixes
                .iter()
                .find(|(p, a, _)| *p == prefix && *a == addr)
                .map(|(_, _, b)| b[0])
                .unwrap()
        };
        assert_eq!(bits("0.0.0.0/0"), 0b00001);
        assert_eq!(bits("10.0.0.0/8"), 0b00011);
        assert_eq!(bits("10.1.0.0/16"), 0b10111);
        assert_eq!(bits("192.168.0.0/16"), 0b01001);
        assert_eq!(c.prefixes.len(), 4, "one trie entry per distinct network");
        assert_eq!(c.rules[2].index, 12);
        assert_eq!(c.directions, shrike_net_direction::SHRIKE_NET_DIR_EGRESS.0);
    }

    #[test]
    fn ipv4_rules_do_not_cover_ipv6_and_v6_default_covers_mapped_v4() {
        let c = compile(&[rule(1, "0.0.0.0/0"), rule(2, "::/0")], &Fake).unwrap();
        let v4 = c.prefixes.iter().find(|(p, _, _)| *p == 96).unwrap();
        assert_eq!(v4.2[0], 0b11, "::/0 contains ::ffff:0:0/96");
        let v6 = c.prefixes.iter().find(|(p, _, _)| *p == 0).unwrap();
        assert_eq!(v6.2[0], 0b10);
    }

    #[test]
    fn scopes_resolve_and_errors_name_the_rule() {
        let mut r = rule(5, "10.0.0.0/8");
        r.scope = NetScope::Binary("/usr/bin/curl".into());
        r.ports = (80, 443);
        r.protocol = Some(NetProtocol::Tcp);
        let c = compile(&[r.clone()], &Fake).unwrap();
        assert_eq!(
            (
                c.rules[0].scope_id,
                c.rules[0].scope_dev,
                c.rules[0].port_lo,
                c.rules[0].port_hi
            ),
            (42, 0, 80, 443)
        );
        assert_eq!(c.rules[0].protocol, 6);
        r.scope = NetScope::Binary("/nope".into());
        assert!(matches!(
            compile(&[r.clone()], &Fake),
            Err(NetRuleError::Binary { index: 5, .. })
        ));
        r.scope = NetScope::Cgroup("/cg/a/b".into());
        let c = compile(&[r.clone()], &Fake).unwrap();
        assert_eq!((c.rules[0].scope_id, c.rules[0].scope_dev), (77, 2));
        r.scope = NetScope::Cgroup("/elsewhere".into());
        assert!(compile(&[r.clone()], &Fake).is_err());
        r.scope = NetScope::Binary("/usr/bin/curl".into());
        r.direction = NetDirection::Ingress;
        assert!(matches!(
            compile(&[r.clone()], &Fake),
            Err(NetRuleError::IngressScope { index: 5 })
        ));
        r.scope = NetScope::Host;
        r.ports = (10, 9);
        assert!(matches!(
            compile(&[r], &Fake),
            Err(NetRuleError::Ports { .. })
        ));
        let many: Vec<NetRule> = (0..=RULES_MAX as u16)
            .map(|i| rule(i, "10.0.0.0/8"))
            .collect();
        assert!(matches!(
            compile(&many, &Fake),
            Err(NetRuleError::TooMany(257))
        ));
    }

    #[test]
    fn slots_past_64_land_in_later_words() {
        let rules: Vec<NetRule> = (0..200).map(|i| rule(i, "10.0.0.0/8")).collect();
        let c = compile(&rules, &Fake).unwrap();
        assert_eq!(
            c.prefixes[0].2,
            [u64::MAX, u64::MAX, u64::MAX, (1 << 8) - 1]
        );
    }

    #[test]
    fn kernel_dev_uses_the_s_dev_encoding() {
        assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
        assert_eq!(kernel_dev(libc::makedev(259, 70000)), (259 << 20) | 70000);
    }

    #[test]
    fn mapped_addresses_are_reported_as_ipv4() {
        assert_eq!(
            unmap("::ffff:127.0.0.1".parse().unwrap()),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            unmap("::1".parse().unwrap()),
            "::1".parse::<IpAddr>().unwrap()
        );
    }
}
