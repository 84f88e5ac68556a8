//! Kernel records to events with full process context.
//!
//! The one stage between decoding and the sinks: it turns each record into an [`Event`], keeps
//! the process tree current, and attaches `process`, `parent` and `ancestors`. Bytes from the
//! kernel become text here (lossless: invalid UTF-8 is escaped, never replaced). Nothing here
//! reads /proc: what the kernel sent is what the event says.
//!
//! One submodule per sensor family turns that family's records into events; this module holds
//! the pipeline's state, the dispatch, and the context every event gets.

mod file;
mod host_ns;
pub mod net;
mod pipes;
mod process;
mod recent;

use std::sync::Arc;

use shrike_bpf::decode::Header;
use shrike_bpf::{DecodeError, Record};
use shrike_event::{Event, EventKind, ExecId, Lost, Process};
use shrike_proctree::tree::Node;
use shrike_proctree::ProcessTree;

use crate::cgroups::CgroupResolver;
use crate::clock::BootClock;
use crate::workload::Workloads;

/// What the pipeline emits besides process execs and exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Emit `process_fork` events (forks are always tracked in the tree).
    pub emit_forks: bool,
    /// Environment variables kept on `process.env`.
    pub keep_env: Vec<String>,
}

/// Counts of what went through, for the agent's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub records: u64,
    pub events: u64,
    pub unknown_kinds: u64,
    pub decode_errors: u64,
}

pub struct Pipeline {
    opts: PipelineOptions,
    node_name: Arc<str>,
    tree: ProcessTree,
    clock: BootClock,
    cgroups: CgroupResolver,
    workloads: Workloads,
    stats: PipelineStats,
    net: net::NetState,
    /// The rule the kernel held the last exec record for (see [`Pipeline::take_held`]).
    held: Option<u16>,
    /// The host's namespaces, to tell an entry into them.
    host_ns: host_ns::HostNamespaces,
    /// Which recent images hold which pipes as standard fds.
    pipes: pipes::PipeEnds,
}

impl Pipeline {
    pub fn new(
        opts: PipelineOptions,
        node_name: Arc<str>,
        tree: ProcessTree,
        clock: BootClock,
        cgroups: CgroupResolver,
    ) -> Self {
        Pipeline {
            opts,
            node_name,
            tree,
            clock,
            cgroups,
            workloads: Workloads::disabled(),
            stats: PipelineStats::default(),
            net: net::NetState::default(),
            held: None,
            host_ns: host_ns::HostNamespaces::read(std::path::Path::new("/proc")),
            pipes: pipes::PipeEnds::default(),
        }
    }

    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// Asks container runtimes for the identity events carry (default: the cgroup path only).
    pub fn set_workloads(&mut self, workloads: Workloads) {
        self.workloads = workloads;
    }

    pub fn workloads(&self) -> &Workloads {
        &self.workloads
    }

    /// When the event [`Pipeline::handle`] just returned is an exec the kernel held (stopped)
    /// for a workload-scoped rule: that rule, once. The caller kills or resumes the process.
    pub fn take_held(&mut self) -> Option<u16> {
        self.held.take()
    }

    /// The cgroup directory of cgroup `id`, when placed.
    pub fn cgroup_dir(&self, id: u64) -> Option<std::path::PathBuf> {
        self.cgroups.dir(id)
    }

    /// Sets `event`'s container and pod identity again (a held exec, released once its
    /// container was described).
    pub fn attach_workload(&self, event: &mut Event) {
        let cgroup_id = event.process.cgroup_id;
        self.workloads.attach(event, || self.cgroups.dir(cgroup_id));
    }

    pub fn tree(&self) -> &ProcessTree {
        &self.tree
    }

    pub fn clock_mut(&mut self) -> &mut BootClock {
        &mut self.clock
    }

    /// Decodes one record and returns the event it makes, if it makes one.
    pub fn handle(&mut self, bytes: &[u8]) -> Result<Option<Event>, DecodeError> {
        self.stats.records += 1;
        self.held = None;
        let record = match Record::try_from(bytes) {
            Ok(record) => record,
            Err(err) => {
                match err {
                    DecodeError::UnknownKind(_) => self.stats.unknown_kinds += 1,
                    _ => self.stats.decode_errors += 1,
                }
                return Err(err);
            }
        };
        let event = match record {
            Record::Exec(r) => Some(self.exec(r)),
            Record::Fork(r) => self.fork(r),
            Record::Exit(r) => Some(self.exit(r)),
            Record::ExecDenied(r) => Some(self.exec_denied(r)),
            Record::Tamper(r) => Some(self.tamper(r)),
            Record::Net(r) => Some(self.net(r)),
            Record::Dns(r) => Some(self.dns(r)),
            Record::File(r) => Some(self.file_op(r)),
            Record::Module(r) => Some(self.module_load(r)),
            Record::BpfLoad(r) => Some(self.bpf_load(r)),
            Record::Ptrace(r) => Some(self.ptrace(r)),
            Record::Cred(r) => Some(self.cred_change(r)),
            Record::Mount(r) => Some(self.mount(r)),
            Record::Namespace(r) => Some(self.namespace(r)),
            Record::Memfd(r) => Some(self.memfd(r)),
            Record::Socket(r) => Some(self.socket(r)),
            Record::Signal(r) => Some(self.signal(r)),
        };
        let mut event = event;
        if let Some(e) = &mut event {
            self.stats.events += 1;
            let cgroups = &self.cgroups;
            let cgroup_id = e.process.cgroup_id;
            self.workloads.attach(e, || cgroups.dir(cgroup_id));
        }
        Ok(event)
    }

    /// Forgets exited images past their retention; call after each batch.
    pub fn expire(&mut self) {
        let now = self.clock.now_boot_ns();
        self.tree.expire(now);
    }

    /// An `events_lost` event reporting records the kernel or the pipeline dropped, attributed
    /// to the agent's own process.
    pub fn lost_event(&self, lost: Lost) -> Event {
        let mut event = self.agent_event(EventKind::EventsLost);
        event.set_lost(lost);
        event
    }

    /// An `agent_health` event: the capabilities the agent has, attributed to its own process.
    pub fn health_event(&self, health: shrike_event::Health) -> Event {
        let mut event = self.agent_event(EventKind::AgentHealth);
        event.set_health(health);
        event
    }

    /// An event about the agent itself, attributed to its own process.
    pub fn agent_event(&self, kind: EventKind) -> Event {
        Event::new(
            self.now(),
            kind,
            self.node_name.clone(),
            self.agent_process(),
        )
    }

    /// The agent's own process, which events the agent synthesizes are attributed to.
    pub fn agent_process(&self) -> Arc<Process> {
        let me = std::process::id();
        self.tree
            .current(me)
            .map(|n| n.process.clone())
            .unwrap_or_else(|| {
                Arc::new(Process {
                    pid: me,
                    tid: me,
                    ..Process::default()
                })
            })
    }

    /// Wall-clock time now, on the clock events are stamped with.
    pub fn now(&self) -> shrike_event::Timestamp {
        self.clock.wall(self.clock.now_boot_ns())
    }

    pub fn node_name(&self) -> &Arc<str> {
        &self.node_name
    }

    pub(super) fn event(
        &self,
        kind: EventKind,
        ktime_ns: u64,
        tid: u32,
        node: &Arc<Node>,
    ) -> Event {
        let mut event = Event::new(
            self.clock.wall(ktime_ns),
            kind,
            self.node_name.clone(),
            node.process.clone(),
        );
        event.tid = tid;
        event.parent = node.parent.as_ref().map(|p| p.process.clone());
        event.ancestors = node.ancestors(self.tree.options().ancestors_depth);
        event
    }

    /// An event of a non-process family by the process the record names (by exec_id, else by
    /// pid), with its parent and ancestors; a process the tree does not know gets what the
    /// record says and no parent.
    pub(super) fn context_event(&self, kind: EventKind, h: &Header) -> Event {
        match self.tree.resolve(ExecId(h.exec_id), h.pid) {
            Some(node) => {
                let node = node.clone();
                self.event(kind, h.ktime_ns, h.tid, &node)
            }
            None => {
                let process = Arc::new(Process {
                    pid: h.pid,
                    tid: h.tid,
                    exec_id: ExecId(h.exec_id),
                    ..Process::default()
                });
                Event::new(
                    self.clock.wall(h.ktime_ns),
                    kind,
                    self.node_name.clone(),
                    process,
                )
            }
        }
    }
}
