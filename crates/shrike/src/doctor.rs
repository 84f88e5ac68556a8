//! `shrike doctor`: what this kernel offers, and what shrike really gets on it.
//!
//! Two parts. The kernel features come from [`shrike_bpf::probe::probe_kernel`], which tries
//! things rather than reading the kernel version. The capabilities come from loading the very
//! objects `shrike run` would load with the same options (the built-in defaults unless told
//! otherwise): a kernel whose verifier refuses one of shrike's programs shows it here as that
//! capability degraded or unavailable, with the verifier's words — a probe program that loads
//! proves nothing about ours. The programs are detached before `doctor` exits, and another
//! agent's pinned enforcement is left alone.

use std::fmt::Write as _;

use shrike_bpf::capability::{State, Status};
use shrike_bpf::mounts::SpecialFs;
use shrike_bpf::probe::{KernelReport, Support};
use shrike_bpf::Sensors;

use crate::health;
use crate::RunConfig;

fn mark(s: &Support) -> (&'static str, String) {
    match s {
        Support::Yes => ("ok", String::new()),
        Support::No(why) => ("no", why.clone()),
    }
}

/// Renders the kernel features. Returns the text and whether shrike can run here.
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
    let _ = writeln!(out, "shrike doctor: kernel {}", r.release);
    let _ = writeln!(
        out,
        "BPF objects: {}\n",
        shrike_bpf::variant::current().describe()
    );

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

    let can_run = r.can_run();
    if !can_run {
        let _ = writeln!(
            out,
            "\nshrike cannot run here: fix the 'Required' items marked 'no'."
        );
    }
    (out, can_run)
}

/// The whole doctor: the kernel features, then the capabilities `run` would have with this
/// configuration, from a trial load of the real objects. Returns the text and whether
/// everything the configuration needs is in force (on its preferred hook or its fallback).
pub fn run(report: &KernelReport, config: &RunConfig) -> (String, bool) {
    let (mut out, can_run) = render(report);
    if !can_run {
        return (out, false);
    }
    let policy = match config.policy.compile() {
        Ok(policy) => policy,
        Err(diags) => {
            let _ = writeln!(
                out,
                "\nThe policy does not compile:\n{}",
                shrike_rules::text::render_diagnostics(&diags)
            );
            return (out, false);
        }
    };
    let plan = shrike_bpf::probe::HookPlan::from_report(report);
    let mut opts = crate::agent::sensor_options(config, &policy, Some(plan));
    opts.trial = true;
    let (statuses, attached) = match Sensors::load(&opts) {
        Ok(sensors) => (sensors.capabilities(), sensors.attached()),
        Err(err) => {
            let _ = writeln!(
                out,
                "\nThe sensors did not load: {err}\nshrike cannot run here."
            );
            return (out, false);
        }
    };
    let missing = health::missing(policy.rules(), &statuses);
    let ok = render_capabilities(&mut out, &statuses, &missing);
    let unseen: Vec<&str> = statuses
        .iter()
        .flat_map(|s| s.unseen.iter().flat_map(|u| u.calls.iter().copied()))
        .collect();
    render_hooked_calls(&mut out, &attached, &unseen);
    (out, ok)
}

/// The system calls the file sensor hooks (on the fentry, LSM and per-syscall tracepoint sets
/// only the armed ones; the raw pair runs on every call), from the hooks attached, and the
/// armed ones this kernel lacks (`unseen`).
fn render_hooked_calls(out: &mut String, attached: &[String], unseen: &[&str]) {
    if attached.iter().any(|h| h == "tp_btf/sys_enter") {
        let _ = writeln!(
            out,
            "
System calls the file sensor hooks: every one (tp_btf/sys_enter + sys_exit; the armed ones are decided in its dispatch table)"
        );
        return;
    }
    let mut calls: Vec<&str> = attached
        .iter()
        .filter_map(|h| {
            h.strip_prefix("tracepoint/syscalls/sys_exit_")
                .or_else(|| h.strip_prefix("fexit/__x64_sys_"))
        })
        .collect();
    calls.sort_unstable();
    calls.dedup();
    if !calls.is_empty() {
        let _ = writeln!(
            out,
            "
System calls the file sensor hooks ({}; no other pays a program): {}",
            calls.len(),
            calls.join(", ")
        );
    }
    if !unseen.is_empty() {
        let _ = writeln!(
            out,
            "Armed, but not in this kernel (built without them: every call fails with ENOSYS; not hooked, attempts unseen — --file-hooks raw-tracepoint sees them): {}",
            unseen.join(", ")
        );
    }
}

/// One row per capability, what degrades, and the verdict. Returns whether nothing that was
/// asked for is degraded or unavailable.
pub fn render_capabilities(
    out: &mut String,
    statuses: &[Status],
    missing: &[health::Missing],
) -> bool {
    let _ = writeln!(
        out,
        "\nCapabilities (the programs `shrike run` loads, loaded and attached now)"
    );
    for s in statuses {
        let hook = if s.hook.is_empty() {
            "-"
        } else {
            s.hook.as_str()
        };
        let _ = writeln!(
            out,
            "  {:<12} {:<44} {hook}",
            s.state.as_str(),
            s.capability.describe(),
        );
    }
    let notes: Vec<&Status> = statuses
        .iter()
        .filter(|s| s.state != State::Ok && s.reason.is_some())
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nWhy");
        for s in notes {
            let _ = writeln!(
                out,
                "  - {} ({}): {}",
                s.capability.describe(),
                s.state.as_str(),
                s.reason.as_deref().unwrap_or("")
            );
        }
    }
    if !missing.is_empty() {
        let _ = writeln!(out, "\nRules not in force with these capabilities");
        for m in missing {
            match health::own_reason(m, statuses) {
                // The capability is here, but the rule's events are not.
                Some(reason) => {
                    let _ = writeln!(out, "  - {}: {reason}", m.rule_id);
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  - {} needs {} ({})",
                        m.rule_id,
                        m.capability.describe(),
                        m.state.as_str()
                    );
                }
            }
        }
    }
    let broken: Vec<&Status> = statuses
        .iter()
        .filter(|s| matches!(s.state, State::Degraded | State::Unavailable))
        .collect();
    if broken.is_empty() {
        let _ = writeln!(out, "\nshrike can run on this kernel with these options: every capability they ask for is in force.");
        true
    } else {
        let names: Vec<&str> = broken.iter().map(|s| s.capability.name()).collect();
        let _ = writeln!(
            out,
            "\nDEGRADED: {} could not load on this kernel (see Why). `shrike run` refuses to start when a rule needs one of them; --allow-degraded runs without those rules.",
            names.join(", ")
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-syscall hooks are listed by call, once each (enter and exit, fentry and fexit are
    /// one call); the raw pair is reported as every call.
    #[test]
    fn the_hooked_calls_are_listed_once_each() {
        let attached: Vec<String> = [
            "tp_btf/sched_process_exec",
            "tracepoint/syscalls/sys_enter_unlinkat",
            "tracepoint/syscalls/sys_exit_unlinkat",
            "tracepoint/syscalls/sys_exit_openat",
            "fexit/__x64_sys_ptrace",
            "fentry/__x64_sys_ptrace",
        ]
        .map(String::from)
        .to_vec();
        let mut out = String::new();
        render_hooked_calls(&mut out, &attached, &["init_module", "finit_module"]);
        assert!(
            out.contains("(3; no other pays a program): openat, ptrace, unlinkat"),
            "{out}"
        );
        assert!(
            out.contains("not in this kernel") && out.contains("init_module, finit_module"),
            "{out}"
        );

        let mut out = String::new();
        render_hooked_calls(
            &mut out,
            &["tp_btf/sys_enter".into(), "tp_btf/sys_exit".into()],
            &[],
        );
        assert!(out.contains("every one"), "{out}");
    }
}
