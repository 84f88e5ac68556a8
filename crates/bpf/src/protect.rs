//! Self-protection (`--protect-self`): the LSM programs of `bpf/protect.bpf.c`, loaded only
//! where BPF LSM is active, that refuse signals and ptrace aimed at the agent and the removal of
//! its pins, except from allowed binaries. Elsewhere the same attempts are alerted on from the
//! signal and ptrace events (`crates/shrike/src/detect.rs`).

use std::mem::MaybeUninit;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};

use crate::enforce::fnv1a;
use crate::loader::{Family, LoadError, SharedMaps};
use crate::skel::protect::{ProtectSkel, ProtectSkelBuilder};

/// What self-protection allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectOptions {
    /// Binaries (absolute paths) whose processes may signal or trace the agent and remove its
    /// pins; the agent's own binary is always allowed.
    pub allowed: Vec<PathBuf>,
}

/// The loaded self-protection programs.
pub struct Protect {
    _skel: ProtectSkel<'static>,
    links: Vec<(String, Link)>,
}

impl Family for Protect {
    fn hooks(&self) -> Vec<String> {
        self.links
            .iter()
            .map(|(name, _)| format!("lsm/{name}"))
            .collect()
    }

    fn links_mut(&mut self) -> Vec<(String, &mut Link)> {
        self.links
            .iter_mut()
            .map(|(n, l)| (format!("protect_{n}"), l))
            .collect()
    }
}

/// Loads and attaches the self-protection programs; `pin_dirs` are the bpffs directories whose
/// entries only allowed binaries may remove.
pub fn load(
    shared: &SharedMaps<'_>,
    opts: &ProtectOptions,
    pin_dirs: &[&Path],
) -> Result<Protect, LoadError> {
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let mut open = ProtectSkelBuilder::default()
        .open(storage)
        .map_err(|source| LoadError::Open {
            object: "protect",
            source,
        })?;
    shared.reuse(
        &mut open.maps.events,
        &mut open.maps.counters,
        &mut open.maps.procs,
    )?;
    if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
        rodata.cfg_self_tgid = std::process::id();
    }
    let skel = open.load().map_err(|source| LoadError::Load {
        object: "protect",
        source,
    })?;

    let map_err = |map: &'static str| move |source| LoadError::Map { map, source };
    let mut allowed: Vec<PathBuf> = opts.allowed.clone();
    if let Ok(me) = std::fs::read_link("/proc/self/exe") {
        allowed.push(me);
    }
    for binary in &allowed {
        let hash = fnv1a(binary.as_os_str().as_encoded_bytes());
        skel.maps
            .allowed_controllers
            .update(&hash.to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(map_err("allowed_controllers"))?;
    }
    for dir in pin_dirs {
        if let Ok(meta) = std::fs::metadata(dir) {
            // The kernel's s_dev is (major << 20) | minor, not st_dev's encoding.
            let dev = crate::net::kernel_dev(meta.dev());
            let key = (u64::from(dev) << 32) | (meta.ino() & 0xffff_ffff);
            skel.maps
                .protected_dirs
                .update(&key.to_ne_bytes(), &[1], MapFlags::ANY)
                .map_err(map_err("protected_dirs"))?;
        }
    }
    let mut links = Vec::new();
    for (name, prog) in [
        ("task_kill", &skel.progs.protect_kill),
        ("ptrace_access_check", &skel.progs.protect_ptrace),
        ("inode_unlink", &skel.progs.protect_pins),
    ] {
        let link = prog.attach().map_err(|source| LoadError::Attach {
            program: "protect",
            source,
        })?;
        links.push((name.to_string(), link));
    }
    Ok(Protect { _skel: skel, links })
}
