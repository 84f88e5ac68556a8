//! Answers to `ps`, `status` and `policy`, computed on the pipeline thread (which owns the
//! process tree and the policy) between batches.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use serde_json::{json, Value};
use shrike_bpf::capability::Status;
use shrike_proctree::Node;

use super::protocol::{Reply, Request, PROTOCOL_VERSION};
use crate::health::{self, Missing};
use crate::metrics::agent::AgentStats;
use crate::pipeline::Pipeline;
use crate::policy_source::PolicySource;

/// Ancestors listed for one process at most.
const MAX_ANCESTRY: usize = 64;

/// What the pipeline thread lends to answer a request.
pub struct View<'a> {
    pub pipeline: &'a Pipeline,
    pub policy: &'a shrike_rules::Policy,
    pub source: &'a PolicySource,
    pub capabilities: &'a [Status],
    pub missing: &'a [Missing],
    pub stats: &'a AgentStats,
    pub sensors: &'a shrike_bpf::Sensors,
}

/// The reply to one request other than `events`.
pub fn answer(request: &Request, view: &View<'_>) -> Reply {
    match request {
        Request::Ps { pid: None } => {
            let mut processes: Vec<&Arc<Node>> = view.pipeline.tree().live().collect();
            processes.sort_by_key(|n| n.process.pid);
            let list: Vec<Value> = processes.iter().map(|n| process(n)).collect();
            Reply::Result {
                result: json!({ "processes": list }),
            }
        }
        Request::Ps { pid: Some(pid) } => match view.pipeline.tree().current(*pid) {
            Some(node) => {
                let mut ancestry = Vec::new();
                let mut next = node.parent.clone();
                while let Some(parent) = next {
                    if ancestry.len() == MAX_ANCESTRY {
                        break;
                    }
                    ancestry.push(process(&parent));
                    next = parent.parent.clone();
                }
                Reply::Result {
                    result: json!({ "process": process(node), "ancestry": ancestry }),
                }
            }
            None => Reply::Error {
                message: format!("no process {pid} in the agent's process tree (it is not running, or it exited)"),
            },
        },
        Request::Status => Reply::Result {
            result: status(view),
        },
        Request::Policy => Reply::Result {
            result: json!({
                "generation": view.stats.policy_generation.load(Relaxed),
                "source": view.source.describe(),
                "default_pack": view.source.default_pack,
                "files": view.source.files,
                "rules": view.policy.rules().collect::<Vec<_>>(),
            }),
        },
        Request::Events { .. } => Reply::Error {
            message: "events are answered by the API thread".into(),
        },
    }
}

fn process(node: &Node) -> Value {
    serde_json::to_value(&*node.process).unwrap_or(Value::Null)
}

fn status(view: &View<'_>) -> Value {
    let stats = view.stats;
    let health = health::health(view.capabilities, view.missing);
    let tree = view.pipeline.tree().stats();
    let counters = view.sensors.counters().unwrap_or_default();
    let kernel: serde_json::Map<String, Value> = counters
        .named()
        .map(|(name, v)| (name.to_string(), json!(v)))
        .collect();
    let events: serde_json::Map<String, Value> = stats
        .events_by_kind()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    let alerts: Vec<Value> = stats
        .alerts()
        .into_iter()
        .map(|(rule, severity, count)| json!({"rule": rule, "severity": severity, "count": count}))
        .collect();
    let rss = crate::self_memory::resident_bytes();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": PROTOCOL_VERSION,
        "pid": std::process::id(),
        "node": view.pipeline.node_name().as_ref(),
        "uptime_seconds": stats.uptime().as_secs(),
        "rss_bytes": rss,
        "capabilities": health.capabilities,
        "rules_not_in_force": health.rules_not_in_force,
        "policy": {
            "generation": stats.policy_generation.load(Relaxed),
            "rules": stats.rules_enabled.load(Relaxed),
            "source": view.source.describe(),
            "reloads_succeeded": stats.reloads_succeeded.load(Relaxed),
            "reloads_failed": stats.reloads_failed.load(Relaxed),
        },
        "events": events,
        "alerts": alerts,
        "incidents": {
            "opened": stats.incidents_opened.load(Relaxed),
            "open": stats.incidents_opened.load(Relaxed).saturating_sub(stats.incidents_closed.load(Relaxed)),
        },
        "kernel": kernel,
        "process_tree": { "live": tree.live, "images": tree.images, "retained": tree.retained },
        "api": {
            "clients": stats.api_clients.load(Relaxed),
            "cut_off": stats.api_cut_off.load(Relaxed),
            "events_dropped": stats.api_dropped.load(Relaxed),
        },
    })
}
