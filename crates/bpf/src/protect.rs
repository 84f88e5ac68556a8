//! Self-protection (`--protect-self`): the LSM programs of `bpf/protect.bpf.c`, loaded only
//! where BPF LSM is active, that refuse signals and ptrace aimed at the agent, the removal of
//! its pins, and any hold on its BPF programs, maps and links (by id, from a pin, a link detach
//! or update), except from allowed binaries. The objects are found by listing the agent's own
//! file descriptors once everything is loaded, with the program behind each link and the maps
//! each program uses (a family that dropped its skeleton once attached holds its programs only
//! through their links) ([`Protect::protect_own_objects`]). Elsewhere
//! signals, ptrace and unpinning are alerted on from the sensors' events
//! (`crates/shrike/src/detect.rs`).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use libbpf_rs::skel::OpenSkel;
use libbpf_rs::{Link, MapCore, MapFlags};

use crate::abi::shrike_bpf_object;
use crate::capability::{
    attach_refused, disable, load_degrading, open_skel, statuses, Capability, Leased, ProgramCap,
    State, Status,
};
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
    _skel: Leased<ProtectSkel<'static>>,
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

/// The self-protection programs, each optional: one the kernel refuses leaves the others.
pub const PROGRAMS: &[ProgramCap] = &[
    protect_prog("protect_kill", "lsm/task_kill"),
    protect_prog("protect_ptrace", "lsm/ptrace_access_check"),
    protect_prog("protect_pins", "lsm/inode_unlink"),
    protect_prog("protect_prog_fd", "lsm/bpf_prog"),
    protect_prog("protect_map_fd", "lsm/bpf_map"),
    protect_prog("protect_links", "lsm/bpf"),
];

const fn protect_prog(program: &'static str, hook: &'static str) -> ProgramCap {
    ProgramCap {
        program,
        hook,
        capability: Capability::SelfProtection,
    }
}

/// Loads and attaches the self-protection programs; `pin_dirs` are the bpffs directories whose
/// entries only allowed binaries may remove. Returns the family and its capability's status.
pub fn load(
    shared: &SharedMaps<'_>,
    opts: &ProtectOptions,
    pin_dirs: &[&Path],
) -> Result<(Protect, Status), LoadError> {
    let (skel, mut refused) = load_degrading("protect", PROGRAMS, |refused| {
        let mut open = open_skel(
            ProtectSkelBuilder::default(),
            &crate::skel::protect::OBJECT,
            "protect",
        )?;
        let maps = &mut open.maps;
        shared.reuse(&mut maps.events, &mut maps.counters, &mut maps.procs)?;
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.cfg_self_tgid = std::process::id();
        }
        disable(open.open_object_mut(), refused);
        Ok(open)
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
    for (program, name, prog) in [
        ("protect_kill", "task_kill", &skel.progs.protect_kill),
        (
            "protect_ptrace",
            "ptrace_access_check",
            &skel.progs.protect_ptrace,
        ),
        ("protect_pins", "inode_unlink", &skel.progs.protect_pins),
        ("protect_prog_fd", "bpf_prog", &skel.progs.protect_prog_fd),
        ("protect_map_fd", "bpf_map", &skel.progs.protect_map_fd),
        ("protect_links", "bpf", &skel.progs.protect_links),
    ] {
        if refused.iter().any(|r| r.program == program) {
            continue;
        }
        match prog.attach() {
            Ok(link) => links.push((name.to_string(), link)),
            Err(err) => attach_refused(&mut refused, PROGRAMS, program, &err),
        }
    }
    let status = statuses(PROGRAMS, &refused, &[])
        .pop()
        .unwrap_or_else(|| Status::new(Capability::SelfProtection, State::Unavailable, ""));
    Ok((Protect { _skel: skel, links }, status))
}

impl Protect {
    /// Puts every BPF program, map and link this process holds a descriptor to (every sensor's,
    /// adopted pins', and self-protection's own), the program behind each link and the maps of
    /// each program, into the kernel's `protected_objects`; returns how many. Call once
    /// everything is loaded and attached.
    pub fn protect_own_objects(&self) -> Result<usize, LoadError> {
        let entries = std::fs::read_dir("/proc/self/fd").map_err(|e| LoadError::Map {
            map: "protected_objects",
            source: libbpf_rs::Error::from(e),
        })?;
        let mut objects = BTreeSet::new();
        for entry in entries.flatten() {
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            objects.extend(
                objects_of_fd(&target, fd)
                    .into_iter()
                    .map(|(kind, id)| (u64::from(kind.0) << 32) | u64::from(id)),
            );
        }
        for key in &objects {
            self._skel
                .maps
                .protected_objects
                .update(&key.to_ne_bytes(), &[1], MapFlags::ANY)
                .map_err(|source| LoadError::Map {
                    map: "protected_objects",
                    source,
                })?;
        }
        Ok(objects.len())
    }
}

/// The BPF objects descriptor `fd` (whose /proc link is `target`) gives a hold on, by kind and
/// id: a program and its maps, a map, or a link and its program's.
fn objects_of_fd(target: &Path, fd: i32) -> Vec<(shrike_bpf_object, u32)> {
    let mut out = Vec::new();
    match target.to_str() {
        Some("anon_inode:bpf-prog") => program_and_maps(fd, &mut out),
        Some("anon_inode:bpf-map") => {
            let mut info = libbpf_sys::bpf_map_info::default();
            let mut len = std::mem::size_of_val(&info) as u32;
            // SAFETY: `info` and `len` are valid for writes and `len` is `info`'s size; the
            // kernel writes at most `len` bytes.
            if unsafe { libbpf_sys::bpf_map_get_info_by_fd(fd, &mut info, &mut len) } == 0 {
                out.push((shrike_bpf_object::SHRIKE_OBJ_MAP, info.id));
            }
        }
        Some("anon_inode:bpf_link") => {
            let mut info = libbpf_sys::bpf_link_info::default();
            let mut len = std::mem::size_of_val(&info) as u32;
            // SAFETY: as above.
            if unsafe { libbpf_sys::bpf_link_get_info_by_fd(fd, &mut info, &mut len) } == 0 {
                out.push((shrike_bpf_object::SHRIKE_OBJ_LINK, info.id));
                // SAFETY: a plain syscall wrapper; the descriptor it returns is closed below.
                let prog = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(info.prog_id) };
                if prog >= 0 {
                    program_and_maps(prog, &mut out);
                    // SAFETY: `prog` is the descriptor just opened, owned here.
                    unsafe { libc::close(prog) };
                }
            }
        }
        _ => {}
    }
    out
}

/// The program behind descriptor `fd` and the maps it uses, added to `out`.
fn program_and_maps(fd: i32, out: &mut Vec<(shrike_bpf_object, u32)>) {
    let info_of = |map_ids: &mut [u32]| {
        let mut info = libbpf_sys::bpf_prog_info {
            nr_map_ids: map_ids.len() as u32,
            map_ids: map_ids.as_mut_ptr() as u64,
            ..Default::default()
        };
        let mut len = std::mem::size_of_val(&info) as u32;
        // SAFETY: `info` and `len` are valid for writes and `len` is `info`'s size; the kernel
        // writes at most `nr_map_ids` ids to `map_ids`, which has room for that many.
        let r = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
        (r == 0).then_some(info)
    };
    let Some(info) = info_of(&mut []) else {
        return;
    };
    out.push((shrike_bpf_object::SHRIKE_OBJ_PROG, info.id));
    let mut map_ids = vec![0u32; info.nr_map_ids as usize];
    if let Some(info) = info_of(&mut map_ids) {
        map_ids.truncate(info.nr_map_ids as usize);
        out.extend(
            map_ids
                .into_iter()
                .map(|id| (shrike_bpf_object::SHRIKE_OBJ_MAP, id)),
        );
    }
}
