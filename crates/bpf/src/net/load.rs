//! Loading the network object: its programs and the capability each serves, attaching them to
//! the cgroup v2 root and the TCP state tracepoint, and seeding the owners of sockets older than
//! the agent. A program the kernel refuses costs its capability only (see `capability`).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use libbpf_rs::skel::OpenSkel;
use libbpf_rs::{Link, MapCore, OpenObject};

use super::rules::{NetRules, RulesInner};
use super::{NetOptions, NetRuleError, NetRuleSource};
use crate::abi::net::shrike_net_fault;
use crate::capability::{
    attach_refused, disable, load_degrading, open_skel, statuses, Capability, Leased, ProgramCap,
    Refusal, Status,
};
use crate::loader::{Family, LoadError, SharedMaps};
use crate::skel::net::{NetSkel, NetSkelBuilder};
use crate::variant::{self, Build};

/// The network sensor's loaded object and attachments. Dropping it detaches them.
pub struct NetSensor {
    _skel: Leased<NetSkel<'static>>,
    _links: Vec<Link>,
    hooks: Vec<String>,
}

impl Family for NetSensor {
    fn hooks(&self) -> Vec<String> {
        self.hooks.clone()
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
    let (mut skel, mut refused) = load_degrading("net", PROGRAMS, |refused| {
        let mut open = open_skel(NetSkelBuilder::default(), &crate::skel::net::OBJECT, "net")?;
        {
            let maps = &mut open.maps;
            shared.reuse(&mut maps.events, &mut maps.counters, &mut maps.procs)?;
            // The TCP state the legacy build keeps in hash maps (bpf/lib/net_socks.h) is in
            // socket storage in the main build: there the maps get one entry, not megabytes.
            if variant::current() == Build::Main {
                for (name, map) in [
                    ("net_tcp_connects", &mut maps.net_tcp_connects),
                    ("net_tcp_socks", &mut maps.net_tcp_socks),
                    ("net_ports", &mut maps.net_ports),
                ] {
                    map.set_max_entries(1)
                        .map_err(|source| LoadError::Map { map: name, source })?;
                }
            }
        }
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.cfg_wakeup_bytes = wakeup_bytes;
            rodata.cfg_fault_refuse = fault_bits();
        }
        if let Some(data) = open.maps.data_data.as_deref_mut() {
            // Without the TCP state program, connects are reported at the call.
            data.cfg_tcp_state = u32::from(!refused.iter().any(|r| r.program == "net_tcp_state"));
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
    let mut links = Vec::new();
    let mut hooks = Vec::new();
    // The TCP state program first: where it cannot attach, the connect hooks must report TCP
    // connects at the call from their first run.
    if runs(&refused, "net_tcp_state") {
        let attached = if crate::capability::attach_fault_injected("net_tcp_state") {
            Err("refused by SHRIKE_FAULT_ATTACH (a test's fault injection)".to_string())
        } else {
            skel.progs.net_tcp_state.attach().map_err(|e| e.to_string())
        };
        match attached {
            Ok(link) => {
                links.push(link);
                hooks.push(hook_of("net_tcp_state").into());
            }
            Err(err) => {
                attach_refused(&mut refused, PROGRAMS, "net_tcp_state", &err);
                if let Some(data) = skel.maps.data_data.as_deref_mut() {
                    data.cfg_tcp_state = 0;
                }
            }
        }
    }
    let progs = &skel.progs;
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
