//! The outputs' counters as Prometheus families on the agent's metrics registry
//! (`--metrics`): per output (`output` = its name, `type` = its type) what it delivered,
//! dropped (by reason), the failed attempts, and the events waiting for it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::OutputStats;
use crate::metrics::{Kind, Registry};

/// Registers the output families on `registry`, reading `outputs` at each scrape.
pub fn register(registry: &Registry, outputs: Vec<Arc<OutputStats>>) {
    let outputs: Arc<[Arc<OutputStats>]> = outputs.into();
    let each = |read: fn(&OutputStats) -> u64| {
        let outputs = outputs.clone();
        move |out: &mut crate::metrics::Samples<'_>| {
            for o in outputs.iter() {
                out.add(&[&o.name, o.kind], read(o) as f64);
            }
        }
    };
    registry.family(
        "shrike_output_sent_total",
        "Events an output delivered (acknowledged by its destination; stdout: written).",
        Kind::Counter,
        &["output", "type"],
        each(|o| o.sent.load(Ordering::Relaxed)),
    );
    registry.family(
        "shrike_output_errors_total",
        "Failed delivery attempts of an output (each retry counts).",
        Kind::Counter,
        &["output", "type"],
        each(|o| o.errors.load(Ordering::Relaxed)),
    );
    registry.family(
        "shrike_output_queue_events",
        "Events waiting for an output (its queue and the batch in flight).",
        Kind::Gauge,
        &["output", "type"],
        each(|o| o.queued.load(Ordering::Relaxed)),
    );
    let all = outputs.clone();
    registry.family(
        "shrike_output_dropped_total",
        "Events an output dropped: its queue was full, or its destination refused them (or still held them at exit).",
        Kind::Counter,
        &["output", "type", "reason"],
        move |out| {
            for o in all.iter() {
                let full = o.dropped_queue_full.load(Ordering::Relaxed);
                let refused = o.dropped_rejected.load(Ordering::Relaxed);
                out.add(&[&o.name, o.kind, "queue_full"], full as f64);
                out.add(&[&o.name, o.kind, "rejected"], refused as f64);
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each output's counters appear under its name and type, drops by reason.
    #[test]
    fn output_counters_are_rendered_per_output() {
        let registry = Registry::default();
        let siem = Arc::new(OutputStats::new("siem", "syslog"));
        siem.sent.store(7, Ordering::Relaxed);
        siem.dropped_queue_full.store(3, Ordering::Relaxed);
        siem.queued.store(2, Ordering::Relaxed);
        register(&registry, vec![siem]);
        let text = registry.render();
        for line in [
            "shrike_output_sent_total{output=\"siem\",type=\"syslog\"} 7\n",
            "shrike_output_dropped_total{output=\"siem\",type=\"syslog\",reason=\"queue_full\"} 3\n",
            "shrike_output_dropped_total{output=\"siem\",type=\"syslog\",reason=\"rejected\"} 0\n",
            "shrike_output_queue_events{output=\"siem\",type=\"syslog\"} 2\n",
            "shrike_output_errors_total{output=\"siem\",type=\"syslog\"} 0\n",
        ] {
            assert!(text.contains(line), "{line}missing from:\n{text}");
        }
    }
}
