//! The tree itself: images by exec_id, the current image of each pid, and retention of exited
//! images for late events.
//!
//! Each image is a [`Node`]: an immutable `Arc<Process>` plus an `Arc` to its parent's node.
//! Ancestry is therefore a pointer walk, and an exited ancestor is freed by reference counting
//! when its last descendant goes. Exited (and exec-replaced) images also stay findable by
//! exec_id for a retention period, so an event that arrives after its process ended still gets
//! full context.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use shrike_event::{ExecId, Process, Timestamp};

/// Bounds and depth of the tree.
///
/// # Memory bound
///
/// Let `L` be the number of live processes (at most the kernel's `pid_max`), `R` =
/// `max_exited`, `C` = `max_chain` and `S` the size of one image (about 400 bytes plus its
/// binary, argv, cwd and comm — at most 32 KiB + paths — which a forked image shares with the
/// image it was forked from). The tree holds at most `L + R` findable images, and parent
/// links can pin at most `C` further exited images per live process, so memory is bounded by
/// `(L + R + L·C) · S`; in practice exited ancestors are shared by many descendants and the
/// figure is close to `(L + R) · S` (measured by the benchmark suite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeOptions {
    /// Ancestors carried on each event, nearest first (the parent is the first).
    pub ancestors_depth: usize,
    /// How long an exited or replaced image stays findable by exec_id, in nanoseconds.
    pub exit_retention_ns: u64,
    /// At most this many exited images stay findable; the oldest go first.
    pub max_exited: usize,
    /// A parent chain longer than this is cut back to `ancestors_depth` links.
    pub max_chain: u32,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            ancestors_depth: 8,
            exit_retention_ns: 30_000_000_000,
            max_exited: 16_384,
            max_chain: 64,
        }
    }
}

/// One process image and the image that started it.
#[derive(Debug)]
pub struct Node {
    pub process: Arc<Process>,
    pub parent: Option<Arc<Node>>,
    depth: u32,
    /// The image listened on a TCP port ([`ProcessTree::mark_listened`]): it is the server of
    /// what it starts afterwards.
    listened: AtomicBool,
}

impl Node {
    fn new(process: Arc<Process>, parent: Option<Arc<Node>>) -> Self {
        let depth = parent.as_ref().map_or(0, |p| p.depth + 1);
        Node {
            process,
            parent,
            depth,
            listened: AtomicBool::new(false),
        }
    }

    /// The server of an image this one starts (forks or execs): this image if it listened,
    /// else its own server.
    fn server_below(&self) -> Option<Arc<Arc<str>>> {
        if self.listened.load(Ordering::Relaxed) {
            Some(Arc::new(self.process.binary.clone()))
        } else {
            self.process.server_binary.clone()
        }
    }

    /// Up to `depth` ancestors, nearest first.
    pub fn ancestors(&self, depth: usize) -> Vec<Arc<Process>> {
        let mut out = Vec::with_capacity(depth.min(self.depth as usize));
        let mut next = self.parent.as_ref();
        while let Some(node) = next {
            if out.len() == depth {
                break;
            }
            out.push(node.process.clone());
            next = node.parent.as_ref();
        }
        out
    }
}

struct Slot {
    node: Arc<Node>,
    /// The image exited or was replaced by exec (when, is kept in `ProcessTree::ended`; a
    /// flag keeps the map's entries at 16 bytes).
    ended: bool,
}

/// Counts for the agent's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeStats {
    /// Processes running now.
    pub live: usize,
    /// Images findable by exec_id, live or retained.
    pub images: usize,
    /// Exited or replaced images retained for late events.
    pub retained: usize,
}

/// The process tree. See the crate documentation.
pub struct ProcessTree {
    opts: TreeOptions,
    images: HashMap<ExecId, Slot>,
    current: HashMap<u32, ExecId>,
    ended: VecDeque<(u64, ExecId)>,
}

/// How a new image is attached to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentHint {
    /// The kernel named the parent image (0 when it did not know).
    ExecId(ExecId),
    /// The image replaced the pid's previous image by exec without fork; the kernel's
    /// `parent_exec_id` names that previous image.
    PreviousImage(ExecId),
}

impl ProcessTree {
    pub fn new(opts: TreeOptions) -> Self {
        ProcessTree {
            opts,
            images: HashMap::new(),
            current: HashMap::new(),
            ended: VecDeque::new(),
        }
    }

    pub fn options(&self) -> &TreeOptions {
        &self.opts
    }

    /// The image with this exec_id, live or retained.
    pub fn get(&self, exec_id: ExecId) -> Option<&Arc<Node>> {
        self.images.get(&exec_id).map(|s| &s.node)
    }

    /// The image a pid runs now.
    pub fn current(&self, pid: u32) -> Option<&Arc<Node>> {
        self.current.get(&pid).and_then(|id| self.get(*id))
    }

    /// Every live process: the image each pid runs now (in no particular order).
    pub fn live(&self) -> impl Iterator<Item = &Arc<Node>> + '_ {
        self.current.values().filter_map(|id| self.get(*id))
    }

    /// The image for an event: by exec_id when the kernel knew it, else the pid's current one.
    pub fn resolve(&self, exec_id: ExecId, pid: u32) -> Option<&Arc<Node>> {
        if exec_id.0 != 0 {
            if let Some(node) = self.get(exec_id) {
                return Some(node);
            }
        }
        self.current(pid)
    }

    /// Seeds the tree with processes read from /proc (each with its exec_id and
    /// parent_exec_id set). Parents are linked by exec_id, else by ppid.
    pub fn seed(&mut self, mut processes: Vec<Process>) {
        processes.sort_by_key(|p| (p.start_time, p.pid));
        for process in processes {
            let hint = ParentHint::ExecId(process.parent_exec_id.unwrap_or_default());
            self.insert(process, hint, None);
        }
    }

    /// A process image started (exec). Returns its node.
    pub fn exec(&mut self, process: Process, hint: ParentHint, now: u64) -> Arc<Node> {
        self.insert(process, hint, Some(now))
    }

    /// A new process was forked: its image is a copy of the forking image until it execs.
    pub fn fork(
        &mut self,
        pid: u32,
        ppid: u32,
        exec_id: ExecId,
        parent_exec_id: ExecId,
        start_time: Timestamp,
        now: u64,
    ) -> Arc<Node> {
        let parent = self.parent_node(ParentHint::ExecId(parent_exec_id), ppid);
        let mut process = match &parent {
            Some(p) => Process::clone(&p.process),
            None => Process::default(),
        };
        process.pid = pid;
        process.tid = pid;
        process.ppid = ppid;
        process.exec_id = exec_id;
        process.parent_exec_id = parent.as_ref().map(|p| p.process.exec_id);
        process.start_time = start_time;
        process.exec_time = start_time;
        process.links = None;
        self.place(process, parent, Some(now))
    }

    /// The image (by exec_id, else the pid's current one) listened on a TCP port: what it
    /// starts from now on has it as `server_binary`. PID 1 never counts (it listens for the
    /// services it socket-activates), as in the kernel.
    pub fn mark_listened(&self, exec_id: ExecId, pid: u32) {
        if let Some(node) = self.resolve(exec_id, pid) {
            if node.process.pid != 1 {
                node.listened.store(true, Ordering::Relaxed);
            }
        }
    }

    /// A process ended. Returns its last image, if known.
    pub fn exit(&mut self, pid: u32, exec_id: ExecId, now: u64) -> Option<Arc<Node>> {
        let id = if exec_id.0 != 0 && self.images.contains_key(&exec_id) {
            exec_id
        } else {
            *self.current.get(&pid)?
        };
        if self.current.get(&pid) == Some(&id) {
            self.current.remove(&pid);
        }
        self.end(id, now);
        self.get(id).cloned()
    }

    /// Forgets retained images older than the retention period, and the oldest beyond
    /// `max_exited`. Call it regularly (the agent does after every batch).
    pub fn expire(&mut self, now: u64) {
        while let Some(&(ended_at, id)) = self.ended.front() {
            let too_old = now.saturating_sub(ended_at) > self.opts.exit_retention_ns;
            if !too_old && self.ended.len() <= self.opts.max_exited {
                break;
            }
            self.ended.pop_front();
            // Only forget it if it is still the ended image (an exec_id is never reused).
            if self.images.get(&id).is_some_and(|s| s.ended) {
                self.images.remove(&id);
            }
        }
    }

    pub fn stats(&self) -> TreeStats {
        TreeStats {
            live: self.current.len(),
            images: self.images.len(),
            retained: self.ended.len(),
        }
    }

    fn insert(&mut self, process: Process, hint: ParentHint, now: Option<u64>) -> Arc<Node> {
        let parent = self.parent_node(hint, process.ppid);
        let mut process = process;
        process.parent_exec_id = parent
            .as_ref()
            .map(|p| p.process.exec_id)
            .or(process.parent_exec_id.filter(|id| id.0 != 0));
        self.place(process, parent, now)
    }

    fn place(
        &mut self,
        process: Process,
        parent: Option<Arc<Node>>,
        now: Option<u64>,
    ) -> Arc<Node> {
        let pid = process.pid;
        let exec_id = process.exec_id;
        let mut process = process;
        if now.is_some() {
            // A fork or exec takes its server from the image that started it; a seed keeps
            // the one /proc gave it (the tree does not know which seeds listened).
            process.server_binary = parent.as_ref().and_then(|p| p.server_below());
        }
        let parent = parent.map(|p| self.bounded(p));
        let node = Arc::new(Node::new(Arc::new(process), parent));
        // The pid's previous image (a fork clone, or the image this exec replaced) ends now.
        if let Some(previous) = self.current.insert(pid, exec_id) {
            if previous != exec_id {
                self.end(previous, now.unwrap_or(0));
            }
        }
        self.images.insert(
            exec_id,
            Slot {
                node: node.clone(),
                ended: false,
            },
        );
        node
    }

    fn parent_node(&self, hint: ParentHint, ppid: u32) -> Option<Arc<Node>> {
        let id = match hint {
            ParentHint::ExecId(id) | ParentHint::PreviousImage(id) => id,
        };
        if id.0 != 0 {
            if let Some(node) = self.get(id) {
                return Some(node.clone());
            }
        }
        // The kernel did not know (a process older than the agent, not yet seeded): the
        // parent process's current image is the best answer.
        self.current(ppid).cloned()
    }

    fn end(&mut self, id: ExecId, now: u64) {
        if let Some(slot) = self.images.get_mut(&id) {
            if !slot.ended {
                slot.ended = true;
                self.ended.push_back((now, id));
            }
        }
    }

    /// `parent` itself, or — when its chain is longer than `max_chain` — a fresh chain of
    /// its first `ancestors_depth` images, so no live process pins an unbounded history.
    fn bounded(&self, parent: Arc<Node>) -> Arc<Node> {
        if parent.depth < self.opts.max_chain {
            return parent;
        }
        let mut keep = vec![parent.process.clone()];
        keep.extend(parent.ancestors(self.opts.ancestors_depth.saturating_sub(1)));
        let mut chain: Option<Arc<Node>> = None;
        for process in keep.into_iter().rev() {
            chain = Some(Arc::new(Node::new(process, chain)));
        }
        // The copy of `parent` is what the new image's server is read from.
        if let Some(head) = &chain {
            head.listened
                .store(parent.listened.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        chain.unwrap_or(parent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, ppid: u32, id: u64, binary: &str) -> Process {
        Process {
            pid,
            tid: pid,
            ppid,
            exec_id: ExecId(id),
            binary: binary.into(),
            args: vec![binary.into()].into(),
            ..Process::default()
        }
    }

    fn binaries(v: &[Arc<Process>]) -> Vec<&str> {
        v.iter().map(|p| &*p.binary).collect()
    }

    fn tree() -> ProcessTree {
        let mut t = ProcessTree::new(TreeOptions::default());
        t.seed(vec![
            proc(1, 0, 1, "/sbin/init"),
            proc(10, 1, 10, "/usr/sbin/sshd"),
        ]);
        t
    }

    #[test]
    fn fork_then_exec_links_to_the_forking_image() {
        let mut t = tree();
        let clone = t.fork(20, 10, ExecId(20), ExecId(10), Timestamp(5), 5);
        assert_eq!(
            &*clone.process.binary, "/usr/sbin/sshd",
            "a clone runs its parent's image"
        );
        assert_eq!(clone.process.parent_exec_id, Some(ExecId(10)));
        let bash = t.exec(
            proc(20, 10, 21, "/usr/bin/bash"),
            ParentHint::ExecId(ExecId(10)),
            6,
        );
        assert_eq!(
            binaries(&bash.ancestors(8)),
            ["/usr/sbin/sshd", "/sbin/init"]
        );
        assert_eq!(t.current(20).unwrap().process.exec_id, ExecId(21));
        assert!(
            t.get(ExecId(20)).is_some(),
            "the replaced clone stays findable for late events"
        );
    }

    /// What a server starts names it as `server_binary` however deep below, through forks,
    /// execs and chains cut to bound memory; a nearer server replaces it; PID 1 never counts;
    /// what the server started before it listened has none.
    #[test]
    fn the_nearest_server_is_carried_down_at_any_depth() {
        let mut t = ProcessTree::new(TreeOptions {
            max_chain: 6,
            ..TreeOptions::default()
        });
        t.seed(vec![
            proc(1, 0, 1, "/sbin/init"),
            proc(10, 1, 10, "/usr/sbin/sshd"),
        ]);
        t.mark_listened(ExecId(1), 1);
        let early = t.fork(11, 10, ExecId(11), ExecId(10), Timestamp(1), 1);
        assert_eq!(early.process.server_binary, None, "PID 1 is no server");
        t.mark_listened(ExecId(10), 10);
        let worker = t.fork(20, 10, ExecId(20), ExecId(10), Timestamp(2), 2);
        let server = |p: &Process| p.server_binary.as_deref().map(|s| s.to_string());
        assert_eq!(server(&worker.process).as_deref(), Some("/usr/sbin/sshd"));
        let mut parent = ExecId(20);
        let mut pid = 20;
        let mut last = worker;
        for i in 0..12u32 {
            let id = 100 + u64::from(i);
            t.fork(pid + 1, pid, ExecId(id), parent, Timestamp(3), 3);
            last = t.exec(
                proc(pid + 1, pid, id + 1000, "/usr/bin/bash"),
                ParentHint::ExecId(ExecId(id)),
                4,
            );
            parent = ExecId(id + 1000);
            pid += 1;
        }
        assert!(last
            .ancestors(8)
            .iter()
            .all(|a| &*a.binary != "/usr/sbin/sshd"));
        assert_eq!(
            server(&last.process).as_deref(),
            Some("/usr/sbin/sshd"),
            "twelve images below, past the chain bound"
        );
        t.mark_listened(parent, pid);
        let below = t.exec(
            proc(pid + 1, pid, 5000, "/usr/bin/dash"),
            ParentHint::ExecId(parent),
            5,
        );
        assert_eq!(
            server(&below.process).as_deref(),
            Some("/usr/bin/bash"),
            "the nearest server"
        );
        assert_eq!(
            t.get(ExecId(11)).unwrap().process.server_binary,
            None,
            "started before the server listened"
        );
    }

    #[test]
    fn exec_without_fork_makes_the_replaced_image_the_parent() {
        let mut t = tree();
        t.fork(30, 10, ExecId(30), ExecId(10), Timestamp(1), 1);
        t.exec(
            proc(30, 10, 31, "/usr/bin/bash"),
            ParentHint::ExecId(ExecId(10)),
            2,
        );
        let env = t.exec(
            proc(30, 10, 32, "/usr/bin/env"),
            ParentHint::PreviousImage(ExecId(31)),
            3,
        );
        assert_eq!(
            &*env.parent.as_ref().unwrap().process.binary,
            "/usr/bin/bash"
        );
        assert_eq!(env.process.parent_exec_id, Some(ExecId(31)));
        assert_eq!(
            binaries(&env.ancestors(2)),
            ["/usr/bin/bash", "/usr/sbin/sshd"]
        );
    }

    #[test]
    fn unknown_parent_exec_id_falls_back_to_the_ppid() {
        let mut t = tree();
        let n = t.exec(
            proc(40, 10, 41, "/usr/bin/id"),
            ParentHint::ExecId(ExecId(0)),
            1,
        );
        assert_eq!(n.process.parent_exec_id, Some(ExecId(10)));
        assert_eq!(
            &*n.parent.as_ref().unwrap().process.binary,
            "/usr/sbin/sshd"
        );
    }

    #[test]
    fn exited_images_are_retained_then_expired_but_ancestry_survives() {
        let mut t = ProcessTree::new(TreeOptions {
            exit_retention_ns: 100,
            ..TreeOptions::default()
        });
        t.seed(vec![proc(1, 0, 1, "/sbin/init")]);
        t.exec(
            proc(50, 1, 50, "/usr/bin/bash"),
            ParentHint::ExecId(ExecId(1)),
            0,
        );
        let child = t.exec(
            proc(51, 50, 51, "/usr/bin/sleep"),
            ParentHint::ExecId(ExecId(50)),
            0,
        );
        let gone = t.exit(50, ExecId(50), 10).unwrap();
        assert_eq!(&*gone.process.binary, "/usr/bin/bash");
        assert!(t.current(50).is_none());
        assert!(t.get(ExecId(50)).is_some(), "retained for late events");
        t.expire(50);
        assert!(t.get(ExecId(50)).is_some());
        t.expire(200);
        assert!(
            t.get(ExecId(50)).is_none(),
            "forgotten after the retention period"
        );
        assert_eq!(
            binaries(&child.ancestors(8)),
            ["/usr/bin/bash", "/sbin/init"],
            "the child still has its ancestry"
        );
        assert_eq!(
            t.stats(),
            TreeStats {
                live: 2,
                images: 2,
                retained: 0
            }
        );
    }

    #[test]
    fn retention_is_capped_by_count() {
        let mut t = ProcessTree::new(TreeOptions {
            max_exited: 3,
            ..TreeOptions::default()
        });
        for pid in 100..110 {
            t.exec(
                proc(pid, 1, u64::from(pid), "/bin/true"),
                ParentHint::ExecId(ExecId(0)),
                0,
            );
            t.exit(pid, ExecId(u64::from(pid)), 1);
        }
        t.expire(2);
        assert_eq!(t.stats().retained, 3);
        assert!(t.get(ExecId(109)).is_some() && t.get(ExecId(100)).is_none());
    }

    #[test]
    fn ancestry_depth_is_configurable_and_long_chains_are_cut() {
        let mut t = ProcessTree::new(TreeOptions {
            ancestors_depth: 3,
            max_chain: 10,
            ..TreeOptions::default()
        });
        t.seed(vec![proc(1, 0, 1, "/sbin/init")]);
        // One process exec'ing itself 100 times: a chain of 100 images.
        let mut last = ExecId(1);
        for i in 0..100u64 {
            let id = ExecId(1000 + i);
            t.exec(
                proc(7, 1, id.0, &format!("/bin/p{i}")),
                ParentHint::PreviousImage(last),
                i,
            );
            last = id;
        }
        let node = t.current(7).unwrap();
        assert_eq!(
            binaries(&node.ancestors(3)),
            ["/bin/p98", "/bin/p97", "/bin/p96"]
        );
        let mut depth = 0;
        let mut next = node.parent.as_ref();
        while let Some(n) = next {
            depth += 1;
            next = n.parent.as_ref();
        }
        assert!(depth <= 10 + 3, "chain is bounded, was {depth}");
    }

    #[test]
    fn resolve_prefers_exec_id_and_falls_back_to_pid() {
        let t = tree();
        assert_eq!(t.resolve(ExecId(10), 999).unwrap().process.pid, 10);
        assert_eq!(
            t.resolve(ExecId(0), 10).unwrap().process.exec_id,
            ExecId(10)
        );
        assert!(t.resolve(ExecId(77), 77).is_none());
    }
}
