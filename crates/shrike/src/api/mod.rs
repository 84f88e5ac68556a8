//! The local API: a unix socket (root only, `/run/shrike/api.sock` by default) on which
//! `shrike events`, `shrike ps` and `shrike status` — or any program that writes a line of
//! JSON — ask a running agent what it sees. The protocol is in docs/API.md
//! ([`protocol`]); filters in [`filter`]; the fan-out that keeps slow clients from slowing
//! the agent in [`hub`]; the socket and connections in [`server`]; answers that need the
//! process tree or the policy, computed on the pipeline thread, in [`query`]; the command
//! line's side in [`client`].

pub mod client;
pub mod filter;
pub mod hub;
pub mod protocol;
pub mod query;
pub mod server;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use anyhow::Result;
use shrike_event::Event;

use crate::metrics::agent::AgentStats;
use protocol::{Reply, Request};

/// `shrike run`'s API options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Where to listen; `None` turns the API off (`--no-api`).
    pub socket: Option<PathBuf>,
    /// Events queued for one streaming client before it is cut off.
    pub client_queue: usize,
    /// Recent events kept for `shrike events` without `--follow`.
    pub recent: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            socket: Some(PathBuf::from(protocol::DEFAULT_SOCKET)),
            client_queue: 4096,
            recent: 1000,
        }
    }
}

/// A request waiting for the pipeline thread, and where its reply goes.
pub struct QueryMsg {
    pub request: Request,
    pub reply: SyncSender<Reply>,
}

/// The running API: the socket, the fan-out, and the queue of requests for the pipeline.
pub struct Api {
    // Field order is drop order: stop accepting first, then end the streams.
    _server: server::Server,
    hub: hub::Hub,
    queries: Receiver<QueryMsg>,
}

impl Api {
    /// Binds the socket and starts the API's threads; `None` when the API is off.
    pub fn start(config: &ApiConfig, stats: &Arc<AgentStats>) -> Result<Option<Api>> {
        let Some(path) = &config.socket else {
            return Ok(None);
        };
        let hub = hub::Hub::start(stats.clone(), config.recent.max(1))?;
        let (tx, queries) = std::sync::mpsc::sync_channel(64);
        let server = server::Server::start(
            path,
            hub.shared.clone(),
            tx,
            stats.clone(),
            config.client_queue,
        )?;
        Ok(Some(Api {
            _server: server,
            hub,
            queries,
        }))
    }

    /// Hands a batch of written events to the API (never blocks).
    pub fn publish(&self, events: Vec<Event>) {
        self.hub.publish(events);
    }

    /// Answers the requests waiting for the pipeline thread.
    pub fn answer(&self, view: &query::View<'_>) {
        while let Ok(msg) = self.queries.try_recv() {
            let _ = msg.reply.try_send(query::answer(&msg.request, view));
        }
    }
}
