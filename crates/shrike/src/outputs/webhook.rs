//! The HTTP webhook: each batch is POSTed as one JSON array — of event objects (format
//! `json`) or of strings (format `compact`) — with the configured headers, over TLS for
//! `https://` URLs. Retries and backoff are the framework's ([`super::worker`]); the status
//! decides between retry and drop ([`super::http::classify`]).

use anyhow::Result;

use super::config::{Format, OutputConfig};
use super::http::Endpoint;
use super::transport::{Record, Transport, TransportError};

pub struct WebhookTransport {
    endpoint: Endpoint,
    format: Format,
    body: Vec<u8>,
}

impl WebhookTransport {
    pub fn new(config: &OutputConfig) -> Result<Self> {
        Ok(WebhookTransport {
            endpoint: Endpoint::from_output(config, "webhook", "http://HOST:PORT/PATH", None)?,
            format: config.format,
            body: Vec::new(),
        })
    }
}

/// One JSON array of the batch: the lines themselves when they are JSON objects, else each
/// line as a JSON string.
pub fn json_array(batch: &[Record], format: Format, body: &mut Vec<u8>) {
    body.clear();
    body.push(b'[');
    for (i, record) in batch.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        match format {
            Format::Json => body.extend_from_slice(record.line.as_bytes()),
            Format::Compact => {
                // Writing a string into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *body, &*record.line);
            }
        }
    }
    body.push(b']');
}

impl Transport for WebhookTransport {
    fn deliver(&mut self, batch: &[Record]) -> Result<(), TransportError> {
        json_array(batch, self.format, &mut self.body);
        self.endpoint
            .post("application/json", &self.body)
            .map(|_| ())
    }
}
