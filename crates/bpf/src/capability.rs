//! Capabilities: what the agent can see and enforce, which BPF programs serve each one, and the
//! state each is in on this kernel.
//!
//! Kernels differ even at one version number (two builds of 6.18.44 disagree about whether
//! `socket->sk` is a trusted pointer), so a program one kernel refuses must cost the capability
//! it serves and nothing else. Each family lists its programs with the capability they serve
//! ([`ProgramCap`]); [`load_degrading`] loads the family's object, and when the verifier (or
//! libbpf, or the kernel's BTF) refuses an optional program it logs the refusal once at ERROR —
//! program, the verifier's last lines, the capability lost — disables that program and loads
//! again. [`statuses`] turns what loaded into one [`Status`] per capability, which `doctor`
//! prints, the agent reports in its `agent_health` event, and `run` checks against the rules
//! of the policy before it starts.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::OpenObject;

use crate::file::FileEventKind;
use crate::loader::LoadError;
use crate::variant::{Lease, Object};

/// One thing the agent can see or do. The names ([`Capability::name`]) are part of the
/// `agent_health` event contract: never renamed, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// process_exec, process_fork, process_exit.
    ProcessEvents,
    /// Exec deny rules: EPERM from the LSM hook, else SIGKILL at exec.
    DenyExec,
    /// File, privilege and kernel-integrity events (and their deny rules).
    FileEvents,
    /// net_connect and net_bind events and the connect / bind / UDP send deny rules.
    NetSockets,
    /// The port a bind really got (post_bind).
    NetBindResults,
    /// TCP outcomes: a connect's result, net_listen, net_accept, net_close with byte counts.
    NetTcpState,
    /// The owners of sockets opened before the agent started.
    NetOlderSockets,
    /// DNS queries and answers.
    NetDns,
    /// Inbound packet deny rules at tc.
    NetIngressDeny,
    /// Refusing signals, ptrace and BPF access aimed at the agent (BPF LSM).
    SelfProtection,
}

impl Capability {
    /// Every capability, in report order.
    pub const ALL: [Capability; 10] = [
        Capability::ProcessEvents,
        Capability::DenyExec,
        Capability::FileEvents,
        Capability::NetSockets,
        Capability::NetBindResults,
        Capability::NetTcpState,
        Capability::NetOlderSockets,
        Capability::NetDns,
        Capability::NetIngressDeny,
        Capability::SelfProtection,
    ];

    /// The stable name used in events, logs and `doctor`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::ProcessEvents => "process_events",
            Capability::DenyExec => "deny_exec",
            Capability::FileEvents => "file_events",
            Capability::NetSockets => "net_sockets",
            Capability::NetBindResults => "net_bind_results",
            Capability::NetTcpState => "net_tcp_state",
            Capability::NetOlderSockets => "net_older_sockets",
            Capability::NetDns => "net_dns",
            Capability::NetIngressDeny => "net_ingress_deny",
            Capability::SelfProtection => "self_protection",
        }
    }

    /// What a person reads in `doctor`.
    pub fn describe(self) -> &'static str {
        match self {
            Capability::ProcessEvents => "exec / fork / exit events",
            Capability::DenyExec => "deny exec",
            Capability::FileEvents => "file, privilege, kernel-integrity events",
            Capability::NetSockets => "connect / bind / UDP send events and deny",
            Capability::NetBindResults => "bind results (the port really bound)",
            Capability::NetTcpState => "TCP connect result, listen, accept, close",
            Capability::NetOlderSockets => "owners of sockets older than the agent",
            Capability::NetDns => "DNS queries and answers",
            Capability::NetIngressDeny => "inbound packet deny (tc)",
            Capability::SelfProtection => "self-protection",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a capability stands on this kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Every program serving it loaded and attached, on the preferred hook.
    Ok,
    /// Fully working on the designed fallback hook, with a weaker outcome (e.g. SIGKILL
    /// instead of EPERM). `reason` says what is weaker.
    Fallback,
    /// Some of its programs were refused: it works in part. `reason` says what is missing.
    Degraded,
    /// None of its programs could run: the agent does not have it.
    Unavailable,
    /// Not asked for (an option turned it off, or nothing needs it).
    Off,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Fallback => "fallback",
            State::Degraded => "degraded",
            State::Unavailable => "unavailable",
            State::Off => "off",
        }
    }

    /// Whether what the capability promises holds in full (possibly on a fallback hook).
    pub fn in_force(self) -> bool {
        matches!(self, State::Ok | State::Fallback)
    }
}

/// One capability's state, the hook it uses and why it is not `Ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub capability: Capability,
    pub state: State,
    /// The hooks in use (empty when unavailable or off).
    pub hook: String,
    /// Why it is not `Ok`: the program refused and the verifier's words, the fallback's
    /// weakness, or the option that turned it off.
    pub reason: Option<String>,
    /// Kinds it is armed for that this kernel cannot produce (file events only).
    pub unseen: Vec<Unseen>,
}

/// An armed kind of events none of whose system calls the kernel has: it was built without
/// them (the module calls without module support), so every call fails with ENOSYS, has no
/// trace event and no entry point to hook, and only a program on every system call (the raw
/// pair) would see the attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unseen {
    pub kind: FileEventKind,
    /// Its system calls, all missing here.
    pub calls: Vec<&'static str>,
}

impl Status {
    pub fn new(capability: Capability, state: State, hook: impl Into<String>) -> Self {
        Status {
            capability,
            state,
            hook: hook.into(),
            reason: None,
            unseen: Vec::new(),
        }
    }

    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// A program of a family and the capability it serves; `hook` is what `doctor` shows.
#[derive(Debug, Clone, Copy)]
pub struct ProgramCap {
    pub program: &'static str,
    pub hook: &'static str,
    pub capability: Capability,
}

/// A program that could not run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub program: String,
    pub reason: String,
}

/// The program libbpf blamed in a failed object load, and the reason in a line: the error
/// and the verifier's last lines. `None` when the failure was not one program's.
pub fn refused_program(lines: &[String]) -> Option<Refusal> {
    let program = lines.iter().rev().find_map(|line| {
        let rest = line.strip_prefix("prog '")?;
        let (name, tail) = rest.split_once("':")?;
        tail.contains("fail").then(|| name.to_string())
    })?;
    let verifier: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with(&format!("prog '{program}':")))
        .filter(|l| l.contains("BEGIN PROG LOAD LOG"))
        .flat_map(|l| l.lines())
        .filter(|l| {
            let l = l.trim();
            !l.is_empty()
                && !l.starts_with(';')
                && !l.contains("PROG LOAD LOG")
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
        })
        .collect();
    let prefix = format!("prog '{program}':");
    let error = lines
        .iter()
        .filter(|l| l.starts_with(&prefix) && !l.contains("PROG LOAD LOG"))
        .map(|l| l[prefix.len()..].trim().to_string())
        .next()
        .unwrap_or_else(|| "refused".to_string());
    let tail: Vec<&str> = verifier.iter().rev().take(3).rev().copied().collect();
    let reason = if tail.is_empty() {
        error
    } else {
        format!("{error}; verifier: {}", tail.join(" | "))
    };
    Some(Refusal { program, reason })
}

/// A skeleton and the lease on the object bytes it was opened from
/// ([`crate::variant::Lease`]), dropped in that order. It derefs to the skeleton.
pub struct Leased<S> {
    // Declared first: fields drop in declaration order, so the skeleton goes before the bytes.
    skel: S,
    _lease: Lease,
}

impl<S> Leased<S> {
    /// The skeleton made into another under the same lease (an open one into a loaded one).
    pub fn try_map<T, E>(self, f: impl FnOnce(S) -> Result<T, E>) -> Result<Leased<T>, E> {
        let Leased { skel, _lease } = self;
        Ok(Leased {
            skel: f(skel)?,
            _lease,
        })
    }
}

impl<S> Deref for Leased<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.skel
    }
}

impl<S> DerefMut for Leased<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.skel
    }
}

/// Opens a family's skeleton from its embedded `object` (the generated module's `OBJECT`), for
/// [`load_degrading`]'s `open`. The skeleton borrows its object storage for as long as it lives:
/// one small allocation per open, kept for the life of the process; the object's inflated
/// bytes live as long as a skeleton opened from them.
pub fn open_skel<B: SkelBuilder<'static>>(
    builder: B,
    object: &'static Object,
    name: &'static str,
) -> Result<Leased<B::Output>, LoadError> {
    let lease = object.lease();
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let skel = builder.open(storage).map_err(|source| LoadError::Open {
        object: name,
        source,
    })?;
    Ok(Leased {
        skel,
        _lease: lease,
    })
}

/// Turns off the programs named in `disabled` before load.
pub fn disable(object: &mut OpenObject, disabled: &[Refusal]) {
    for mut prog in object.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        if disabled.iter().any(|r| r.program == name) {
            prog.set_autoload(false);
        }
    }
}

/// Loads a family's object, giving up one optional program at a time when the kernel refuses
/// it. `open` opens and configures a fresh object with the given programs turned off (call
/// [`disable`]); a refusal of a program not in `optional`, or a failure that names no program,
/// fails the load with libbpf's messages logged as they came.
pub fn load_degrading<'obj, O: OpenSkel<'obj>>(
    object: &'static str,
    optional: &[ProgramCap],
    mut open: impl FnMut(&[Refusal]) -> Result<Leased<O>, LoadError>,
) -> Result<(Leased<O::Output>, Vec<Refusal>), LoadError> {
    let mut refused: Vec<Refusal> = Vec::new();
    loop {
        let skel = open(&refused)?;
        let (result, lines) = crate::logging::capturing(|| skel.try_map(OpenSkel::load));
        let source = match result {
            Ok(loaded) => return Ok((loaded, refused)),
            Err(source) => source,
        };
        let blamed = refused_program(&lines).filter(|r| {
            optional.iter().any(|p| p.program == r.program)
                && !refused.iter().any(|d| d.program == r.program)
        });
        let Some(refusal) = blamed else {
            crate::logging::replay(&lines);
            return Err(LoadError::Load { object, source });
        };
        let capability = optional
            .iter()
            .find(|p| p.program == refusal.program)
            .map(|p| p.capability);
        tracing::error!(
            object,
            program = %refusal.program,
            capability = capability.map_or("?", Capability::name),
            reason = %refusal.reason,
            "the kernel refused a BPF program: the sensor loads without it, and the capability it serves is degraded or lost (doctor and the agent_health event say which)"
        );
        refused.push(refusal);
    }
}

/// Records an optional program whose attach failed: logged at ERROR, kept as a refusal.
pub fn attach_refused(
    refused: &mut Vec<Refusal>,
    table: &[ProgramCap],
    program: &str,
    err: &dyn fmt::Display,
) {
    let capability = table
        .iter()
        .find(|p| p.program == program)
        .map_or("?", |p| p.capability.name());
    tracing::error!(program, capability, %err, "a BPF program could not be attached: the capability it serves is lost");
    refused.push(Refusal {
        program: program.to_string(),
        reason: format!("attach: {err}"),
    });
}

/// One status per capability in `table`: `Ok` when all its programs run (those in `off` are
/// not counted), `Degraded` when some were refused, `Unavailable` when none runs, `Off` when
/// every program was turned off by an option.
pub fn statuses(table: &[ProgramCap], refused: &[Refusal], off: &[&str]) -> Vec<Status> {
    let mut caps: Vec<Capability> = Vec::new();
    for p in table {
        if !caps.contains(&p.capability) {
            caps.push(p.capability);
        }
    }
    caps.into_iter()
        .map(|cap| {
            let progs: Vec<&ProgramCap> = table
                .iter()
                .filter(|p| p.capability == cap && !off.contains(&p.program))
                .collect();
            if progs.is_empty() {
                return Status::new(cap, State::Off, "");
            }
            let (lost, running): (Vec<&&ProgramCap>, Vec<&&ProgramCap>) = progs
                .iter()
                .partition(|p| refused.iter().any(|r| r.program == p.program));
            let mut hooks: Vec<&str> = running.iter().map(|p| p.hook).collect();
            hooks.dedup();
            let why = lost
                .iter()
                .filter_map(|p| refused.iter().find(|r| r.program == p.program))
                .map(|r| format!("{} refused: {}", r.program, r.reason))
                .collect::<Vec<_>>()
                .join("; ");
            match (lost.is_empty(), running.is_empty()) {
                (true, _) => Status::new(cap, State::Ok, hooks.join(", ")),
                (false, true) => Status::new(cap, State::Unavailable, "").because(why),
                (false, false) => Status::new(cap, State::Degraded, hooks.join(", ")).because(why),
            }
        })
        .collect()
}

/// The capabilities the degradation tests ask the verifier to refuse: the names listed in
/// `SHRIKE_FAULT_REFUSE` (comma-separated, e.g. `net_dns`). Each family turns the ones it can
/// into its object's `cfg_fault_refuse` bits (bpf/lib/fault.h), so the kernel really rejects
/// those programs at load. Empty in every normal run.
pub fn fault_injected() -> Vec<Capability> {
    let Ok(list) = std::env::var("SHRIKE_FAULT_REFUSE") else {
        return Vec::new();
    };
    list.split(',')
        .filter_map(|name| {
            Capability::ALL
                .into_iter()
                .find(|c| c.name() == name.trim())
        })
        .collect()
}

/// Whether a test asks for `program`'s attach to fail: it is named in `SHRIKE_FAULT_ATTACH`
/// (comma-separated program names). The family then takes its attach-failure path as it would
/// for the kernel's refusal. Never set in a normal run.
pub fn attach_fault_injected(program: &str) -> bool {
    std::env::var("SHRIKE_FAULT_ATTACH")
        .is_ok_and(|list| list.split(',').any(|name| name.trim() == program))
}

/// Every capability of `table` as unavailable, for a family whose object did not load.
pub(crate) fn unavailable(table: &[ProgramCap], why: &str) -> Vec<Status> {
    let refused: Vec<Refusal> = table
        .iter()
        .map(|p| Refusal {
            program: p.program.to_string(),
            reason: why.to_string(),
        })
        .collect();
    let mut out = statuses(table, &refused, &[]);
    for s in &mut out {
        s.reason = Some(why.to_string());
    }
    out
}

/// Every capability of `table` as off.
pub(crate) fn off(table: &[ProgramCap], why: &str) -> Vec<Status> {
    let names: Vec<&str> = table.iter().map(|p| p.program).collect();
    statuses(table, &[], &names)
        .into_iter()
        .map(|s| s.because(why))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| s.to_string()).collect()
    }

    /// The libbpf messages of the refusal seen on a 6.18.44 build: the blamed program and the
    /// verifier's error line are found, the instruction dump is not repeated.
    #[test]
    fn a_verifier_refusal_names_the_program_and_the_verifiers_last_words() {
        let log = lines(&[
            "prog 'net_seed_owners': BPF program load failed: -EACCES",
            "prog 'net_seed_owners': -- BEGIN PROG LOAD LOG --\n0: R1=ctx() R10=fp0\n8: (15) if r6 == 0x0 goto pc+88\nR2 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_\nprocessed 34 insns (limit 1000000) max_states_per_insn 0\n-- END PROG LOAD LOG --",
            "prog 'net_seed_owners': failed to load: -EACCES",
            "failed to load object 'net_bpf'",
            "failed to load BPF skeleton 'net_bpf': -EACCES",
        ]);
        let r = refused_program(&log).expect("a program is blamed");
        assert_eq!(r.program, "net_seed_owners");
        assert!(
            r.reason
                .starts_with("BPF program load failed: -EACCES; verifier: "),
            "{}",
            r.reason
        );
        assert!(
            r.reason
                .ends_with("R2 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_"),
            "{}",
            r.reason
        );
        assert!(!r.reason.contains("processed"), "{}", r.reason);
    }

    /// A failure that is not one program's (a map that cannot be created) blames nobody, so
    /// the load fails instead of turning programs off one by one.
    #[test]
    fn a_failure_without_a_program_blames_nobody() {
        let log = lines(&[
            "map 'events': failed to create: -EPERM",
            "failed to load object 'net_bpf'",
        ]);
        assert_eq!(refused_program(&log), None);
    }

    const TABLE: &[ProgramCap] = &[
        ProgramCap {
            program: "a4",
            hook: "cgroup/connect4",
            capability: Capability::NetSockets,
        },
        ProgramCap {
            program: "a6",
            hook: "cgroup/connect6",
            capability: Capability::NetSockets,
        },
        ProgramCap {
            program: "dns",
            hook: "cgroup_skb",
            capability: Capability::NetDns,
        },
        ProgramCap {
            program: "seed",
            hook: "iter",
            capability: Capability::NetOlderSockets,
        },
    ];

    /// Each capability's state follows from its own programs only.
    #[test]
    fn one_refused_program_costs_its_own_capability_only() {
        let refused = vec![
            Refusal {
                program: "a6".into(),
                reason: "-EACCES".into(),
            },
            Refusal {
                program: "seed".into(),
                reason: "-EACCES".into(),
            },
        ];
        let s = statuses(TABLE, &refused, &["dns"]);
        let by = |c| {
            s.iter()
                .find(|x| x.capability == c)
                .expect("listed")
                .clone()
        };
        let sockets = by(Capability::NetSockets);
        assert_eq!(sockets.state, State::Degraded);
        assert_eq!(sockets.hook, "cgroup/connect4");
        assert_eq!(sockets.reason.as_deref(), Some("a6 refused: -EACCES"));
        assert_eq!(by(Capability::NetDns).state, State::Off);
        assert_eq!(by(Capability::NetOlderSockets).state, State::Unavailable);
        assert_eq!(statuses(TABLE, &[], &[])[0].state, State::Ok);
    }
}
