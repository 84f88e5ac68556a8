//! The agent's metric families and the shared counters behind them.
//!
//! [`AgentStats`] is what the pipeline thread updates: one relaxed atomic add per event (by
//! kind), a short map update per alert, a few gauges per batch. The families registered by
//! [`register`] read it at scrape time, together with what lives outside the pipeline: the
//! kernel's counter map, the ring buffer's positions, the reader's counters and
//! `/proc/self`. The same numbers answer the local API's `status` request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use libbpf_rs::MapHandle;
use shrike_bpf::abi::shrike_counter as C;
use shrike_bpf::capability::Status;
use shrike_bpf::{Counters, ReaderStats};
use shrike_event::{Event, EventKind, IncidentState};
use shrike_rules::Severity;

use super::{Kind, Registry};
use shrike_bpf::ringbuf::RingFill;

/// Capability states, in the order the `shrike_capability_state` family lists them.
const STATES: [&str; 5] = ["ok", "fallback", "degraded", "unavailable", "off"];
/// Suppression reasons, as `alerts_suppressed` events count them.
const REASONS: [&str; 3] = ["duplicate", "throttle", "global_limit"];

/// Counters and gauges the pipeline thread keeps for metrics and `shrike status`.
pub struct AgentStats {
    started: SystemTime,
    started_at: Instant,
    events: [AtomicU64; EventKind::ALL.len()],
    /// Alerts written, by rule id, per severity (index: [`Severity`] order).
    alerts: Mutex<BTreeMap<String, [u64; 5]>>,
    /// Alerts held back by shaping, by rule id, per reason ([`REASONS`]).
    suppressed: Mutex<BTreeMap<String, [u64; 3]>>,
    pub incidents_opened: AtomicU64,
    pub incidents_closed: AtomicU64,
    /// Policies put in force: 1 at start, one more per successful reload.
    pub policy_generation: AtomicU64,
    pub reloads_succeeded: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub rules_enabled: AtomicU64,
    pub rules_not_in_force: AtomicU64,
    pub tree_live: AtomicU64,
    pub tree_images: AtomicU64,
    pub tree_retained: AtomicU64,
    /// Batches the pipeline took from the reader's channel.
    pub batches_received: AtomicU64,
    pub decode_errors: AtomicU64,
    pub unknown_kinds: AtomicU64,
    capabilities: Mutex<Vec<(&'static str, &'static str)>>,
    /// Local API: connected clients, streams cut off for being slow, events the API's
    /// fan-out had no room for, and events waiting in it.
    pub api_clients: AtomicU64,
    pub api_cut_off: AtomicU64,
    pub api_dropped: AtomicU64,
    pub api_queued: AtomicU64,
}

impl Default for AgentStats {
    fn default() -> Self {
        AgentStats {
            started: SystemTime::now(),
            started_at: Instant::now(),
            events: std::array::from_fn(|_| AtomicU64::new(0)),
            alerts: Mutex::default(),
            suppressed: Mutex::default(),
            incidents_opened: AtomicU64::new(0),
            incidents_closed: AtomicU64::new(0),
            policy_generation: AtomicU64::new(0),
            reloads_succeeded: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            rules_enabled: AtomicU64::new(0),
            rules_not_in_force: AtomicU64::new(0),
            tree_live: AtomicU64::new(0),
            tree_images: AtomicU64::new(0),
            tree_retained: AtomicU64::new(0),
            batches_received: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            unknown_kinds: AtomicU64::new(0),
            capabilities: Mutex::default(),
            api_clients: AtomicU64::new(0),
            api_cut_off: AtomicU64::new(0),
            api_dropped: AtomicU64::new(0),
            api_queued: AtomicU64::new(0),
        }
    }
}

impl AgentStats {
    /// Counts one event as written: its kind, its alerts (after shaping: the ones reported),
    /// an incident's opening or close, an `alerts_suppressed` report's per-rule counts.
    pub fn observe(&self, event: &Event) {
        self.events[event.kind.index()].fetch_add(1, Relaxed);
        if !event.alerts.is_empty() {
            let mut alerts = lock(&self.alerts);
            for alert in &event.alerts {
                let sev = Severity::parse(&alert.severity).map_or(0, |s| s as usize);
                match alerts.get_mut(alert.rule_id.as_str()) {
                    Some(counts) => counts[sev] += 1,
                    None => {
                        let mut counts = [0; 5];
                        counts[sev] = 1;
                        alerts.insert(alert.rule_id.clone(), counts);
                    }
                }
            }
        }
        match event.kind {
            EventKind::Incident => match event.incident().map(|i| i.state) {
                Some(IncidentState::Open) => {
                    self.incidents_opened.fetch_add(1, Relaxed);
                }
                Some(IncidentState::Closed) => {
                    self.incidents_closed.fetch_add(1, Relaxed);
                }
                _ => {}
            },
            EventKind::AlertsSuppressed => {
                let Some(report) = event.suppressed() else {
                    return;
                };
                let mut suppressed = lock(&self.suppressed);
                for rule in &report.rules {
                    let counts = suppressed.entry(rule.rule_id.clone()).or_default();
                    counts[0] += rule.duplicate;
                    counts[1] += rule.throttle;
                    counts[2] += rule.global_limit;
                }
            }
            _ => {}
        }
    }

    /// The capabilities as the sensors loaded them.
    pub fn set_capabilities(&self, statuses: &[Status]) {
        *lock(&self.capabilities) = statuses
            .iter()
            .map(|s| (s.capability.name(), s.state.as_str()))
            .collect();
    }

    /// A policy was put in force (at start or by a reload).
    pub fn policy_in_force(&self, rules_enabled: usize, not_in_force: usize) {
        self.policy_generation.fetch_add(1, Relaxed);
        self.rules_enabled.store(rules_enabled as u64, Relaxed);
        self.rules_not_in_force.store(not_in_force as u64, Relaxed);
    }

    /// After each batch: the process tree's size and the pipeline's own counters.
    pub fn after_batch(&self, pipeline: &crate::pipeline::Pipeline) {
        let tree = pipeline.tree().stats();
        self.tree_live.store(tree.live as u64, Relaxed);
        self.tree_images.store(tree.images as u64, Relaxed);
        self.tree_retained.store(tree.retained as u64, Relaxed);
        let stats = pipeline.stats();
        self.decode_errors.store(stats.decode_errors, Relaxed);
        self.unknown_kinds.store(stats.unknown_kinds, Relaxed);
    }

    /// Events written so far, by kind (every kind, zeros included).
    pub fn events_by_kind(&self) -> Vec<(&'static str, u64)> {
        EventKind::ALL
            .iter()
            .map(|k| (k.as_str(), self.events[k.index()].load(Relaxed)))
            .collect()
    }

    /// Alerts written so far: (rule id, severity, count), sorted.
    pub fn alerts(&self) -> Vec<(String, &'static str, u64)> {
        let alerts = lock(&self.alerts);
        let mut out = Vec::new();
        for (rule, counts) in alerts.iter() {
            for (sev, n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
                out.push((rule.clone(), Severity::ALL[sev].as_str(), *n));
            }
        }
        out
    }

    /// Alerts suppressed so far: (rule id, reason, count), sorted.
    pub fn suppressed(&self) -> Vec<(String, &'static str, u64)> {
        let suppressed = lock(&self.suppressed);
        let mut out = Vec::new();
        for (rule, counts) in suppressed.iter() {
            for (reason, n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
                out.push((rule.clone(), REASONS[reason], *n));
            }
        }
        out
    }

    /// Capability names and states.
    pub fn capabilities(&self) -> Vec<(&'static str, &'static str)> {
        lock(&self.capabilities).clone()
    }

    /// Seconds since the agent started.
    pub fn uptime(&self) -> Duration {
        self.started_at.elapsed()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the metrics read besides [`AgentStats`]; each part is optional (tests, trial runs).
#[derive(Default)]
pub struct Sources {
    /// The kernel's per-CPU counter map.
    pub counters: Option<MapHandle>,
    /// The ring buffer's positions.
    pub ring: Option<RingFill>,
    /// The ring-buffer reader's counters.
    pub reader: Option<Arc<ReaderStats>>,
}

/// The kernel counters, read at most once per 100 ms however many families ask.
struct CounterCache {
    map: MapHandle,
    last: Mutex<Option<(Instant, Counters)>>,
}

impl CounterCache {
    fn read(&self) -> Counters {
        let mut last = lock(&self.last);
        if let Some((at, counters)) = last.as_ref() {
            if at.elapsed() < Duration::from_millis(100) {
                return counters.clone();
            }
        }
        let counters = Counters::read(&self.map).unwrap_or_default();
        *last = Some((Instant::now(), counters.clone()));
        counters
    }
}

/// The kernel counters that have their own family, with the label value they get there.
const SEEN: [(C, &str); 5] = [
    (C::SHRIKE_CNT_EXEC_SEEN, "exec"),
    (C::SHRIKE_CNT_FORK_SEEN, "fork"),
    (C::SHRIKE_CNT_EXIT_SEEN, "exit"),
    (C::SHRIKE_CNT_FILE_SEEN, "file"),
    (C::SHRIKE_CNT_PRIV_SEEN, "privilege"),
];

/// Registers every agent family on `registry`.
pub fn register(registry: &Registry, stats: &Arc<AgentStats>, sources: Sources) {
    let s = stats.clone();
    registry.family(
        "shrike_build_info",
        "The agent's version (always 1).",
        Kind::Gauge,
        &["version"],
        |out| out.add(&[env!("CARGO_PKG_VERSION")], 1.0),
    );
    registry.family(
        "shrike_events_total",
        "Events the pipeline produced, by kind (agent events included).",
        Kind::Counter,
        &["kind"],
        move |out| {
            for (kind, n) in s.events_by_kind() {
                out.add(&[kind], n as f64);
            }
        },
    );
    let s = stats.clone();
    registry.family(
        "shrike_alerts_total",
        "Alerts written (after shaping), by rule and severity.",
        Kind::Counter,
        &["rule", "severity"],
        move |out| {
            for (rule, sev, n) in s.alerts() {
                out.add(&[&rule, sev], n as f64);
            }
        },
    );
    let s = stats.clone();
    registry.family(
        "shrike_alerts_suppressed_total",
        "Alerts held back by shaping (dedup, throttle, global limit), by rule and reason, as reported in alerts_suppressed events.",
        Kind::Counter,
        &["rule", "reason"],
        move |out| {
            for (rule, reason, n) in s.suppressed() {
                out.add(&[&rule, reason], n as f64);
            }
        },
    );
    let s = stats.clone();
    registry.single(
        "shrike_incidents_total",
        "Incidents opened.",
        Kind::Counter,
        move || s.incidents_opened.load(Relaxed) as f64,
    );
    let s = stats.clone();
    registry.single(
        "shrike_incidents_open",
        "Incidents open now.",
        Kind::Gauge,
        move || {
            s.incidents_opened
                .load(Relaxed)
                .saturating_sub(s.incidents_closed.load(Relaxed)) as f64
        },
    );
    register_policy(registry, stats);
    register_pipeline(registry, stats);
    register_kernel(registry, stats, sources);
    register_process(registry);
}

fn register_policy(registry: &Registry, stats: &Arc<AgentStats>) {
    let s = stats.clone();
    registry.single(
        "shrike_policy_generation",
        "Policies put in force since start: 1 at start, one more per successful reload.",
        Kind::Gauge,
        move || s.policy_generation.load(Relaxed) as f64,
    );
    let s = stats.clone();
    registry.family(
        "shrike_policy_reloads_total",
        "Policy reloads, by result (a failed reload leaves the running policy in force).",
        Kind::Counter,
        &["result"],
        move |out| {
            out.add(&["success"], s.reloads_succeeded.load(Relaxed) as f64);
            out.add(&["failure"], s.reloads_failed.load(Relaxed) as f64);
        },
    );
    let s = stats.clone();
    registry.single(
        "shrike_policy_rules",
        "Enabled rules of the policy in force.",
        Kind::Gauge,
        move || s.rules_enabled.load(Relaxed) as f64,
    );
    let s = stats.clone();
    registry.single(
        "shrike_policy_rules_not_in_force",
        "Enabled rules whose capability is missing on this kernel (--allow-degraded).",
        Kind::Gauge,
        move || s.rules_not_in_force.load(Relaxed) as f64,
    );
    let s = stats.clone();
    registry.family(
        "shrike_capability_state",
        "Each capability's state on this kernel: 1 for its current state, 0 for the others.",
        Kind::Gauge,
        &["capability", "state"],
        move |out| {
            for (cap, state) in s.capabilities() {
                for st in STATES {
                    out.add(&[cap, st], if st == state { 1.0 } else { 0.0 });
                }
            }
        },
    );
}

fn register_pipeline(registry: &Registry, stats: &Arc<AgentStats>) {
    let s = stats.clone();
    registry.family(
        "shrike_process_tree_processes",
        "Process images in the agent's process tree: live ones, and ended ones kept for late events.",
        Kind::Gauge,
        &["state"],
        move |out| {
            out.add(&["live"], s.tree_live.load(Relaxed) as f64);
            out.add(&["retained"], s.tree_retained.load(Relaxed) as f64);
        },
    );
    let s = stats.clone();
    registry.single(
        "shrike_decode_errors_total",
        "Kernel records the pipeline could not decode.",
        Kind::Counter,
        move || s.decode_errors.load(Relaxed) as f64,
    );
    let s = stats.clone();
    registry.single(
        "shrike_api_clients",
        "Clients connected to the local API.",
        Kind::Gauge,
        move || s.api_clients.load(Relaxed) as f64,
    );
    let s = stats.clone();
    registry.single(
        "shrike_api_clients_cut_off_total",
        "Local API streams cut off because the client did not keep up.",
        Kind::Counter,
        move || s.api_cut_off.load(Relaxed) as f64,
    );
    let s = stats.clone();
    registry.single(
        "shrike_api_events_dropped_total",
        "Events the local API's fan-out had no room for (its queue was full).",
        Kind::Counter,
        move || s.api_dropped.load(Relaxed) as f64,
    );
    let s = stats.clone();
    registry.single(
        "shrike_api_queue_events",
        "Events waiting in the local API's fan-out queue.",
        Kind::Gauge,
        move || s.api_queued.load(Relaxed) as f64,
    );
}

fn register_kernel(registry: &Registry, stats: &Arc<AgentStats>, sources: Sources) {
    if let Some(map) = sources.counters {
        let cache = Arc::new(CounterCache {
            map,
            last: Mutex::new(None),
        });
        let c = cache.clone();
        registry.single(
            "shrike_kernel_records_lost_total",
            "Records the kernel dropped because the ring buffer was full.",
            Kind::Counter,
            move || c.read().lost() as f64,
        );
        let c = cache.clone();
        registry.family(
            "shrike_kernel_seen_total",
            "Operations the kernel sensors saw, by kind (before in-kernel filtering).",
            Kind::Counter,
            &["kind"],
            move |out| {
                let counters = c.read();
                for (id, kind) in SEEN {
                    out.add(&[kind], counters.get(id) as f64);
                }
            },
        );
        let c = cache.clone();
        registry.family(
            "shrike_kernel_filtered_total",
            "Events dropped in the kernel because nothing watches them, by kind.",
            Kind::Counter,
            &["kind"],
            move |out| out.add(&["file"], c.read().get(C::SHRIKE_CNT_FILE_FILTERED) as f64),
        );
        let c = cache;
        registry.family(
            "shrike_kernel_counter_total",
            "Every other kernel-side counter, by name (failures, truncations, enforcement).",
            Kind::Counter,
            &["counter"],
            move |out| {
                let counters = c.read();
                for (id, name, _) in shrike_bpf::counters::COUNTERS {
                    let own = *id == C::SHRIKE_CNT_RINGBUF_FULL
                        || *id == C::SHRIKE_CNT_FILE_FILTERED
                        || SEEN.iter().any(|(s, _)| s == id);
                    if !own {
                        out.add(&[name], counters.get(*id) as f64);
                    }
                }
            },
        );
    }
    if let Some(ring) = sources.ring {
        let size = ring.size() as f64;
        registry.single(
            "shrike_ringbuf_size_bytes",
            "Size of the kernel-to-agent ring buffer.",
            Kind::Gauge,
            move || size,
        );
        registry.single(
            "shrike_ringbuf_used_bytes",
            "Bytes in the ring buffer the reader has not consumed yet.",
            Kind::Gauge,
            move || ring.used() as f64,
        );
    }
    if let Some(reader) = sources.reader {
        let r = reader.clone();
        registry.single(
            "shrike_ringbuf_records_total",
            "Records read from the ring buffer.",
            Kind::Counter,
            move || r.records.load(Relaxed) as f64,
        );
        let r = reader.clone();
        registry.single(
            "shrike_reader_backpressure_total",
            "Times the ring-buffer reader waited because the pipeline's queue was full.",
            Kind::Counter,
            move || r.backpressure.load(Relaxed) as f64,
        );
        let s = stats.clone();
        registry.single(
            "shrike_pipeline_queue_batches",
            "Batches of records read from the ring buffer and waiting for the pipeline.",
            Kind::Gauge,
            move || {
                reader
                    .batches
                    .load(Relaxed)
                    .saturating_sub(s.batches_received.load(Relaxed)) as f64
            },
        );
    }
}

/// The standard `process_*` families (as Prometheus client libraries export them).
fn register_process(registry: &Registry) {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    registry.single(
        "process_resident_memory_bytes",
        "Resident memory of the agent (/proc/self/statm).",
        Kind::Gauge,
        || crate::self_memory::resident_bytes() as f64,
    );
    registry.single(
        "process_virtual_memory_bytes",
        "Virtual memory of the agent (/proc/self/statm).",
        Kind::Gauge,
        || crate::self_memory::virtual_bytes() as f64,
    );
    registry.single(
        "process_cpu_seconds_total",
        "User and system CPU time of the agent.",
        Kind::Counter,
        move || {
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
            // Fields after the command name (which may hold spaces) start at state (3rd).
            let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
            let f: Vec<&str> = rest.split(' ').collect();
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (t(11) + t(12)) / ticks
        },
    );
    registry.single(
        "process_open_fds",
        "Open file descriptors of the agent.",
        Kind::Gauge,
        || std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as f64,
    );
    let start = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64().floor());
    registry.single(
        "process_start_time_seconds",
        "When the agent started, in seconds since the Unix epoch.",
        Kind::Gauge,
        move || start,
    );
}

impl AgentStats {
    /// When the agent started.
    pub fn started(&self) -> SystemTime {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_event::{Alert, Process, Timestamp};

    /// Every family the agent registers has a valid name; counters end in `_total`.
    #[test]
    fn family_names_follow_prometheus_conventions() {
        let registry = Registry::default();
        register(&registry, &Arc::default(), Sources::default());
        let text = registry.render();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut parts = line.split(' ').skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(super::super::valid_name(name), "{name}");
            assert!(
                name.starts_with("shrike_") || name.starts_with("process_"),
                "{name}"
            );
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        }
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }

    /// Events are counted by kind and alerts by rule and severity, as they were written.
    #[test]
    fn events_and_alerts_are_counted_as_observed() {
        let stats = Arc::new(AgentStats::default());
        let registry = Registry::default();
        register(&registry, &stats, Sources::default());
        let mut e = Event::new(
            Timestamp(1),
            EventKind::ProcessExec,
            "n".into(),
            Arc::new(Process::default()),
        );
        stats.observe(&e);
        e.alerts.push(Alert {
            rule_id: "R-1".into(),
            rule: "r".into(),
            severity: "high".into(),
            action: "alert".into(),
            outcome: "alerted".into(),
            mitre: vec![],
            incident_id: None,
        });
        stats.observe(&e);
        stats.observe(&e);
        let text = registry.render();
        assert!(
            text.contains("shrike_events_total{kind=\"process_exec\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("shrike_events_total{kind=\"dns\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("shrike_alerts_total{rule=\"R-1\",severity=\"high\"} 2\n"),
            "{text}"
        );
    }
}
