//! Where every written event is counted for the metrics and handed to the local API, and
//! where both are started: the agent's one hook into them (`agent::run` calls
//! [`Observer::event`] for each event it writes and [`Observer::end_batch`] after each batch).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use shrike_bpf::capability::Status;
use shrike_bpf::{ReaderStats, Sensors};
use shrike_event::Event;
use tracing::{error, info, warn};

use crate::api::{query::View, Api, ApiConfig};
use crate::metrics::agent::{self, AgentStats, Sources};
use crate::metrics::http::MetricsServer;
use crate::metrics::Registry;
use crate::pipeline::Pipeline;
use shrike_bpf::ringbuf::RingFill;

/// The metrics endpoint and the API, as the agent runs them.
pub struct Observer {
    pub stats: Arc<AgentStats>,
    pub registry: Registry,
    api: Option<Api>,
    metrics: Option<MetricsServer>,
    pending: Vec<Event>,
}

impl Observer {
    /// Registers the metrics, starts the endpoint (`--metrics`) and the API (`--api-socket`).
    pub fn start(
        metrics: Option<SocketAddr>,
        api: &ApiConfig,
        sensors: &Sensors,
        reader: Arc<ReaderStats>,
        capabilities: &[Status],
    ) -> Result<Observer> {
        let stats = Arc::new(AgentStats::default());
        stats.set_capabilities(capabilities);
        let registry = Registry::default();
        let ring = match sensors.events_handle().map(|h| RingFill::new(&h)) {
            Ok(Ok(ring)) => Some(ring),
            Ok(Err(err)) => {
                warn!(%err, "cannot map the ring buffer's positions: no ring-buffer fill metric");
                None
            }
            Err(err) => {
                warn!(%err, "no ring buffer handle: no ring-buffer fill metric");
                None
            }
        };
        agent::register(
            &registry,
            &stats,
            Sources {
                counters: sensors.counters_handle().ok(),
                ring,
                reader: Some(reader),
            },
        );
        let metrics = match metrics {
            Some(addr) => {
                let server = MetricsServer::start(addr, registry.clone())
                    .with_context(|| format!("--metrics {addr}: cannot listen"))?;
                info!(addr = %server.addr(), "metrics at http://{}/metrics", server.addr());
                Some(server)
            }
            None => None,
        };
        let config = api;
        // The API is on by default and secondary to detection: an agent whose socket is taken
        // (another agent serves it) or cannot be made runs on without it, and says so.
        let api = Api::start(config, &stats).unwrap_or_else(|err| {
            error!("the local API is off: {err:#}");
            None
        });
        if let (Some(_), Some(path)) = (&api, &config.socket) {
            info!(socket = %path.display(), "local API listening");
        }
        Ok(Observer {
            stats,
            registry,
            api,
            metrics,
            pending: Vec::new(),
        })
    }

    /// Counts one event as written and queues it for the API.
    pub fn event(&mut self, event: Event) {
        self.stats.observe(&event);
        if self.api.is_some() {
            self.pending.push(event);
        }
    }

    /// After a batch: hands its events to the API, updates the pipeline's gauges.
    pub fn end_batch(&mut self, pipeline: &Pipeline) {
        self.stats.after_batch(pipeline);
        self.flush();
    }

    /// Hands the events counted since the last batch to the API.
    pub fn flush(&mut self) {
        if let Some(api) = &self.api {
            api.publish(std::mem::take(&mut self.pending));
        }
    }

    /// Answers the API requests that need the pipeline thread.
    pub fn answer(&self, view: &View<'_>) {
        if let Some(api) = &self.api {
            api.answer(view);
        }
    }

    /// The metrics endpoint's address, when on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr())
    }
}
