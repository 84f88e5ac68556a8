//! Process lifecycle records to events: exec builds the image (text from kernel bytes, script
//! path made absolute, kept environment variables), fork tracks the clone, exit reports the
//! last image and its status.

use std::collections::BTreeMap;
use std::sync::Arc;

use shrike_bpf::decode::{
    Action, Enforcement, ExecDeniedRecord, ExecFlag, ExecRecord, ExitRecord, ForkRecord,
    TamperKind, TamperRecord,
};
use shrike_event::text::{lossless_utf8, split_nul_separated};
use shrike_event::{
    BpfLoad, Enforced, EnforcedAction, Event, EventKind, ExecId, Exit, FileInfo, ImageLinks,
    LoginUid, Process, Ptrace, Signal, Timestamp,
};
use shrike_proctree::procfs::keep_env;
use shrike_proctree::tree::ParentHint;

use super::Pipeline;

impl Pipeline {
    pub(super) fn exec(&mut self, r: ExecRecord) -> Event {
        let flags = r.flags;
        self.held = r.held;
        let cwd = lossless_utf8(&r.cwd);
        let filename = lossless_utf8(&r.filename);
        let script = flags
            .has(ExecFlag::Script)
            .then(|| absolute(&cwd, &filename));
        let mut args = split_nul_separated(&r.args);
        let args_fault = flags.has(ExecFlag::ArgsFault);
        if args_fault && args.is_empty() {
            // argv could not be read; the filename is what the caller asked to run.
            args.push(filename.clone());
        }
        let env: BTreeMap<String, String> = if self.opts.keep_env.is_empty() {
            BTreeMap::new()
        } else {
            keep_env(&r.env, &self.opts.keep_env)
        };
        let exec_id = ExecId(r.header.exec_id);
        let binary: Arc<str> = lossless_utf8(&r.binary).into();
        let exec_time = self.clock.wall(r.header.ktime_ns);
        let process = Process {
            pid: r.header.pid,
            tid: r.header.tid,
            ppid: r.ppid,
            exec_id,
            parent_exec_id: (r.parent_exec_id != 0).then_some(ExecId(r.parent_exec_id)),
            binary: binary.clone(),
            args: args.into(),
            args_truncated: flags.has(ExecFlag::ArgsTruncated) || args_fault,
            script: script.map(Arc::from),
            binary_memfd: flags.has(ExecFlag::Memfd),
            binary_deleted: flags.has(ExecFlag::Deleted),
            binary_truncated: flags.has(ExecFlag::BinaryTruncated),
            under_server: flags.has(ExecFlag::UnderServer),
            server_binary: None,
            cwd: cwd.into(),
            cwd_truncated: flags.has(ExecFlag::CwdTruncated),
            comm: lossless_utf8(&r.comm).into(),
            uid: r.uid,
            euid: r.euid,
            gid: r.gid,
            egid: r.egid,
            loginuid: LoginUid::from_kernel(r.loginuid),
            cgroup_id: r.cgroup_id,
            start_time: self.clock.wall(r.start_boottime_ns),
            exec_time,
            container: self
                .cgroups
                .container(r.cgroup_id, r.header.pid)
                .or_else(|| self.workloads.container_of_cgroup(r.cgroup_id)),
            env: Process::env_field(env),
            links: self.image_links(&r, exec_id, &binary, exec_time),
        };
        let hint = if flags.has(ExecFlag::ParentIsPrev) {
            ParentHint::PreviousImage(ExecId(r.parent_exec_id))
        } else {
            ParentHint::ExecId(ExecId(r.parent_exec_id))
        };
        let node = self.tree.exec(process, hint, r.header.ktime_ns);
        let mut event = self.event(
            EventKind::ProcessExec,
            r.header.ktime_ns,
            r.header.tid,
            &node,
        );
        event.enforced = r.enforced.map(enforced);
        event
    }

    /// Where a new image's standard fds lead and where its executable came from.
    fn image_links(
        &mut self,
        r: &ExecRecord,
        exec_id: ExecId,
        binary: &Arc<str>,
        exec_time: Timestamp,
    ) -> Option<Arc<ImageLinks>> {
        let writer = r.writer_exec_id.map(ExecId).and_then(|id| {
            let known = self.tree.get(id).map(|node| &node.process.binary);
            known
                .or_else(|| self.net.connected_binary(id))
                .map(|b| b.to_string())
        });
        Process::links_field(ImageLinks {
            stdio_sockets: super::net::stdio_sockets(&r.stdio),
            stdio_pipes: self.pipes.exec(&r.stdio_pipes, exec_id, binary),
            binary_age: r
                .binary_ctime_s
                .and_then(|ctime| recent_age(exec_time, ctime)),
            binary_downloaded: r.writer_exec_id.is_some(),
            binary_writer: writer,
        })
    }

    /// An exec an LSM hook refused: the event describes the image that was not allowed to
    /// start — the refused file, run by the caller, whose current image is its parent — with
    /// `result` -EPERM.
    pub(super) fn exec_denied(&mut self, r: ExecDeniedRecord) -> Event {
        let caller = self
            .tree
            .resolve(ExecId(r.header.exec_id), r.header.pid)
            .cloned();
        let filename = lossless_utf8(&r.filename);
        let mut process = match &caller {
            Some(node) => Process::clone(&node.process),
            None => Process {
                pid: r.header.pid,
                ..Process::default()
            },
        };
        process.tid = r.header.tid;
        process.exec_id = ExecId(0);
        process.parent_exec_id = caller.as_ref().map(|n| n.process.exec_id);
        process.binary = lossless_utf8(&r.path).into();
        process.binary_truncated = r.path_cut;
        process.args = vec![filename].into();
        process.args_truncated = false;
        process.script = None;
        process.exec_time = self.clock.wall(r.header.ktime_ns);
        let mut event = Event::new(
            self.clock.wall(r.header.ktime_ns),
            EventKind::ProcessExec,
            self.node_name.clone(),
            std::sync::Arc::new(process),
        );
        event.tid = r.header.tid;
        if let Some(node) = &caller {
            event.parent = Some(node.process.clone());
            let mut ancestors = vec![node.process.clone()];
            ancestors.extend(node.ancestors(self.tree.options().ancestors_depth.saturating_sub(1)));
            event.ancestors = ancestors;
        }
        event.result = Some(-i64::from(libc::EPERM));
        event.enforced = Some(enforced(r.enforcement));
        event
    }

    pub(super) fn fork(&mut self, r: ForkRecord) -> Option<Event> {
        let node = self.tree.fork(
            r.header.pid,
            r.ppid,
            ExecId(r.header.exec_id),
            ExecId(r.parent_exec_id),
            self.clock.wall(r.start_boottime_ns),
            r.header.ktime_ns,
        );
        self.opts.emit_forks.then(|| {
            self.event(
                EventKind::ProcessFork,
                r.header.ktime_ns,
                r.header.tid,
                &node,
            )
        })
    }

    pub(super) fn exit(&mut self, r: ExitRecord) -> Event {
        let exit = Exit {
            code: r.code(),
            signal: r.signal(),
            core_dumped: r.core_dumped(),
        };
        let mut event =
            match self
                .tree
                .exit(r.header.pid, ExecId(r.header.exec_id), r.header.ktime_ns)
            {
                Some(node) => self.event(
                    EventKind::ProcessExit,
                    r.header.ktime_ns,
                    r.header.tid,
                    &node,
                ),
                // A process the agent never saw start (it exited during start-up).
                None => self.context_event(EventKind::ProcessExit, &r.header),
            };
        event.set_exit(exit);
        event
    }
}

impl Pipeline {
    /// Something self-protection refused: a signal or ptrace aimed at the agent, or the removal
    /// of one of its pins; `result` is -EPERM. The detector adds the self-protection alert.
    pub(super) fn tamper(&mut self, r: TamperRecord) -> Event {
        let me = self
            .tree
            .current(r.target_pid)
            .map(|n| n.process.binary.to_string())
            .unwrap_or_default();
        let mut event = match r.kind {
            TamperKind::Ptrace => {
                let mut e = self.context_event(EventKind::Ptrace, &r.header);
                e.set_ptrace(Ptrace {
                    request: format!("ptrace_access_check mode {:#x}", r.signal),
                    target_pid: r.target_pid,
                    target_binary: me,
                });
                e
            }
            TamperKind::Bpf(object) => {
                // A refused grab of one of the agent's own BPF objects: told as a `bpf_load`
                // whose type names the agent's object (`shrike_prog`, `shrike_map`, `shrike_link`).
                let object = object.name();
                let mut e = self.context_event(EventKind::BpfLoad, &r.header);
                e.set_bpf(BpfLoad {
                    prog_type: format!("{}{object}", crate::selfprotect::OWN_OBJECT_PREFIX),
                    ..BpfLoad::default()
                });
                e
            }
            TamperKind::Unpin => {
                let mut e = self.context_event(EventKind::FileUnlink, &r.header);
                e.set_file(FileInfo {
                    path: "/sys/fs/bpf/shrike".into(),
                    ..FileInfo::default()
                });
                e
            }
            TamperKind::Signal => {
                let mut e = self.context_event(EventKind::Signal, &r.header);
                e.set_signal(Signal {
                    signal: r.signal,
                    target_pid: r.target_pid,
                    target_binary: me,
                });
                e
            }
        };
        event.result = Some(-i64::from(libc::EPERM));
        event
    }
}

/// What the kernel did, in the event model's terms.
pub(super) fn enforced(e: Enforcement) -> Enforced {
    Enforced {
        rule_index: e.rule_index,
        action: if e.action == Action::Kill {
            EnforcedAction::Killed
        } else {
            EnforcedAction::Denied
        },
    }
}

/// Seconds from an executable's change time (`ctime_s`, CLOCK_REALTIME seconds) to its exec, when
/// that is within [`ImageLinks::RECENT_SECS`]. A change time a little after the exec (clocks
/// read apart) counts as 0; one far in the future says nothing.
fn recent_age(exec_time: Timestamp, ctime_s: i64) -> Option<u32> {
    let exec_s = i64::try_from(exec_time.0 / 1_000_000_000).ok()?;
    let age = exec_s.checked_sub(ctime_s)?;
    match age {
        -2..=0 => Some(0),
        1.. if age <= i64::from(ImageLinks::RECENT_SECS) => u32::try_from(age).ok(),
        _ => None,
    }
}

/// `path` made absolute against `cwd`, with `.` components and duplicate slashes removed
/// (`..` is kept: it cannot be resolved without the file system).
fn absolute(cwd: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cwd}/{path}")
    };
    let mut out = String::with_capacity(joined.len());
    for part in joined.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use shrike_bpf::decode::testing::{exec_bytes, exit_bytes, fork_bytes};
    use shrike_bpf::decode::{ExecFlags, Header};
    use shrike_proctree::TreeOptions;

    use super::*;
    use crate::cgroups::CgroupResolver;
    use crate::clock::BootClock;
    use crate::pipeline::PipelineOptions;
    use shrike_proctree::ProcessTree;

    fn pipeline() -> Pipeline {
        let mut tree = ProcessTree::new(TreeOptions::default());
        tree.seed(vec![Process {
            pid: 1,
            tid: 1,
            exec_id: ExecId(1),
            binary: "/sbin/init".into(),
            ..Process::default()
        }]);
        Pipeline::new(
            PipelineOptions {
                emit_forks: false,
                keep_env: vec!["LD_PRELOAD".into()],
            },
            "node".into(),
            tree,
            BootClock::new(),
            CgroupResolver::new(None),
        )
    }

    fn exec(
        pid: u32,
        id: u64,
        parent: u64,
        flags: ExecFlags,
        binary: &str,
        args: &[u8],
    ) -> Vec<u8> {
        exec_bytes(&ExecRecord {
            header: Header {
                kind: 1,
                ktime_ns: 10,
                pid,
                tid: pid,
                exec_id: id,
            },
            parent_exec_id: parent,
            start_boottime_ns: 5,
            cgroup_id: 0,
            ppid: 1,
            uid: 0,
            euid: 0,
            gid: 0,
            egid: 0,
            loginuid: u32::MAX,
            flags,
            args_total: args.len() as u32,
            comm: b"c".to_vec(),
            binary: binary.as_bytes().to_vec(),
            filename: b"./run.sh".to_vec(),
            interp: flags.has(ExecFlag::Script).then(|| b"/bin/sh".to_vec()),
            cwd: b"/tmp/work".to_vec(),
            args: args.to_vec(),
            env: b"HOME=/root\0LD_PRELOAD=/tmp/x.so\0".to_vec(),
            stdio: Vec::new(),
            stdio_pipes: Vec::new(),
            binary_ctime_s: None,
            writer_exec_id: None,
            enforced: None,
            held: None,
        })
    }

    #[test]
    fn exec_becomes_an_event_with_parent_args_script_and_kept_env() {
        let mut p = pipeline();
        let fork = fork_bytes(&ForkRecord {
            header: Header {
                kind: 3,
                ktime_ns: 1,
                pid: 50,
                tid: 50,
                exec_id: 49,
            },
            parent_exec_id: 1,
            start_boottime_ns: 1,
            ppid: 1,
        });
        assert!(
            p.handle(&fork).unwrap().is_none(),
            "forks are tracked, not emitted by default"
        );
        let bytes = exec(
            50,
            51,
            1,
            ExecFlags::from(ExecFlag::Script),
            "/usr/bin/dash",
            b"/bin/sh\0./run.sh\0a\xffb\0",
        );
        let e = p.handle(&bytes).unwrap().unwrap();
        assert_eq!(e.kind, EventKind::ProcessExec);
        assert_eq!(&*e.process.binary, "/usr/bin/dash");
        assert_eq!(*e.process.args, ["/bin/sh", "./run.sh", "a\\xffb"]);
        assert_eq!(e.process.script.as_deref(), Some("/tmp/work/run.sh"));
        assert_eq!(e.process.env_var("LD_PRELOAD"), Some("/tmp/x.so"));
        assert!(
            e.process.env_var("HOME").is_none(),
            "only listed variables are kept"
        );
        assert_eq!(e.process.loginuid.get(), None);
        assert_eq!(&*e.parent.as_ref().unwrap().binary, "/sbin/init");
        assert_eq!(e.ancestors.len(), 1);
    }

    #[test]
    fn exit_reports_the_last_image_and_its_status() {
        let mut p = pipeline();
        p.handle(&exec(
            60,
            61,
            1,
            ExecFlags::default(),
            "/usr/bin/sleep",
            b"sleep\x001\0",
        ))
        .unwrap();
        let x = exit_bytes(&ExitRecord {
            header: Header {
                kind: 2,
                ktime_ns: 20,
                pid: 60,
                tid: 60,
                exec_id: 61,
            },
            status: 9,
        });
        let e = p.handle(&x).unwrap().unwrap();
        assert_eq!(e.kind, EventKind::ProcessExit);
        assert_eq!(&*e.process.binary, "/usr/bin/sleep");
        assert_eq!(
            e.exit(),
            Some(&Exit {
                code: None,
                signal: Some(9),
                core_dumped: false
            })
        );
        assert_eq!(&*e.parent.as_ref().unwrap().binary, "/sbin/init");
    }

    #[test]
    fn kernel_enforcement_is_carried_to_the_event() {
        let mut p = pipeline();
        let mut bytes = exec(70, 71, 1, ExecFlags::default(), "/tmp/x", b"x\0");
        let record = match shrike_bpf::Record::try_from(bytes.as_slice()).unwrap() {
            shrike_bpf::Record::Exec(mut r) => {
                r.enforced = Some(Enforcement {
                    rule_index: 4,
                    action: Action::Kill,
                });
                r
            }
            other => panic!("{other:?}"),
        };
        bytes = exec_bytes(&record);
        let e = p.handle(&bytes).unwrap().unwrap();
        assert_eq!(
            e.enforced,
            Some(Enforced {
                rule_index: 4,
                action: EnforcedAction::Killed
            })
        );

        let denied = shrike_bpf::decode::testing::exec_denied_bytes(&ExecDeniedRecord {
            header: Header {
                kind: 4,
                ktime_ns: 30,
                pid: 70,
                tid: 70,
                exec_id: 71,
            },
            enforcement: Enforcement {
                rule_index: 4,
                action: Action::Deny,
            },
            path: b"/tmp/evil".to_vec(),
            path_cut: true,
            filename: b"./evil".to_vec(),
        });
        let e = p.handle(&denied).unwrap().unwrap();
        assert_eq!(e.kind, EventKind::ProcessExec);
        assert_eq!(&*e.process.binary, "/tmp/evil");
        assert!(e.process.binary_truncated, "a cut path is flagged");
        assert_eq!(*e.process.args, ["./evil"]);
        assert_eq!(e.result, Some(-i64::from(libc::EPERM)));
        assert_eq!(
            e.enforced,
            Some(Enforced {
                rule_index: 4,
                action: EnforcedAction::Denied
            })
        );
        assert_eq!(
            &*e.parent.as_ref().unwrap().binary,
            "/tmp/x",
            "the caller's image is the parent"
        );
    }

    #[test]
    fn garbage_is_counted_not_fatal() {
        let mut p = pipeline();
        assert!(p.handle(&[1, 2, 3]).is_err());
        let mut x = exit_bytes(&ExitRecord {
            header: Header {
                kind: 2,
                ktime_ns: 0,
                pid: 1,
                tid: 1,
                exec_id: 0,
            },
            status: 0,
        });
        x[0..2].copy_from_slice(&777u16.to_le_bytes());
        assert!(p.handle(&x).is_err());
        let s = p.stats();
        assert_eq!(
            (s.records, s.decode_errors, s.unknown_kinds, s.events),
            (2, 1, 1, 0)
        );
    }

    #[test]
    fn absolute_paths_are_lexically_clean() {
        assert_eq!(absolute("/tmp/w", "./x.sh"), "/tmp/w/x.sh");
        assert_eq!(absolute("/tmp/w", "/opt//a/./b"), "/opt/a/b");
        assert_eq!(absolute("/", "x"), "/x");
        assert_eq!(absolute("/a", "../b"), "/a/../b");
    }

    /// An executable's age is kept within a day, a change a moment after the exec (clocks read
    /// apart) is age 0, and older or far-future changes say nothing.
    #[test]
    fn binary_age_is_kept_only_when_recent() {
        let exec = Timestamp(1_700_000_000 * 1_000_000_000 + 500_000_000);
        assert_eq!(recent_age(exec, 1_700_000_000 - 42), Some(42));
        assert_eq!(recent_age(exec, 1_700_000_000 + 1), Some(0));
        assert_eq!(recent_age(exec, 1_700_000_000 - 86_400), Some(86_400));
        assert_eq!(recent_age(exec, 1_700_000_000 - 86_401), None);
        assert_eq!(recent_age(exec, 1_700_000_000 + 60), None);
    }
}
