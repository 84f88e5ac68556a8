//! `shrike doctor`: what this kernel offers, which hook each capability will use, and what
//! degrades.
//!
//! The hook plan is data — one row per capability with its preferred hook, its fallback and
//! the kernel feature each needs — so adding a sensor adds a row, not a branch. Every verdict
//! comes from [`shrike_bpf::probe::probe_kernel`], which tries things rather than reading the
//! kernel version.

use std::fmt::Write as _;

use shrike_bpf::mounts::SpecialFs;
use shrike_bpf::probe::{KernelReport, Support};

/// A kernel feature a hook needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    TpBtf,
    BpfLsm,
    RawTp,
    CgroupSockAddr,
    Tc,
    CgroupSkb,
    SendSignal,
}

impl Feature {
    fn available(self, r: &KernelReport) -> bool {
        let prog = |name: &str| {
            r.prog_types
                .iter()
                .any(|(n, s)| n.starts_with(name) && s.ok())
        };
        match self {
            Feature::TpBtf => r.tp_btf.ok(),
            Feature::BpfLsm => r.lsm.active(),
            Feature::RawTp => r.raw_tp.ok(),
            Feature::CgroupSockAddr => prog("cgroup sock_addr"),
            Feature::Tc => prog("tc"),
            Feature::CgroupSkb => prog("cgroup_skb"),
            Feature::SendSignal => r.send_signal.ok(),
        }
    }
}

/// One capability's hook choice.
pub struct HookRow {
    pub capability: &'static str,
    pub preferred: (&'static str, Feature),
    pub fallback: Option<(&'static str, Feature)>,
    /// What is weaker on the fallback path.
    pub degrades: &'static str,
    /// Whether this build has the sensor yet.
    pub built: bool,
}

/// The hook plan of ARCHITECTURE.md, "Hooks: what exists on which kernel".
pub const HOOK_PLAN: &[HookRow] = &[
    HookRow {
        capability: "exec / fork / exit",
        preferred: ("tp_btf sched_process_exec/fork/exit", Feature::TpBtf),
        fallback: None,
        degrades: "",
        built: true,
    },
    HookRow {
        capability: "file, privilege, kernel-integrity events",
        preferred: (
            "BPF LSM path/mount/cred hooks + fexit on the watched syscalls (observe only)",
            Feature::BpfLsm,
        ),
        fallback: Some((
            "tp_btf sys_enter + sys_exit behind a syscall dispatch table",
            Feature::TpBtf,
        )),
        degrades: "every system call pays the syscall-tracepoint tax while the sensor is armed (--no-file-sensor disarms it); unlink/rename/chmod/chown/link/mount paths are the caller's strings made absolute against the cwd or dirfd, so a symlinked directory is not followed and a path with '..', '//' or '/./' passes the filter unfiltered; 32-bit (ia32) syscalls are not decoded",
        built: true,
    },
    HookRow {
        capability: "deny exec",
        preferred: ("lsm/bprm_check_security returns -EPERM", Feature::BpfLsm),
        fallback: Some(("SIGKILL from sched_process_exec (the new image never runs)", Feature::SendSignal)),
        degrades: "exec succeeds and the process is killed: outcome 'killed', not 'denied'",
        built: true,
    },
    HookRow {
        capability: "deny file open",
        preferred: ("lsm/file_open returns -EPERM", Feature::BpfLsm),
        fallback: Some(("SIGKILL at the syscall", Feature::SendSignal)),
        degrades: "a create may already have happened: outcome 'killed', not 'denied'",
        built: false,
    },
    HookRow {
        capability: "deny connect / bind / UDP send",
        preferred: ("cgroup connect4/6, bind4/6, sendmsg4/6", Feature::CgroupSockAddr),
        fallback: None,
        degrades: "",
        built: true,
    },
    HookRow {
        capability: "packets, flows and DNS",
        preferred: ("tc (tcx or clsact) and cgroup_skb", Feature::Tc),
        fallback: Some(("cgroup_skb only", Feature::CgroupSkb)),
        degrades: "no ingress drop before the socket",
        built: true,
    },
];

fn mark(s: &Support) -> (&'static str, String) {
    match s {
        Support::Yes => ("ok", String::new()),
        Support::No(why) => ("no", why.clone()),
    }
}

/// Renders the report. Returns the text and whether shrike can run here.
pub fn render(r: &KernelReport) -> (String, bool) {
    let mut out = String::new();
    let line = |out: &mut String, s: &Support, what: &str| {
        let (m, why) = mark(s);
        let _ = if why.is_empty() {
            writeln!(out, "  {m:<4} {what}")
        } else {
            writeln!(out, "  {m:<4} {what}: {why}")
        };
    };
    let _ = writeln!(out, "shrike doctor: kernel {}\n", r.release);

    let _ = writeln!(out, "Required");
    line(&mut out, &r.root, "running as root");
    line(&mut out, &r.btf, "kernel BTF at /sys/kernel/btf/vmlinux");
    line(&mut out, &r.ringbuf, "BPF ring buffer");
    line(&mut out, &r.tp_btf, "tp_btf programs load, attach and fire");

    let _ = writeln!(out, "\nKernel features");
    line(&mut out, &r.raw_tp, "raw_tp programs");
    line(
        &mut out,
        &r.tracepoint,
        "tracepoint programs (attach also needs tracefs)",
    );
    line(&mut out, &r.fentry, "fentry/fexit (BPF trampolines)");
    line(&mut out, &r.lsm.fires, "BPF LSM programs are called");
    let _ = writeln!(
        out,
        "       active LSMs: {}",
        r.lsm
            .active
            .as_deref()
            .unwrap_or("unknown (securityfs unreadable)")
    );
    line(&mut out, &r.kprobes, "kprobes");
    line(&mut out, &r.send_signal, "bpf_send_signal");
    for (name, support) in &r.prog_types {
        line(&mut out, support, name);
    }
    let _ = writeln!(
        out,
        "  {:<4} cgroup v2: {}",
        if r.cgroup2.is_some() { "ok" } else { "no" },
        r.cgroup2.as_ref().map_or(
            "not mounted (container and cgroup scoping unavailable)".to_string(),
            |p| p.display().to_string()
        )
    );
    let _ = writeln!(
        out,
        "       lockdown: {}",
        r.lockdown.as_deref().unwrap_or("unknown")
    );

    let _ = writeln!(out, "\nFile systems");
    for (fs, state) in &r.mounts {
        let _ = match state {
            Ok(m) if m.mounted_now => writeln!(
                out,
                "  {:<11} mounted now at {} (it was not mounted)",
                fs.fstype(),
                m.path.display()
            ),
            Ok(m) => writeln!(out, "  {:<11} {}", fs.fstype(), m.path.display()),
            Err(why) => writeln!(out, "  {:<11} {why}", fs.fstype()),
        };
        if *fs == SpecialFs::Tracefs && state.is_err() {
            let _ = writeln!(
                out,
                "              (tp_btf and raw_tp hooks do not need it)"
            );
        }
    }

    let _ = writeln!(out, "\nHooks");
    let mut degraded = Vec::new();
    for row in HOOK_PLAN {
        let (hook, status) = if row.preferred.1.available(r) {
            (row.preferred.0, "preferred".to_string())
        } else if let Some((fallback, _)) = row.fallback.filter(|(_, f)| f.available(r)) {
            degraded.push(format!("{}: {}", row.capability, row.degrades));
            (fallback, "fallback".to_string())
        } else {
            degraded.push(format!("{}: unavailable on this kernel", row.capability));
            ("none", "unavailable".to_string())
        };
        let built = if row.built {
            ""
        } else {
            " [sensor not built yet]"
        };
        let _ = writeln!(out, "  {:<42} {:<11} {hook}{built}", row.capability, status);
    }
    if !degraded.is_empty() {
        let _ = writeln!(out, "\nWhat degrades here");
        for d in &degraded {
            let _ = writeln!(out, "  - {d}");
        }
    }
    let can_run = r.can_run();
    let _ = writeln!(
        out,
        "\n{}",
        if can_run {
            "shrike can run on this kernel."
        } else {
            "shrike cannot run here: fix the 'Required' items marked 'no'."
        }
    );
    (out, can_run)
}
