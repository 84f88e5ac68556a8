//! The lineage map from user space: reading the kernel's entry for a process, and offering
//! one for a process that predates the agent ([`Sensors::seed_lineage`]), which the kernel keeps
//! only where it has recorded nothing itself.

use libbpf_rs::{MapCore, MapFlags};

use crate::abi::{shrike_proc, shrike_proc_flags};
use crate::loader::{LoadError, Sensors};

/// A lineage entry user space offers for a process older than the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedLineage {
    pub tgid: u32,
    pub exec_id: u64,
    pub parent_exec_id: u64,
    pub start_boottime_ns: u64,
    /// The executable's path.
    pub binary: String,
    /// The ancestors' executables, nearest first (the parent first).
    pub ancestry: Vec<String>,
    /// The ancestry went on beyond what is listed.
    pub ancestry_cut: bool,
    /// It holds a listening TCP socket (`SHRIKE_PROC_LISTENED`).
    pub listened: bool,
    /// A process above it does (`SHRIKE_PROC_UNDER_SERVER`).
    pub under_server: bool,
}

/// What happened when user space offered a lineage entry for an existing process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// The entry was written.
    Written,
    /// The kernel already had an entry (the process exec'd or forked since the agent
    /// attached); its exec_id is the one to use.
    KernelHas { exec_id: u64, parent_exec_id: u64 },
}

impl Sensors {
    /// The lineage entry the kernel holds for a process, if any.
    pub fn lineage(&self, tgid: u32) -> Result<Option<shrike_proc>, LoadError> {
        let value = self
            .process_maps()
            .procs
            .lookup(&tgid.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| LoadError::Map {
                map: "procs",
                source,
            })?;
        Ok(value.and_then(|bytes| {
            let mut proc = shrike_proc::default();
            plain::copy_from_bytes(&mut proc, &bytes).ok()?;
            Some(proc)
        }))
    }

    /// Offers the kernel a lineage entry for a process that predates the agent. Never
    /// overwrites what the kernel recorded itself.
    pub fn seed_lineage(&self, seed: &SeedLineage) -> Result<Seeded, LoadError> {
        let (tgid, exec_id, parent_exec_id, start_boottime_ns) = (
            seed.tgid,
            seed.exec_id,
            seed.parent_exec_id,
            seed.start_boottime_ns,
        );
        // The executable's identity, as the exec handler records it, for binary-scoped rules.
        let mut proc = shrike_proc {
            exec_id,
            parent_exec_id,
            start_boottime_ns,
            flags: shrike_proc_flags::SHRIKE_PROC_SEEDED.0,
            path_hash: crate::enforce::fnv1a(seed.binary.as_bytes()),
            name_hash: crate::enforce::name_hash(&seed.binary),
            ..Default::default()
        };
        let depth = proc.anc_path.len();
        for (i, binary) in seed.ancestry.iter().take(depth).enumerate() {
            proc.anc_path[i] = crate::enforce::fnv1a(binary.as_bytes());
            proc.anc_name[i] = crate::enforce::name_hash(binary);
        }
        proc.anc_count = seed.ancestry.len().min(depth) as u32;
        if seed.ancestry.len() > depth || seed.ancestry_cut {
            proc.flags |= shrike_proc_flags::SHRIKE_PROC_ANCESTRY_CUT.0;
        }
        if seed.listened {
            proc.flags |= shrike_proc_flags::SHRIKE_PROC_LISTENED.0;
        }
        if seed.under_server {
            proc.flags |= shrike_proc_flags::SHRIKE_PROC_UNDER_SERVER.0;
        }
        // SAFETY: shrike_proc is Plain (repr(C), integers only); the byte view lives only for
        // this call.
        let value = unsafe { plain::as_bytes(&proc) };
        match self
            .process_maps()
            .procs
            .update(&tgid.to_ne_bytes(), value, MapFlags::NO_EXIST)
        {
            Ok(()) => Ok(Seeded::Written),
            Err(err) if err.kind() == libbpf_rs::ErrorKind::AlreadyExists => {
                match self.lineage(tgid)? {
                    Some(existing) => Ok(Seeded::KernelHas {
                        exec_id: existing.exec_id,
                        parent_exec_id: existing.parent_exec_id,
                    }),
                    // Exited between the two calls: nothing left to seed.
                    None => Ok(Seeded::Written),
                }
            }
            Err(source) => Err(LoadError::Map {
                map: "procs",
                source,
            }),
        }
    }
}
