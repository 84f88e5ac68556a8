//! Loading and attaching the sensors, and the user-space side of the maps they share.
//!
//! The process object owns the shared maps (ring buffer, counters, lineage). It is sized from
//! the options before load — the ring buffer, the lineage map from `pid_max`, the exec scratch
//! from the number of CPUs — configured through its read-only globals, loaded, and attached.
//! Dropping [`Sensors`] detaches every program (the links go with it).

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenMapMut, OpenObject};

use crate::abi::{shrike_proc, shrike_proc_flags, ARGS_MAX, ENV_MAX};
use crate::counters::Counters;
use crate::skel::process::{ProcessSkel, ProcessSkelBuilder};

/// How the sensors are sized and configured at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorOptions {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_buffer_bytes: u32,
    /// Wake the reader once this many bytes are waiting (batched wake-ups).
    pub wakeup_bytes: u64,
    /// argv bytes kept per exec, at most [`ARGS_MAX`].
    pub args_max: u32,
    /// Environment bytes read per exec (for the variables the agent keeps); 0 turns it off.
    pub env_max: u32,
    /// Capacity of the lineage map; must be at least the kernel's `pid_max`.
    pub procs_max: u32,
    /// The file, privilege and kernel-integrity sensor (crates/bpf/src/file.rs); `None` leaves
    /// it unloaded (and its syscall hooks unarmed).
    pub file: Option<crate::file::FileOptions>,
}

impl Default for SensorOptions {
    fn default() -> Self {
        let ring_buffer_bytes = 16 << 20;
        SensorOptions {
            ring_buffer_bytes,
            wakeup_bytes: u64::from(ring_buffer_bytes / 64),
            args_max: ARGS_MAX as u32,
            env_max: ENV_MAX as u32,
            procs_max: default_procs_max(),
            file: None,
        }
    }
}

/// `pid_max` from /proc, at least 32768 and at most 4194304 (the kernel's own ceiling).
pub fn default_procs_max() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(32768)
        .clamp(32768, 1 << 22)
}

/// Why the sensors could not be loaded or attached.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An option is out of range.
    #[error("invalid sensor option: {0}")]
    Option(String),
    /// libbpf could not open the embedded object.
    #[error("opening BPF object {object}: {source}")]
    Open {
        object: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    /// The kernel refused to load the object (verifier, permissions, missing BTF).
    #[error("loading BPF object {object}: {source} (run as root on a kernel with BTF at /sys/kernel/btf/vmlinux; `shrike doctor` says what is missing)")]
    Load {
        object: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    /// A program loaded but could not be attached to its hook.
    #[error("attaching BPF program {program}: {source}")]
    Attach {
        program: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    /// A map operation failed.
    #[error("BPF map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
}

/// A sensor family loaded after the process sensor (file, network, ...): it owns its object
/// and links; dropping it detaches its programs.
pub trait Family {
    /// The hooks it attached, for the start-up log and `doctor`.
    fn hooks(&self) -> Vec<String>;
}

/// The maps every family shares, owned by the process object (see `bpf/lib/maps.h`).
pub struct SharedMaps<'a> {
    pub events: BorrowedFd<'a>,
    pub counters: BorrowedFd<'a>,
    pub procs: BorrowedFd<'a>,
}

impl SharedMaps<'_> {
    /// Points a family object's declarations of the shared maps at the process object's maps.
    /// Call between open and load.
    pub fn reuse<'o>(
        &self,
        events: &mut OpenMapMut<'o>,
        counters: &mut OpenMapMut<'o>,
        procs: &mut OpenMapMut<'o>,
    ) -> Result<(), LoadError> {
        for (map, fd, name) in [
            (events, self.events, "events"),
            (counters, self.counters, "counters"),
            (procs, self.procs, "procs"),
        ] {
            map.reuse_fd(fd)
                .map_err(|source| LoadError::Map { map: name, source })?;
        }
        Ok(())
    }
}

/// The loaded, attached sensors.
pub struct Sensors {
    process: ProcessSkel<'static>,
    links: Vec<Link>,
    families: Vec<Box<dyn Family>>,
    /// The file sensor's watch set and hook set, when it is loaded.
    file_watch: Option<(crate::file::FileWatch, crate::file::HookSet)>,
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
    /// Opens, sizes, loads and attaches the process sensor.
    pub fn load(opts: &SensorOptions) -> Result<Self, LoadError> {
        validate(opts)?;
        crate::logging::install();
        // The skeleton borrows its object storage for as long as it lives; one small
        // allocation per load, kept for the life of the process.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let builder = ProcessSkelBuilder::default();
        let mut open = builder.open(storage).map_err(|source| LoadError::Open {
            object: "process",
            source,
        })?;

        let set = |r: libbpf_rs::Result<()>, map: &'static str| {
            r.map_err(|source| LoadError::Map { map, source })
        };
        set(
            open.maps.events.set_max_entries(opts.ring_buffer_bytes),
            "events",
        )?;
        set(open.maps.procs.set_max_entries(opts.procs_max), "procs")?;
        set(
            open.maps.exec_scratch.set_max_entries(possible_cpus()),
            "exec_scratch",
        )?;
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.cfg_wakeup_bytes = opts.wakeup_bytes;
            rodata.cfg_args_max = opts.args_max;
            rodata.cfg_env_max = opts.env_max;
        }
        let process = open.load().map_err(|source| LoadError::Load {
            object: "process",
            source,
        })?;

        let mut sensors = Sensors {
            process,
            links: Vec::new(),
            families: Vec::new(),
            file_watch: None,
        };
        sensors.attach()?;
        // Families beyond the process sensor load here, sharing its maps through
        // `sensors.shared()`, each only when the options ask for it.
        if let Some(file) = &opts.file {
            let (family, watch) = crate::file::load(&sensors.shared(), opts.wakeup_bytes, file)?;
            sensors.file_watch = Some((watch, family.hook_set));
            sensors.add_family(Box::new(family));
        }
        Ok(sensors)
    }

    fn attach(&mut self) -> Result<(), LoadError> {
        let progs = &self.process.progs;
        for (name, prog) in [
            ("handle_fork", &progs.handle_fork),
            ("handle_exec", &progs.handle_exec),
            ("handle_exit", &progs.handle_exit),
        ] {
            let link = prog.attach().map_err(|source| LoadError::Attach {
                program: name,
                source,
            })?;
            self.links.push(link);
        }
        Ok(())
    }

    /// An owned handle to the ring buffer map, for the reader thread.
    pub fn events_handle(&self) -> Result<MapHandle, LoadError> {
        MapHandle::try_from(&self.process.maps.events).map_err(|source| LoadError::Map {
            map: "events",
            source,
        })
    }

    /// An owned handle to the counters map.
    pub fn counters_handle(&self) -> Result<MapHandle, LoadError> {
        MapHandle::try_from(&self.process.maps.counters).map_err(|source| LoadError::Map {
            map: "counters",
            source,
        })
    }

    /// Sums of the kernel-side counters.
    pub fn counters(&self) -> Result<Counters, LoadError> {
        Counters::read(&self.process.maps.counters).map_err(|source| LoadError::Map {
            map: "counters",
            source,
        })
    }

    /// The lineage entry the kernel holds for a process, if any.
    pub fn lineage(&self, tgid: u32) -> Result<Option<shrike_proc>, LoadError> {
        let value = self
            .process
            .maps
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
    pub fn seed_lineage(
        &self,
        tgid: u32,
        exec_id: u64,
        parent_exec_id: u64,
        start_boottime_ns: u64,
    ) -> Result<Seeded, LoadError> {
        let proc = shrike_proc {
            exec_id,
            parent_exec_id,
            start_boottime_ns,
            flags: shrike_proc_flags::SHRIKE_PROC_SEEDED.0,
            ..Default::default()
        };
        // SAFETY: shrike_proc is Plain (repr(C), integers only); the byte view lives only for
        // this call.
        let value = unsafe { plain::as_bytes(&proc) };
        match self
            .process
            .maps
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

    /// The shared maps, for loading a [`Family`].
    pub fn shared(&self) -> SharedMaps<'_> {
        let maps = &self.process.maps;
        SharedMaps {
            events: maps.events.as_fd(),
            counters: maps.counters.as_fd(),
            procs: maps.procs.as_fd(),
        }
    }

    /// Keeps a loaded family attached for as long as the sensors live.
    pub fn add_family(&mut self, family: Box<dyn Family>) {
        self.families.push(family);
    }

    /// The file sensor's watch set (a handle the policy engine keeps to replace it), when the
    /// file sensor is loaded.
    pub fn file_watch(&self) -> Option<crate::file::FileWatch> {
        self.file_watch.as_ref().map(|(w, _)| w.clone())
    }

    /// The hook set the file sensor uses, when it is loaded.
    pub fn file_hook_set(&self) -> Option<crate::file::HookSet> {
        self.file_watch.as_ref().map(|(_, h)| *h)
    }

    /// The attached hooks of every family, for `doctor` and the start-up log.
    pub fn attached(&self) -> Vec<String> {
        let mut hooks: Vec<String> = [
            "tp_btf/sched_process_fork",
            "tp_btf/sched_process_exec",
            "tp_btf/sched_process_exit",
        ]
        .map(String::from)
        .to_vec();
        for family in &self.families {
            hooks.extend(family.hooks());
        }
        hooks
    }
}

fn validate(opts: &SensorOptions) -> Result<(), LoadError> {
    let page = 4096;
    if !opts.ring_buffer_bytes.is_power_of_two() || opts.ring_buffer_bytes < page {
        return Err(LoadError::Option(format!(
            "ring buffer size {} is not a power of two of at least {page} bytes",
            opts.ring_buffer_bytes
        )));
    }
    if opts.args_max as usize > ARGS_MAX {
        return Err(LoadError::Option(format!(
            "args_max {} exceeds the record limit {ARGS_MAX}",
            opts.args_max
        )));
    }
    if opts.env_max as usize > ENV_MAX {
        return Err(LoadError::Option(format!(
            "env_max {} exceeds the record limit {ENV_MAX}",
            opts.env_max
        )));
    }
    Ok(())
}

/// Number of possible CPUs (not just online ones), as libbpf counts them for per-CPU maps.
pub fn possible_cpus() -> u32 {
    // SAFETY: libbpf_num_possible_cpus takes no arguments and only reads sysfs.
    let n = unsafe { libbpf_rs::libbpf_sys::libbpf_num_possible_cpus() };
    if n > 0 {
        n as u32
    } else {
        1
    }
}
