//! Loading and attaching the sensors, and the user-space side of the maps they share.
//!
//! The process object owns the shared maps (ring buffer, counters, lineage). It is sized from
//! the options before load — the ring buffer, the lineage map from `pid_max`, the exec scratch
//! from the number of CPUs — configured through its read-only globals, loaded, and attached.
//! Dropping [`Sensors`] detaches every program (the links go with it).

use std::os::fd::{AsFd, BorrowedFd};

use libbpf_rs::skel::{OpenSkel, Skel};
use libbpf_rs::{Link, MapCore, MapHandle, OpenMapMut};

use crate::abi::{ARGS_MAX, ENV_MAX};
use crate::capability::{
    load_degrading, off, open_skel, unavailable, Capability, Leased, ProgramCap, Refusal, State,
    Status,
};
use crate::counters::Counters;
use crate::pins::{adopt_maps, Pins, ADOPTED_MAPS};
use crate::probe::HookPlan;
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
    /// Enforce exec rules with the BPF LSM hook (EPERM) instead of SIGKILL at exec. Only when
    /// the kernel calls LSM programs ([`HookPlan::bpf_lsm`]).
    pub exec_enforce_lsm: bool,
    /// What the kernel offers, probed once by the caller and handed to every sensor; `None`
    /// probes it once at load.
    pub hooks: Option<HookPlan>,
    /// Pin links and rule maps under bpffs so enforcement continues after the agent stops
    /// (`--keep-enforcing`; see `pins`).
    pub keep_enforcing: bool,
    /// Refuse signals, ptrace and unpinning aimed at the agent (BPF LSM only; `protect`).
    pub protect: Option<crate::protect::ProtectOptions>,
    /// The network sensor (crates/bpf/src/net/); `None` leaves it unloaded.
    pub net: Option<crate::net::NetOptions>,
    /// The file, privilege and kernel-integrity sensor (crates/bpf/src/file/); `None` leaves
    /// it unloaded (and its syscall hooks unarmed).
    pub file: Option<crate::file::FileOptions>,
    /// Load and attach only to find out what works here (`shrike doctor`): another agent's
    /// pinned enforcement is neither adopted nor removed, and nothing is pinned.
    pub trial: bool,
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
            exec_enforce_lsm: false,
            hooks: None,
            keep_enforcing: false,
            protect: None,
            net: None,
            file: None,
            trial: false,
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
    /// Pinning under bpffs failed.
    #[error("pinning {what} under /sys/fs/bpf/shrike: {source}")]
    Pin {
        what: String,
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

    /// Its links with unique names, for `--keep-enforcing` to pin (enforcing families must
    /// list theirs; observing ones may leave the default).
    fn links_mut(&mut self) -> Vec<(String, &mut Link)> {
        Vec::new()
    }
}

/// The maps every family shares, owned by the process object (see `bpf/lib/maps.h`).
pub struct SharedMaps<'a> {
    pub events: BorrowedFd<'a>,
    pub counters: BorrowedFd<'a>,
    pub procs: BorrowedFd<'a>,
    /// Files written by images that connected out (`bpf/lib/net_written.h`): the file object
    /// writes it, the process object reads it at exec.
    pub net_written: BorrowedFd<'a>,
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

    /// Points the file object's `net_written` at the process object's. Call between open and
    /// load.
    pub fn reuse_net_written(&self, map: &mut OpenMapMut<'_>) -> Result<(), LoadError> {
        map.reuse_fd(self.net_written)
            .map_err(|source| LoadError::Map {
                map: "net_written",
                source,
            })
    }
}

/// The loaded, attached sensors.
pub struct Sensors {
    process: ProcessObject,
    links: Vec<Link>,
    families: Vec<Box<dyn Family>>,
    /// Exec rules are enforced by the LSM hook (else by SIGKILL at exec).
    lsm_exec: bool,
    /// Names of `links`, in the same order (pin names).
    link_names: Vec<&'static str>,
    /// Where links and maps are pinned (`--keep-enforcing`).
    pinned: Option<Pins>,
    /// The network sensor's deny rules, when it is loaded.
    net_rules: Option<crate::net::NetRules>,
    /// The file sensor's watch set and hook set, when it is loaded.
    file_watch: Option<(crate::file::FileWatch, crate::file::HookSet)>,
    /// What each capability's programs did at load.
    health: Vec<Status>,
    /// Maps adopted from a previous agent's pins, until the pins are settled.
    adopted: Vec<String>,
}

/// The process object, loaded, with the lease on the bytes it was opened from.
type ProcessObject = Leased<ProcessSkel<'static>>;

/// The process object's optional programs.
const PROCESS_PROGRAMS: &[ProgramCap] = &[ProgramCap {
    program: "enforce_exec_lsm",
    hook: "lsm/bprm_check_security",
    capability: Capability::DenyExec,
}];

/// Opens, sizes, configures and loads the process object (the LSM exec hook only with `lsm`).
/// Returns the maps adopted from a previous agent's pins and what the kernel refused.
fn load_process(
    opts: &SensorOptions,
    lsm: bool,
    previous: Option<&Pins>,
) -> Result<(ProcessObject, Vec<String>, Vec<Refusal>), LoadError> {
    let mut adopted = Vec::new();
    let (process, refused) = load_degrading("process", PROCESS_PROGRAMS, |refused| {
        let mut open = open_skel(
            ProcessSkelBuilder::default(),
            &crate::skel::process::OBJECT,
            "process",
        )?;
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
        // With the LSM hook refused, exec rules fall back to SIGKILL at exec.
        let lsm = lsm && refused.is_empty();
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.cfg_wakeup_bytes = opts.wakeup_bytes;
            rodata.cfg_args_max = opts.args_max;
            rodata.cfg_env_max = opts.env_max;
            rodata.cfg_exec_enforce_lsm = u32::from(lsm);
        }
        open.progs.enforce_exec_lsm.set_autoload(lsm);
        adopted = match previous {
            Some(pins) => adopt_maps(open.open_object_mut(), pins),
            None => Vec::new(),
        };
        Ok(open)
    })?;
    Ok((process, adopted, refused))
}

impl Sensors {
    /// Opens, sizes, loads and attaches the process sensor, then the families the options ask
    /// for. A program the kernel refuses costs the capability it serves (see `capability`);
    /// [`Sensors::capabilities`] says what the agent has.
    pub fn load(opts: &SensorOptions) -> Result<Self, LoadError> {
        validate(opts)?;
        crate::logging::install();
        // A previous agent left enforcement pinned: run on its lineage and rule maps.
        let previous = if opts.trial { None } else { Pins::existing() };
        let mut lsm = opts.exec_enforce_lsm;
        let mut refused = Vec::new();
        let mut sensors = loop {
            let (process, adopted, load_refused) = load_process(opts, lsm, previous.as_ref())?;
            let lsm_loaded = lsm && load_refused.is_empty();
            refused.extend(load_refused);
            let mut sensors = Sensors {
                process,
                links: Vec::new(),
                families: Vec::new(),
                lsm_exec: lsm_loaded,
                link_names: Vec::new(),
                pinned: None,
                net_rules: None,
                file_watch: None,
                health: Vec::new(),
                adopted,
            };
            match sensors.attach() {
                Ok(()) => break sensors,
                // The LSM hook loaded but would not attach: load again without it, so exec
                // rules fall back to SIGKILL (the object's rodata says which path enforces).
                Err(LoadError::Attach { program, source }) if program == "enforce_exec_lsm" => {
                    crate::capability::attach_refused(
                        &mut refused,
                        PROCESS_PROGRAMS,
                        program,
                        &source,
                    );
                    lsm = false;
                }
                Err(err) => return Err(err),
            }
        };
        sensors.health.push(Status::new(
            Capability::ProcessEvents,
            State::Ok,
            "tp_btf sched_process_exec/fork/exit",
        ));
        sensors.health.push(if sensors.lsm_exec {
            Status::new(
                Capability::DenyExec,
                State::Ok,
                "lsm/bprm_check_security returns -EPERM",
            )
        } else {
            let why = refused
                .iter()
                .map(|r| format!("{} refused: {}", r.program, r.reason))
                .next()
                .unwrap_or_else(|| "BPF LSM is not active on this kernel".to_string());
            Status::new(
                Capability::DenyExec,
                State::Fallback,
                "SIGKILL from sched_process_exec",
            )
            .because(format!(
                "{why}: the exec happens and the process is killed before its first instruction (outcome 'killed', not 'denied')"
            ))
        });
        // Families beyond the process sensor load here, sharing its maps through
        // `sensors.shared()`, each only when the options ask for it.
        match &opts.net {
            Some(net) => match crate::net::load(&sensors.shared(), opts.wakeup_bytes, net) {
                Ok((family, rules, statuses)) => {
                    sensors.add_family(Box::new(family));
                    sensors.net_rules = Some(rules);
                    sensors.health.extend(statuses);
                }
                Err(err) if !net.required => {
                    tracing::error!(%err, "the network sensor could not load: no network event, DNS or network rule on this host");
                    sensors.health.extend(unavailable(
                        crate::net::PROGRAMS,
                        &format!("the network object did not load: {err}"),
                    ));
                }
                Err(err) => return Err(err),
            },
            None => sensors
                .health
                .extend(off(crate::net::PROGRAMS, "turned off (--no-net)")),
        }
        // The kernel is probed once: by the caller (`opts.hooks`), else here, and only when a
        // sensor picks its hooks itself.
        let plan = opts.hooks.unwrap_or_else(|| match &opts.file {
            Some(file) if file.hooks == crate::file::FileHooks::Auto => HookPlan::probe(true),
            _ => HookPlan::default(),
        });
        match &opts.file {
            Some(file) => {
                let mut loaded =
                    crate::file::load(&sensors.shared(), opts.wakeup_bytes, file, &plan);
                let mut lsm_refused = None;
                if let (Err(err), crate::file::FileHooks::Auto, true) =
                    (&loaded, file.hooks, plan.bpf_lsm)
                {
                    // A refused path hook costs only its calls (file::load); a kernel that
                    // refuses the LSM set otherwise still has BPF trampolines: the family runs
                    // on fentry/fexit rather than not at all.
                    tracing::error!(%err, "the file sensor's BPF LSM hook set did not load: file events run on fentry + fexit, and deny rules kill instead of refusing");
                    lsm_refused = Some(err.to_string());
                    let fentry = HookPlan {
                        bpf_lsm: false,
                        fentry: true,
                    };
                    loaded = crate::file::load(&sensors.shared(), opts.wakeup_bytes, file, &fentry);
                }
                match loaded {
                    Ok((family, watch)) => {
                        let mut status = family.status();
                        if let Some(why) = lsm_refused {
                            let rest = status.reason.unwrap_or_default();
                            status.reason = Some(format!(
                                "the BPF LSM hook set was refused ({why}): {}",
                                rest.trim_start_matches("BPF LSM is not active: ")
                            ));
                        }
                        sensors.health.push(status);
                        sensors.file_watch = Some((watch, family.hook_set));
                        sensors.add_family(Box::new(family));
                    }
                    Err(err) => {
                        tracing::error!(%err, "the file sensor could not load: no file, privilege or kernel-integrity event on this host");
                        sensors.health.push(
                            Status::new(Capability::FileEvents, State::Unavailable, "")
                                .because(format!("the file object did not load: {err}")),
                        );
                    }
                }
            }
            None => sensors.health.push(
                Status::new(Capability::FileEvents, State::Off, "")
                    .because("turned off (--no-file-sensor, or no rule or watched path needs it)"),
            ),
        }
        let adopted = std::mem::take(&mut sensors.adopted);
        if !opts.trial {
            sensors.pins(previous, &adopted, opts.keep_enforcing)?;
        }
        match &opts.protect {
            Some(protect) => sensors.load_protect(protect)?,
            None => sensors.health.push(
                Status::new(Capability::SelfProtection, State::Off, "")
                    .because("not asked for (--protect-self), or BPF LSM is not active"),
            ),
        }
        Ok(sensors)
    }

    fn load_protect(&mut self, protect: &crate::protect::ProtectOptions) -> Result<(), LoadError> {
        let dirs: Vec<std::path::PathBuf> = self
            .pinned()
            .map(|p| vec![p.link(""), p.map("")])
            .unwrap_or_default();
        let dirs: Vec<&std::path::Path> = dirs.iter().map(|d| d.as_path()).collect();
        let (mut family, status) = crate::protect::load(&self.shared(), protect, &dirs)?;
        if let Some(pins) = self.pinned() {
            for (name, link) in family.links_mut() {
                link.pin(pins.link(&name))
                    .map_err(|source| LoadError::Pin {
                        what: format!("link {name}"),
                        source,
                    })?;
            }
        }
        // Last: every program, map and link is loaded, attached and pinned by now.
        let objects = family.protect_own_objects()?;
        tracing::info!(
            objects,
            "self-protection covers the agent's BPF programs, maps and links"
        );
        self.health.push(status);
        self.add_family(Box::new(family));
        Ok(())
    }

    /// One status per capability, in [`Capability::ALL`] order: what the agent has on this
    /// kernel with these options.
    pub fn capabilities(&self) -> Vec<Status> {
        let mut out = self.health.clone();
        out.sort_by_key(|s| Capability::ALL.iter().position(|c| *c == s.capability));
        out
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
            self.link_names.push(name);
        }
        if self.lsm_exec {
            let link = progs
                .enforce_exec_lsm
                .attach()
                .map_err(|source| LoadError::Attach {
                    program: "enforce_exec_lsm",
                    source,
                })?;
            self.links.push(link);
            self.link_names.push("enforce_exec_lsm");
        }
        Ok(())
    }

    /// After attach: the old agent's links (if any) go now that the new ones run, so
    /// enforcement never has a gap; then everything is pinned (`keep`) or no pin is left.
    fn pins(
        &mut self,
        previous: Option<Pins>,
        adopted: &[String],
        keep: bool,
    ) -> Result<(), LoadError> {
        if let Some(old) = &previous {
            let links = old.links();
            tracing::info!(dir = %old.dir().display(), links = links.len(), maps = ?adopted, "adopted pinned enforcement from a previous run");
            Pins::remove(&links);
        }
        if !keep {
            if let Some(old) = previous {
                old.remove_all();
            }
            self.pinned = None;
            return Ok(());
        }
        let pins =
            Pins::create().map_err(|e| LoadError::Option(format!("--keep-enforcing: {e}")))?;
        let pin_err = |what: String| {
            move |source| LoadError::Pin {
                what: what.clone(),
                source,
            }
        };
        for (name, link) in self.link_names.iter().zip(self.links.iter_mut()) {
            link.pin(pins.link(name))
                .map_err(pin_err(format!("link {name}")))?;
        }
        for map in self.process.object_mut().maps_mut() {
            let name = map.name().to_string_lossy().into_owned();
            if !ADOPTED_MAPS.contains(&name.as_str()) || adopted.contains(&name) {
                continue;
            }
            // A pin this run did not adopt (it did not fit) gives way to the map in use; the
            // old links that used it are gone already.
            let path = pins.map(&name);
            if path.exists() {
                std::fs::remove_file(&path).map_err(|source| LoadError::Pin {
                    what: format!("map {name} (replacing a pin that does not fit)"),
                    source: source.into(),
                })?;
            }
            let mut map = map;
            map.pin(&path).map_err(pin_err(format!("map {name}")))?;
        }
        tracing::info!(dir = %pins.dir().display(), "enforcement pinned: it stays in force when shrike stops (--keep-enforcing)");
        self.pinned = Some(pins);
        Ok(())
    }

    /// Where enforcement is pinned, when `--keep-enforcing` is on.
    pub fn pinned(&self) -> Option<&Pins> {
        self.pinned.as_ref()
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

    /// The process object's maps (for the enforcement loader and the lineage map).
    pub(crate) fn process_maps(&self) -> &crate::skel::process::ProcessMaps<'static> {
        &self.process.maps
    }

    /// The shared maps, for loading a [`Family`].
    pub fn shared(&self) -> SharedMaps<'_> {
        let maps = &self.process.maps;
        SharedMaps {
            events: maps.events.as_fd(),
            counters: maps.counters.as_fd(),
            procs: maps.procs.as_fd(),
            net_written: maps.net_written.as_fd(),
        }
    }

    /// Keeps a loaded family attached for as long as the sensors live.
    pub fn add_family(&mut self, family: Box<dyn Family>) {
        self.families.push(family);
    }

    /// The network deny rules (a handle the policy engine keeps), when the network sensor is
    /// loaded.
    pub fn net_rules(&self) -> Option<crate::net::NetRules> {
        self.net_rules.clone()
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

    /// Whether exec rules are enforced by the LSM hook (EPERM) rather than SIGKILL.
    pub fn exec_enforced_by_lsm(&self) -> bool {
        self.lsm_exec
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
        if self.lsm_exec {
            hooks.push("lsm/bprm_check_security".into());
        }
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
