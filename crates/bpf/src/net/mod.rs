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
//!
//! The family is split by job: [`compile`] (rules → map layout, pure), `rules` (the handle that
//! writes a generation and switches to it), `tc` (ingress attachments), `load` (the object, its
//! programs and the capability each serves, start-up seeding of socket owners).

mod compile;
mod load;
mod rules;
mod tc;

use std::net::IpAddr;
use std::path::PathBuf;

use crate::abi::net::RULES_MAX;
use crate::loader::LoadError;

pub use compile::{
    compile, kernel_dev, Compiled, FsResolver, ScopeResolver, CONFIG_INDEX_BASE, CONFIG_RULES_MAX,
};
pub use load::{cgroup2_root, load, NetSensor, PROGRAMS};
pub use rules::NetRules;

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
    /// Processes below this executable: one of the 8 nearest ancestor images ran it (path
    /// resolved and hashed as for [`NetScope::Binary`]; `ancestors.binary`).
    Ancestor(PathBuf),
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

pub(super) fn mask(mut bytes: [u8; 16], prefix: u32) -> [u8; 16] {
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
