//! What the running kernel offers, learned by trying it.
//!
//! Hooks are chosen by probing, never by kernel version number (docs/ARCHITECTURE.md, "The
//! sensor families and their hooks"): program types and helpers are probed with libbpf's
//! feature probes; tp_btf, fentry and BPF LSM are probed by loading, attaching and *triggering*
//! a tiny program from `bpf/probe.bpf.c`, because BPF LSM can load and attach yet never be
//! called when `bpf` is missing from the active LSM list. The result is a [`KernelReport`] that
//! `shrike doctor` prints and the agent uses to pick each capability's hook.

use std::mem::MaybeUninit;
use std::path::PathBuf;

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::OpenObject;

use crate::mounts::{self, SpecialFs};
use crate::skel::probe::ProbeSkelBuilder;

/// Whether something works here, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Yes,
    No(String),
}

impl Support {
    pub fn ok(&self) -> bool {
        matches!(self, Support::Yes)
    }

    fn from_probe(rc: i32, what: &str) -> Support {
        match rc {
            1 => Support::Yes,
            0 => Support::No(format!("{what} is not supported by this kernel")),
            err => Support::No(format!(
                "probing {what} failed: {}",
                std::io::Error::from_raw_os_error(-err)
            )),
        }
    }
}

/// BPF LSM: whether `bpf` is in the active LSM list and whether an LSM program really fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsmSupport {
    /// The active LSM list from securityfs, when readable.
    pub active: Option<String>,
    /// An LSM program loaded, attached and was called.
    pub fires: Support,
}

impl LsmSupport {
    pub fn active(&self) -> bool {
        self.fires.ok()
    }
}

/// Everything `doctor` and hook selection need to know about the running kernel.
#[derive(Debug, Clone)]
pub struct KernelReport {
    pub release: String,
    pub root: Support,
    pub btf: Support,
    pub ringbuf: Support,
    /// tp_btf programs load, attach and fire (sched_process_fork).
    pub tp_btf: Support,
    pub raw_tp: Support,
    /// Classic tracepoint programs; they also need tracefs to attach.
    pub tracepoint: Support,
    /// fentry programs load, attach and fire (BPF trampolines allowed).
    pub fentry: Support,
    pub lsm: LsmSupport,
    pub kprobes: Support,
    pub send_signal: Support,
    /// Other program types the sensors use, by name.
    pub prog_types: Vec<(&'static str, Support)>,
    pub cgroup2: Option<PathBuf>,
    pub lockdown: Option<String>,
    /// Special file systems: where they are, and whether probing had to mount them.
    pub mounts: Vec<(SpecialFs, Result<mounts::Mounted, String>)>,
}

impl KernelReport {
    /// Whether shrike can run at all: root, BTF, a ring buffer and the process sensor's hooks.
    pub fn can_run(&self) -> bool {
        self.root.ok() && self.btf.ok() && self.ringbuf.ok() && self.tp_btf.ok()
    }
}

/// Probes the running kernel. Mounts securityfs if needed (to read the LSM list).
pub fn probe_kernel() -> KernelReport {
    let mounts: Vec<_> = [SpecialFs::Securityfs, SpecialFs::Tracefs, SpecialFs::Bpffs]
        .into_iter()
        .map(|fs| {
            let state = if fs == SpecialFs::Securityfs {
                mounts::ensure(fs).map_err(|e| e.to_string())
            } else {
                mounts::find_mount(fs.fstype())
                    .map(|path| mounts::Mounted {
                        path,
                        mounted_now: false,
                    })
                    .ok_or_else(|| {
                        "not mounted (shrike mounts it when a sensor needs it)".to_string()
                    })
            };
            (fs, state)
        })
        .collect();
    let securityfs = mounts
        .iter()
        .find(|(fs, _)| *fs == SpecialFs::Securityfs)
        .and_then(|(_, m)| m.as_ref().ok().map(|m| m.path.clone()));
    let read_sec = |name: &str| {
        securityfs
            .as_ref()
            .and_then(|dir| std::fs::read_to_string(dir.join(name)).ok())
            .map(|s| s.trim().to_string())
    };

    // SAFETY: geteuid has no preconditions.
    let root = if unsafe { libc::geteuid() } == 0 {
        Support::Yes
    } else {
        Support::No(
            "not running as root: BPF programs need CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN".into(),
        )
    };
    let btf = if std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        Support::Yes
    } else {
        Support::No("no /sys/kernel/btf/vmlinux: the kernel needs CONFIG_DEBUG_INFO_BTF=y".into())
    };
    let triggered = trigger_probes();

    KernelReport {
        release: kernel_release(),
        root,
        btf,
        ringbuf: probe_map(libbpf_sys::BPF_MAP_TYPE_RINGBUF, "BPF ring buffer"),
        tp_btf: triggered.tp_btf,
        raw_tp: probe_prog(libbpf_sys::BPF_PROG_TYPE_RAW_TRACEPOINT, "raw_tp programs"),
        tracepoint: probe_prog(libbpf_sys::BPF_PROG_TYPE_TRACEPOINT, "tracepoint programs"),
        fentry: triggered.fentry,
        lsm: LsmSupport {
            active: read_sec("lsm"),
            fires: triggered.lsm,
        },
        kprobes: if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
            Support::Yes
        } else {
            Support::No("kprobes are not compiled into this kernel".into())
        },
        send_signal: triggered.send_signal,
        prog_types: vec![
            (
                "cgroup sock_addr (connect/bind/sendmsg)",
                probe_prog(
                    libbpf_sys::BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                    "cgroup sock_addr",
                ),
            ),
            (
                "cgroup/sock_create",
                probe_prog(libbpf_sys::BPF_PROG_TYPE_CGROUP_SOCK, "cgroup sock"),
            ),
            (
                "cgroup_skb",
                probe_prog(libbpf_sys::BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb"),
            ),
            (
                "tc (sched_cls)",
                probe_prog(libbpf_sys::BPF_PROG_TYPE_SCHED_CLS, "tc"),
            ),
            (
                "sockops",
                probe_prog(libbpf_sys::BPF_PROG_TYPE_SOCK_OPS, "sockops"),
            ),
            ("xdp", probe_prog(libbpf_sys::BPF_PROG_TYPE_XDP, "xdp")),
        ],
        cgroup2: mounts::find_mount("cgroup2"),
        lockdown: read_sec("lockdown").map(|s| {
            // "none [integrity] confidentiality": the bracketed word is the mode in force.
            s.split_whitespace()
                .find(|w| w.starts_with('['))
                .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
                .unwrap_or(s)
        }),
        mounts,
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn probe_prog(prog_type: libbpf_sys::bpf_prog_type, what: &str) -> Support {
    // SAFETY: a NULL opts pointer is documented as allowed; the call only loads a trivial
    // program and closes it.
    Support::from_probe(
        unsafe { libbpf_sys::libbpf_probe_bpf_prog_type(prog_type, std::ptr::null()) },
        what,
    )
}

fn probe_map(map_type: libbpf_sys::bpf_map_type, what: &str) -> Support {
    // SAFETY: as for probe_prog.
    Support::from_probe(
        unsafe { libbpf_sys::libbpf_probe_bpf_map_type(map_type, std::ptr::null()) },
        what,
    )
}

/// The hooks this kernel calls, as hook selection needs them: probed once at start (or read
/// from a [`KernelReport`] already made) and handed to every sensor in
/// [`SensorOptions::hooks`](crate::loader::SensorOptions::hooks), so no sensor probes again.
/// The default is the plan of a kernel that offers neither (what nothing was probed for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HookPlan {
    /// BPF LSM programs load, attach and are called.
    pub bpf_lsm: bool,
    /// fentry programs load, attach and fire. Probed only where BPF LSM is not active and a
    /// sensor would fall back to fentry (`false` otherwise).
    pub fentry: bool,
}

impl HookPlan {
    /// Probes the running kernel: BPF LSM, then fentry when `fentry_wanted` (a sensor picks
    /// its hooks itself) and BPF LSM is not active.
    pub fn probe(fentry_wanted: bool) -> HookPlan {
        let bpf_lsm = bpf_lsm_active();
        let plan = HookPlan {
            bpf_lsm,
            fentry: fentry_wanted && !bpf_lsm && fentry_works(),
        };
        tracing::debug!(?plan, "probed the kernel's hooks");
        plan
    }

    /// The plan a full probe already found (`shrike doctor`), without probing again.
    pub fn from_report(report: &KernelReport) -> HookPlan {
        HookPlan {
            bpf_lsm: report.lsm.active(),
            fentry: report.fentry.ok(),
        }
    }
}

/// Whether BPF LSM programs load, attach and are called here (the one probe hook selection
/// needs at start-up; `probe_kernel` runs it among the others).
fn bpf_lsm_active() -> bool {
    crate::logging::quietly(|| trial(Trial::Lsm)).ok()
}

/// Whether fentry programs load, attach and fire here (BPF trampolines are allowed).
fn fentry_works() -> bool {
    crate::logging::quietly(|| trial(Trial::Fentry)).ok()
}

struct Triggered {
    tp_btf: Support,
    fentry: Support,
    lsm: Support,
    send_signal: Support,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trial {
    TpBtf,
    Fentry,
    Lsm,
    SendSignal,
}

fn trigger_probes() -> Triggered {
    // Failures are expected answers here, not errors: keep libbpf's messages out of the log.
    crate::logging::quietly(|| Triggered {
        tp_btf: trial(Trial::TpBtf),
        fentry: trial(Trial::Fentry),
        lsm: trial(Trial::Lsm),
        send_signal: trial(Trial::SendSignal),
    })
}

/// Loads only the program for `which`, attaches it, triggers it from this process and checks
/// that it counted the call.
fn trial(which: Trial) -> Support {
    match run_trial(which) {
        Ok(0) => Support::No(match which {
            Trial::Lsm => "BPF LSM programs load and attach but are never called: 'bpf' is not in the active LSM list (add it to lsm= on the kernel command line)".into(),
            _ => "the program attached but was never called".into(),
        }),
        Ok(_) => Support::Yes,
        Err(err) => Support::No(err),
    }
}

fn run_trial(which: Trial) -> Result<u64, String> {
    // Declared first, dropped last: the skeleton below is opened from these bytes.
    let _lease = crate::skel::probe::OBJECT.lease();
    let mut storage = MaybeUninit::<OpenObject>::uninit();
    let mut open = ProbeSkelBuilder::default()
        .open(&mut storage)
        .map_err(|e| format!("opening the probe object: {e}"))?;
    open.progs
        .probe_tp_btf
        .set_autoload(matches!(which, Trial::TpBtf));
    open.progs
        .probe_fentry
        .set_autoload(matches!(which, Trial::Fentry));
    open.progs
        .probe_lsm
        .set_autoload(matches!(which, Trial::Lsm));
    if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
        rodata.cfg_probe_tgid = std::process::id();
    }
    let skel = open.load().map_err(|e| describe_load_error(which, &e))?;
    let prog = match which {
        Trial::TpBtf => &skel.progs.probe_tp_btf,
        Trial::Fentry => &skel.progs.probe_fentry,
        Trial::Lsm => &skel.progs.probe_lsm,
        Trial::SendSignal => &skel.progs.probe_send_signal,
    };
    let _link = prog.attach().map_err(|e| format!("attach refused: {e}"))?;
    match which {
        // sched_process_fork fires for threads too.
        Trial::TpBtf | Trial::SendSignal => {
            let _ = std::thread::spawn(|| ()).join();
        }
        // security_file_open / lsm file_open fire on every open.
        Trial::Fentry | Trial::Lsm => {
            let _ = std::fs::File::open("/dev/null");
        }
    }
    let bss = skel
        .maps
        .bss_data
        .as_deref()
        .ok_or("probe object has no .bss")?;
    Ok(match which {
        Trial::TpBtf => bss.tp_btf_calls,
        Trial::Fentry => bss.fentry_calls,
        Trial::Lsm => bss.lsm_calls,
        Trial::SendSignal if bss.send_signal_calls > 0 && bss.send_signal_ret != 0 => {
            return Err(format!("bpf_send_signal returned {}", bss.send_signal_ret));
        }
        Trial::SendSignal => bss.send_signal_calls,
    })
}

fn describe_load_error(which: Trial, err: &libbpf_rs::Error) -> String {
    let text = err.to_string();
    let eperm = text.contains("Operation not permitted")
        || text.contains("EPERM")
        || text.contains("os error 1)");
    match which {
        Trial::Fentry | Trial::Lsm if eperm => {
            format!("refused with EPERM: this kernel blocks BPF trampolines ({text})")
        }
        _ => format!("load refused: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libbpf_rs::skel::Skel;

    /// The skeleton's own `attach` (build.rs rewrites the generator's into one loop over the
    /// programs) hands each link to the field of its program: with only the two tracepoint
    /// programs loaded, their fields hold links and the LSM and fentry fields none.
    #[test]
    fn skeleton_attach_gives_each_program_its_own_link() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        // Declared first, dropped last: the skeleton below is opened from these bytes.
        let _lease = crate::skel::probe::OBJECT.lease();
        let mut storage = MaybeUninit::<OpenObject>::uninit();
        let mut open = ProbeSkelBuilder::default().open(&mut storage).unwrap();
        open.progs.probe_lsm.set_autoload(false);
        open.progs.probe_fentry.set_autoload(false);
        let mut skel = match open.load() {
            Ok(skel) => skel,
            Err(err) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: cannot load the probe object: {err}");
                return;
            }
            Err(err) => panic!("loading the probe object: {err}"),
        };
        skel.attach().unwrap();
        assert!(skel.links.probe_tp_btf.is_some());
        assert!(skel.links.probe_send_signal.is_some());
        assert!(skel.links.probe_lsm.is_none());
        assert!(skel.links.probe_fentry.is_none());
    }
}
