//! Incidents: alerts that belong together, with a stable id and a running summary.
//!
//! **Grouping.** An alert joins an open incident when its process, its parent image or one of
//! its ancestors is a member of that incident (the tree below the incident's root), or, inside
//! a container, when the incident is that container's. Otherwise it opens one. The root is the
//! first alerting image — or, when that image was started by a shell, the shell: the steps of
//! one script or one interactive session (`cp` then `chmod`, `truncate` then `rm`) are siblings
//! below the shell that ran them, and are one story. A step run through a wrapper that execs
//! its command without forking (`ip netns exec`, `env`, `nice`) was still started by the shell. Members grow as the tree does: every
//! image executed by a member becomes one (so a tree deeper than the ancestors an event
//! carries stays together), and leaves on exit.
//!
//! **Life.** An `incident` event is written when it opens (with its first alert counted), at
//! most once per update interval while alerts keep coming, and when it closes: after the quiet
//! window without a new alert, when the agent stops, or when room is needed.
//!
//! **Memory.** At most [`MAX_OPEN`] open incidents (the one quiet the longest is closed,
//! `evicted`, to open another); per incident at most [`MAX_MEMBERS`] member images and as many
//! alerting images counted in `processes`, and [`MAX_RULES`] rule rows (further rules' matches
//! still count in the totals).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use shrike_event::{
    Alert, CloseReason, Event, EventKind, ExecId, ImageRef, Incident, IncidentRule, IncidentState,
    Process, Timestamp,
};
use shrike_rules::Severity;

/// Open incidents at most.
pub const MAX_OPEN: usize = 256;
/// Member images (and counted alerting images) per incident at most.
pub const MAX_MEMBERS: usize = 512;
/// Rule rows per incident at most.
pub const MAX_RULES: usize = 64;

/// Shells whose children are the steps of one script or session (base names of binaries).
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "pdksh", "ash", "fish", "csh", "tcsh",
    "yash", "busybox",
];

struct Open {
    summary: Incident,
    root: Arc<Process>,
    root_parent: Option<Arc<Process>>,
    root_ancestors: Vec<Arc<Process>>,
    members: HashSet<ExecId>,
    alerting: HashSet<ExecId>,
    container: Option<String>,
    dirty: bool,
    last_written: u64,
}

pub(super) struct Incidents {
    open: HashMap<u64, Open>,
    by_member: HashMap<ExecId, u64>,
    by_container: HashMap<String, u64>,
    next_slot: u64,
    window_ns: u64,
    update_ns: u64,
    node: Arc<str>,
    /// Incidents opened since start.
    pub opened: u64,
}

fn is_shell(binary: &str) -> bool {
    let name = binary.rsplit('/').next().unwrap_or(binary);
    SHELLS.contains(&name)
}

/// Where in the event's lineage (0: the parent) the shell that started the first alerting image
/// is, if one did (the outermost of consecutive shells: subshells are the script's own): its
/// other children are the same script's or session's other steps. An image
/// that replaced its predecessor by exec without forking (`ip netns exec`, `env`, `nice`,
/// `chroot`) was started by whoever started that predecessor, so the search passes through such
/// a chain (same pid) and stops at the first image that forked.
fn launcher(event: &Event) -> Option<usize> {
    let lineage = event.parent.iter().chain(event.ancestors.iter().skip(1));
    let mut child_pid = event.process.pid;
    for (i, image) in lineage.enumerate() {
        if image.pid <= 1 || image.exec_id.0 == 0 {
            return None;
        }
        if is_shell(&image.binary) {
            // A subshell (a pipeline's `| while read`, `( … )`, `sh -c` in a script) belongs
            // to the shell above it: climb to the outermost of consecutive shells.
            let above = event.ancestors.iter().skip(i + 1);
            let shells = above
                .take_while(|a| a.pid > 1 && a.exec_id.0 != 0 && is_shell(&a.binary))
                .count();
            return Some(i + shells);
        }
        if image.pid != child_pid {
            return None;
        }
        child_pid = image.pid;
    }
    None
}

fn severity_rank(s: &str) -> Option<Severity> {
    Severity::parse(s)
}

impl Incidents {
    pub fn new(window_ns: u64, update_ns: u64, node: Arc<str>) -> Self {
        Incidents {
            open: HashMap::new(),
            by_member: HashMap::new(),
            by_container: HashMap::new(),
            next_slot: 0,
            window_ns,
            update_ns,
            node,
            opened: 0,
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The open incident an alerting `event` belongs to, or a new one: its slot, and whether it
    /// was opened now (the caller writes the `open` event once the alerts are counted). An
    /// incident closed to make room is pushed to `out`.
    pub fn assign(&mut self, event: &Event, out: &mut Vec<Event>) -> (u64, bool) {
        let (slot, opened) = match self.find(event) {
            Some(slot) => (slot, false),
            None => (self.open_for(event, out), true),
        };
        self.add_member(slot, event.process.exec_id);
        (slot, opened)
    }

    fn find(&self, event: &Event) -> Option<u64> {
        let p = &event.process;
        std::iter::once(p.exec_id)
            .chain(p.parent_exec_id)
            .chain(event.ancestors.iter().map(|a| a.exec_id))
            .find_map(|id| self.by_member.get(&id).copied())
            .or_else(|| {
                p.container
                    .as_ref()
                    .and_then(|c| self.by_container.get(&c.id).copied())
            })
    }

    fn open_for(&mut self, event: &Event, out: &mut Vec<Event>) -> u64 {
        if self.open.len() >= MAX_OPEN {
            if let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, o)| o.summary.last_seen)
                .map(|(slot, _)| *slot)
            {
                out.extend(self.close(oldest, event.time, CloseReason::Evicted));
            }
        }
        let p = &event.process;
        let (root, root_parent, root_ancestors) = match launcher(event) {
            Some(i) => (
                event
                    .ancestors
                    .get(i)
                    .cloned()
                    .or_else(|| event.parent.clone())
                    .unwrap_or_else(|| p.clone()),
                event.ancestors.get(i + 1).cloned(),
                event.ancestors.iter().skip(i + 1).cloned().collect(),
            ),
            None => (p.clone(), event.parent.clone(), event.ancestors.clone()),
        };
        let slot = self.next_slot;
        self.next_slot += 1;
        self.opened += 1;
        let id = incident_id(&self.node, root.exec_id, event.time, slot);
        let container = p.container.as_ref().map(|c| c.id.clone());
        let summary = Incident {
            id,
            state: IncidentState::Open,
            close_reason: None,
            grouped_by: if container.is_some() {
                "container"
            } else {
                "process_tree"
            }
            .to_string(),
            first_seen: event.time,
            last_seen: event.time,
            severity: String::new(),
            first_alert: ImageRef {
                pid: p.pid,
                exec_id: p.exec_id,
                binary: p.binary.clone(),
            },
            container: p.container.as_deref().cloned(),
            ..Incident::default()
        };
        let root_exec_id = root.exec_id;
        self.open.insert(
            slot,
            Open {
                summary,
                root,
                root_parent,
                root_ancestors,
                members: HashSet::new(),
                alerting: HashSet::new(),
                container: container.clone(),
                dirty: false,
                last_written: event.time.0,
            },
        );
        self.add_member(slot, root_exec_id);
        if let Some(c) = container {
            self.by_container.insert(c, slot);
        }
        slot
    }

    fn add_member(&mut self, slot: u64, exec_id: ExecId) {
        if exec_id.0 == 0 || self.by_member.contains_key(&exec_id) {
            return;
        }
        if let Some(o) = self.open.get_mut(&slot) {
            if o.members.len() < MAX_MEMBERS {
                o.members.insert(exec_id);
                self.by_member.insert(exec_id, slot);
            }
        }
    }

    /// Keeps membership current from events without alerts: an image executed by a member
    /// joins, a member (not the root) that exits leaves.
    pub fn observe(&mut self, event: &Event) {
        if self.by_member.is_empty() {
            return;
        }
        let p = &event.process;
        match event.kind {
            EventKind::ProcessExec => {
                if let Some(&slot) = p.parent_exec_id.and_then(|id| self.by_member.get(&id)) {
                    self.add_member(slot, p.exec_id);
                }
            }
            EventKind::ProcessExit => {
                if let Some(&slot) = self.by_member.get(&p.exec_id) {
                    if let Some(o) = self.open.get_mut(&slot) {
                        if o.root.exec_id != p.exec_id {
                            o.members.remove(&p.exec_id);
                            self.by_member.remove(&p.exec_id);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Counts one match of `alert` on `event` in the incident; `suppressed` when it is not
    /// written.
    pub fn count(&mut self, slot: u64, event: &Event, alert: &Alert, suppressed: bool) {
        let Some(o) = self.open.get_mut(&slot) else {
            return;
        };
        let s = &mut o.summary;
        s.alerts += 1;
        if suppressed {
            s.suppressed += 1;
        } else {
            s.reported += 1;
        }
        s.last_seen = s.last_seen.max(event.time);
        if severity_rank(&alert.severity) > severity_rank(&s.severity) {
            s.severity = alert.severity.clone();
        }
        let rules = s.rules.len();
        match s.rules.iter_mut().find(|r| r.rule_id == alert.rule_id) {
            Some(row) => {
                row.count += 1;
                row.suppressed += u64::from(suppressed);
            }
            None if rules < MAX_RULES => s.rules.push(IncidentRule {
                rule_id: alert.rule_id.clone(),
                rule: alert.rule.clone(),
                severity: alert.severity.clone(),
                mitre: alert.mitre.clone(),
                count: 1,
                suppressed: u64::from(suppressed),
            }),
            None => {}
        }
        match alert.outcome.as_str() {
            "denied" => s.outcomes.denied += 1,
            "killed" => s.outcomes.killed += 1,
            "would_deny" => s.outcomes.would_deny += 1,
            _ => s.outcomes.alerted += 1,
        }
        if o.alerting.len() < MAX_MEMBERS {
            o.alerting.insert(event.process.exec_id);
        }
        s.processes = o.alerting.len() as u64;
        o.dirty = true;
    }

    pub fn id(&self, slot: u64) -> Option<Arc<str>> {
        self.open.get(&slot).map(|o| o.summary.id.clone())
    }

    /// The `incident` event for the incident's current state.
    pub fn snapshot(&mut self, slot: u64, state: IncidentState, now: Timestamp) -> Option<Event> {
        let o = self.open.get_mut(&slot)?;
        o.dirty = false;
        o.last_written = now.0;
        Some(render(o, state, None, now, &self.node))
    }

    /// Writes updates that are due and closes incidents quiet for the window.
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        let mut quiet = Vec::new();
        for (slot, o) in self.open.iter_mut() {
            if now.0 >= o.summary.last_seen.0.saturating_add(self.window_ns) {
                quiet.push(*slot);
            } else if o.dirty && now.0 >= o.last_written.saturating_add(self.update_ns) {
                o.dirty = false;
                o.last_written = now.0;
                out.push(render(o, IncidentState::Update, None, now, &self.node));
            }
        }
        quiet.sort_unstable();
        for slot in quiet {
            out.extend(self.close(slot, now, CloseReason::Quiet));
        }
    }

    /// Closes every open incident (the agent is stopping).
    pub fn close_all(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        let mut slots: Vec<u64> = self.open.keys().copied().collect();
        slots.sort_unstable();
        for slot in slots {
            out.extend(self.close(slot, now, CloseReason::Shutdown));
        }
    }

    fn close(&mut self, slot: u64, now: Timestamp, reason: CloseReason) -> Option<Event> {
        let o = self.open.remove(&slot)?;
        for m in &o.members {
            if self.by_member.get(m) == Some(&slot) {
                self.by_member.remove(m);
            }
        }
        if let Some(c) = &o.container {
            if self.by_container.get(c) == Some(&slot) {
                self.by_container.remove(c);
            }
        }
        Some(render(
            &o,
            IncidentState::Closed,
            Some(reason),
            now,
            &self.node,
        ))
    }

    /// Member images across open incidents (for tests of the bounds).
    #[cfg(test)]
    pub fn members(&self) -> usize {
        self.by_member.len()
    }
}

fn render(
    o: &Open,
    state: IncidentState,
    reason: Option<CloseReason>,
    now: Timestamp,
    node: &Arc<str>,
) -> Event {
    let mut summary = o.summary.clone();
    summary.state = state;
    summary.close_reason = reason;
    summary.techniques = o
        .summary
        .rules
        .iter()
        .flat_map(|r| r.mitre.iter().cloned())
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    let time = if state == IncidentState::Open {
        o.summary.first_seen
    } else {
        now
    };
    let mut event = Event::new(time, EventKind::Incident, node.clone(), o.root.clone());
    event.parent = o.root_parent.clone();
    event.ancestors = o.root_ancestors.clone();
    event.set_incident(summary);
    event
}

/// 16 hex digits from the node, the root image, the first alert's time and a counter: stable
/// for the incident's life, distinct across incidents and restarts.
fn incident_id(node: &str, root: ExecId, first: Timestamp, slot: u64) -> Arc<str> {
    let mut h = DefaultHasher::new();
    node.hash(&mut h);
    root.hash(&mut h);
    first.hash(&mut h);
    slot.hash(&mut h);
    format!("{:016x}", h.finish()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, exec_id: u64, parent: u64, binary: &str) -> Arc<Process> {
        Arc::new(Process {
            pid,
            exec_id: ExecId(exec_id),
            parent_exec_id: (parent != 0).then_some(ExecId(parent)),
            binary: binary.into(),
            ..Process::default()
        })
    }

    /// An event by `p` with the chain `anc` (nearest first) as parent and ancestors.
    fn ev(kind: EventKind, t: u64, p: &Arc<Process>, anc: &[&Arc<Process>]) -> Event {
        let mut e = Event::new(Timestamp(t), kind, "n".into(), p.clone());
        e.parent = anc.first().map(|a| (*a).clone());
        e.ancestors = anc.iter().map(|a| (*a).clone()).collect();
        e
    }

    fn alert(id: &str, severity: &str) -> Alert {
        Alert {
            rule_id: id.into(),
            rule: id.into(),
            severity: severity.into(),
            action: "alert".into(),
            outcome: "alerted".into(),
            mitre: vec!["T1000".into()],
            incident_id: None,
        }
    }

    /// Two steps of one script (siblings below its shell) are one incident rooted at the
    /// shell; another script's step is another incident.
    #[test]
    fn siblings_below_a_shell_share_the_shell_as_root() {
        let mut inc = Incidents::new(60, 10, "n".into());
        let runner = proc(1000, 1, 0, "/usr/bin/cargo-test");
        let sh = proc(1001, 2, 1, "/usr/bin/dash");
        let truncate = proc(1002, 3, 2, "/usr/bin/truncate");
        let rm = proc(1003, 4, 2, "/usr/bin/rm");
        let mut out = Vec::new();
        let (a, opened) = inc.assign(
            &ev(EventKind::FileOpen, 1, &truncate, &[&sh, &runner]),
            &mut out,
        );
        assert!(opened);
        let (b, opened) = inc.assign(
            &ev(EventKind::FileUnlink, 2, &rm, &[&sh, &runner]),
            &mut out,
        );
        assert!(!opened);
        assert_eq!(a, b);
        let snap = inc.snapshot(a, IncidentState::Open, Timestamp(2)).unwrap();
        assert_eq!(snap.process.exec_id, ExecId(2), "the shell is the root");
        assert_eq!(snap.parent.as_ref().unwrap().exec_id, ExecId(1));
        assert_eq!(snap.incident().unwrap().first_alert.exec_id, ExecId(3));

        let sh2 = proc(1010, 12, 1, "/usr/bin/dash");
        let cat = proc(1011, 13, 12, "/usr/bin/cat");
        let (c, opened) = inc.assign(
            &ev(EventKind::FileOpen, 3, &cat, &[&sh2, &runner]),
            &mut out,
        );
        assert!(opened, "another script under the same (non-shell) runner");
        assert_ne!(a, c);
        assert_ne!(inc.id(a), inc.id(c));
    }

    /// `ip netns exec NS iptables -F` twice from one script: each iptables replaced its `ip`
    /// (same pid), which the script's shell forked; both are steps of that script, one
    /// incident rooted at the shell. A non-shell that forked (a runner) stops the search.
    #[test]
    fn steps_run_through_an_exec_wrapper_stay_under_their_shell() {
        let mut inc = Incidents::new(60, 10, "n".into());
        let runner = proc(1000, 1, 0, "/usr/bin/cargo-test");
        let sh = proc(1001, 2, 1, "/usr/bin/dash");
        let mut out = Vec::new();
        let mut slots = Vec::new();
        for (pid, id) in [(1002, 3), (1003, 5)] {
            let ip = proc(pid, id, 2, "/usr/sbin/ip");
            let iptables = proc(pid, id + 1, id, "/usr/sbin/xtables-nft-multi");
            let (slot, _) = inc.assign(
                &ev(EventKind::ProcessExec, id, &iptables, &[&ip, &sh, &runner]),
                &mut out,
            );
            slots.push(slot);
        }
        assert_eq!(slots[0], slots[1], "one incident");
        let snap = inc
            .snapshot(slots[0], IncidentState::Open, Timestamp(9))
            .unwrap();
        assert_eq!(snap.process.exec_id, ExecId(2), "the shell is the root");
        assert_eq!(snap.parent.as_ref().unwrap().exec_id, ExecId(1));

        // A step in a pipeline's subshell (`find … | while read f; do openssl …`) first, then a
        // step of the script itself: one incident, rooted at the script's shell.
        let mut inc2 = Incidents::new(60, 10, "n".into());
        let sub = proc(1050, 50, 2, "/usr/bin/dash");
        let openssl = proc(1051, 51, 50, "/usr/bin/openssl");
        let gpg = proc(1052, 52, 2, "/usr/bin/gpg");
        let (first, _) = inc2.assign(
            &ev(EventKind::FileOpen, 5, &openssl, &[&sub, &sh, &runner]),
            &mut out,
        );
        let (second, opened) =
            inc2.assign(&ev(EventKind::FileOpen, 6, &gpg, &[&sh, &runner]), &mut out);
        assert!(
            !opened,
            "the subshell's step and the script's step are one story"
        );
        assert_eq!(first, second);

        let sh2 = proc(1099, 29, 1, "/usr/bin/dash");
        let python = proc(1100, 30, 29, "/usr/bin/python3");
        let tool = proc(1101, 31, 30, "/usr/bin/env");
        let child = proc(1102, 32, 31, "/usr/bin/cat");
        let (slot, opened) = inc.assign(
            &ev(EventKind::FileOpen, 10, &child, &[&tool, &python, &sh2]),
            &mut out,
        );
        assert!(opened, "env forked cat: not an exec chain up to the shell");
        let snap = inc
            .snapshot(slot, IncidentState::Open, Timestamp(10))
            .unwrap();
        assert_eq!(snap.process.exec_id, ExecId(32));
    }

    /// A first alert by an image not started by a shell makes that image the root; its
    /// descendants join, found through an exec chain the agent saw even past the ancestors an
    /// event carries.
    #[test]
    fn descendants_join_through_members_grown_from_execs() {
        let mut inc = Incidents::new(60, 10, "n".into());
        let nginx = proc(10, 20, 1, "/usr/sbin/nginx");
        let worker = proc(11, 21, 20, "/usr/bin/python3");
        let mut out = Vec::new();
        let (slot, _) = inc.assign(&ev(EventKind::NetConnect, 1, &worker, &[&nginx]), &mut out);
        let snap = inc
            .snapshot(slot, IncidentState::Open, Timestamp(1))
            .unwrap();
        assert_eq!(snap.process.exec_id, ExecId(21));
        // A chain of 12 execs below the worker: each one seen, none alerting.
        let mut parent = worker.clone();
        for i in 0..12 {
            let child = proc(
                100 + i,
                100 + u64::from(i),
                parent.exec_id.0,
                "/usr/bin/env",
            );
            inc.observe(&ev(EventKind::ProcessExec, 2, &child, &[&parent]));
            parent = child;
        }
        // The last one alerts carrying only its parent as ancestry.
        let deep = proc(200, 200, parent.exec_id.0, "/usr/bin/id");
        let (s2, opened) = inc.assign(&ev(EventKind::ProcessExec, 3, &deep, &[&parent]), &mut out);
        assert!(!opened);
        assert_eq!(slot, s2);
        // Unrelated: another nginx child is not in the worker's incident.
        let other = proc(12, 22, 20, "/usr/bin/perl");
        let (s3, opened) = inc.assign(&ev(EventKind::ProcessExec, 3, &other, &[&nginx]), &mut out);
        assert!(opened);
        assert_ne!(slot, s3);
    }

    /// Counts, severity, outcomes and techniques add up; an update waits for the interval and
    /// the incident closes after the quiet window, freeing its members.
    #[test]
    fn summary_updates_at_a_bounded_rate_and_closes_when_quiet() {
        let mut inc = Incidents::new(100, 10, "n".into());
        let p = proc(5, 50, 0, "/usr/bin/x");
        let e = ev(EventKind::ProcessExec, 1, &p, &[]);
        let mut out = Vec::new();
        let (slot, _) = inc.assign(&e, &mut out);
        inc.count(slot, &e, &alert("A", "low"), false);
        let open = inc
            .snapshot(slot, IncidentState::Open, Timestamp(1))
            .unwrap();
        assert_eq!(open.time, Timestamp(1));
        let mut e2 = e.clone();
        e2.time = Timestamp(5);
        inc.count(slot, &e2, &alert("B", "critical"), false);
        inc.count(slot, &e2, &alert("B", "critical"), true);
        inc.tick(Timestamp(6), &mut out);
        assert!(out.is_empty(), "an update waits for the interval");
        inc.tick(Timestamp(11), &mut out);
        let e = out.pop().unwrap();
        let s = e.incident().unwrap();
        assert_eq!(s.state, IncidentState::Update);
        assert_eq!((s.alerts, s.reported, s.suppressed), (3, 2, 1));
        assert_eq!(s.severity, "critical");
        assert_eq!(s.rules[1].count, 2);
        assert_eq!(s.rules[1].suppressed, 1);
        assert_eq!(s.outcomes.alerted, 3);
        assert_eq!(s.techniques, ["T1000"]);
        assert_eq!(s.processes, 1);
        inc.tick(Timestamp(50), &mut out);
        assert!(out.is_empty(), "nothing new: no update");
        inc.tick(Timestamp(105), &mut out);
        let closed = out.pop().unwrap();
        let s = closed.incident().unwrap();
        assert_eq!(
            (s.state, s.close_reason),
            (IncidentState::Closed, Some(CloseReason::Quiet))
        );
        assert_eq!(closed.time, Timestamp(105));
        assert!(inc.is_empty());
        assert_eq!(inc.members(), 0);
    }

    /// The open table is bounded: the incident quiet the longest is closed as evicted.
    #[test]
    fn open_incidents_are_bounded() {
        let mut inc = Incidents::new(u64::MAX / 4, 10, "n".into());
        let mut out = Vec::new();
        for i in 0..=(MAX_OPEN as u64) {
            let p = proc(10 + i as u32, 1000 + i, 0, "/usr/bin/x");
            inc.assign(&ev(EventKind::ProcessExec, 10 + i, &p, &[]), &mut out);
        }
        assert_eq!(inc.open.len(), MAX_OPEN);
        assert_eq!(out.len(), 1);
        let s = out[0].incident().unwrap();
        assert_eq!(s.close_reason, Some(CloseReason::Evicted));
        assert_eq!(out[0].process.exec_id, ExecId(1000), "the oldest");
    }

    /// Alerts in one container are one incident whatever their process trees.
    #[test]
    fn a_container_is_one_incident() {
        let mut inc = Incidents::new(60, 10, "n".into());
        let c = shrike_event::Container {
            id: "abc".into(),
            runtime: "docker".into(),
        };
        let a = Arc::new(Process {
            pid: 1,
            exec_id: ExecId(70),
            container: Some(Arc::new(c.clone())),
            ..Process::default()
        });
        let b = Arc::new(Process {
            pid: 2,
            exec_id: ExecId(71),
            container: Some(Arc::new(c)),
            ..Process::default()
        });
        let mut out = Vec::new();
        let (x, _) = inc.assign(&ev(EventKind::ProcessExec, 1, &a, &[]), &mut out);
        let (y, opened) = inc.assign(&ev(EventKind::ProcessExec, 2, &b, &[]), &mut out);
        assert!(!opened);
        assert_eq!(x, y);
        let s = inc.snapshot(x, IncidentState::Open, Timestamp(2)).unwrap();
        assert_eq!(s.incident().unwrap().grouped_by, "container");
    }
}
