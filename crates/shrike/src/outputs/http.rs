//! The HTTP client every HTTP-based output shares (the webhook, Loki, OTLP): POST a body with
//! headers under a timeout, optionally over TLS, and classify the outcome the way the output
//! framework needs it — [`TransportError::Retry`] when trying again may work, `Rejected` when
//! the server refused the payload itself. [`Endpoint`] is what each of those outputs reads
//! from its `outputs:` entry (URL, headers, timeout, TLS), checked the same way for all three.
//!
//! Built on `ureq` (blocking, rustls): a transport already runs on its output's own thread, so
//! a blocking client with a hard timeout is all it needs.

use std::time::Duration;

use anyhow::{bail, Context};

use super::config::OutputConfig;
use super::tls::{TlsConfig, TlsError};
use super::transport::TransportError;

/// What an HTTP-based output needs from its `outputs:` entry, checked once: the URL to POST
/// to, the configured headers, and a client with the entry's timeout and TLS settings.
#[derive(Debug)]
pub struct Endpoint {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub client: HttpClient,
}

impl Endpoint {
    /// Reads `url`, `headers`, `timeout_ms` and `tls` of a `type: <kind>` entry. `example` is
    /// the address shown when `url` is missing or malformed; `default_path`, when given, is
    /// appended to a URL that has no path (`http://host:3100` → `http://host:3100/loki/…`).
    pub fn from_output(
        config: &OutputConfig,
        kind: &str,
        example: &str,
        default_path: Option<&str>,
    ) -> anyhow::Result<Endpoint> {
        let Some(url) = config.url.as_deref() else {
            bail!("a {kind} output needs `url` ({example})");
        };
        let url = endpoint_url(kind, url, example, default_path)?;
        let client = HttpClient::new(config.timeout(), config.tls.as_ref())
            .with_context(|| format!("{kind} output: TLS settings"))?;
        Ok(Endpoint {
            url,
            headers: config.headers.clone().into_iter().collect(),
            client,
        })
    }

    /// POSTs `body` to the endpoint with its headers (see [`HttpClient::post`]).
    pub fn post(&self, content_type: &str, body: &[u8]) -> Result<HttpResponse, TransportError> {
        self.client
            .post(&self.url, content_type, &self.headers, body)
    }
}

/// Checks an output's URL (http or https, a host) and appends `default_path` when the URL has
/// no path of its own.
pub fn endpoint_url(
    kind: &str,
    url: &str,
    example: &str,
    default_path: Option<&str>,
) -> anyhow::Result<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("{kind} url {url:?}: give {example} or https://…");
    };
    if scheme != "http" && scheme != "https" {
        bail!("{kind} url {url:?}: the scheme must be http or https");
    }
    if rest.is_empty() || rest.starts_with('/') {
        bail!("{kind} url {url:?} names no host");
    }
    Ok(match (rest.split_once('/'), default_path) {
        (Some((_, path)), _) if !path.trim_matches('/').is_empty() => url.to_string(),
        (_, Some(default_path)) => format!("{}{default_path}", url.trim_end_matches('/')),
        (_, None) => url.to_string(),
    })
}

/// A connection pool to one or more HTTP(S) servers with one timeout.
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

/// What a successful POST returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// Longest response body kept (for error messages and the caller's checks).
const BODY_MAX: u64 = 64 * 1024;

impl HttpClient {
    /// A client whose every request (connect, send, receive) ends within `timeout`; `tls`
    /// sets the trust roots and client certificate for `https://` URLs (the Mozilla roots when
    /// `None`).
    pub fn new(timeout: Duration, tls: Option<&TlsConfig>) -> Result<Self, TlsError> {
        let tls = tls.cloned().unwrap_or_default().client_config()?;
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .tls_config(tls)
            .max_idle_connections_per_host(2)
            .build();
        Ok(HttpClient { agent })
    }

    /// POSTs `body` to `url` with `content_type` and `headers`. A 2xx is `Ok`; a connection
    /// error, timeout, 408, 429 or 5xx is [`TransportError::Retry`]; any other status is
    /// [`TransportError::Rejected`]. Error messages carry the URL, the status and the start of
    /// the server's answer.
    pub fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<HttpResponse, TransportError> {
        let mut request = self.agent.post(url).set("Content-Type", content_type);
        for (name, value) in headers {
            request = request.set(name, value);
        }
        match request.send_bytes(body) {
            Ok(response) => Ok(HttpResponse {
                status: response.status(),
                body: read_body(response),
            }),
            Err(ureq::Error::Status(status, response)) => {
                Err(classify(url, status, &read_body(response)))
            }
            Err(ureq::Error::Transport(err)) => {
                Err(TransportError::Retry(format!("POST {url}: {err}")))
            }
        }
    }
}

/// The framework's reading of a non-2xx HTTP status: 408, 429 and 5xx may pass later (retry,
/// keeping the batch); every other 4xx says the payload itself is refused (dropped, counted).
pub fn classify(url: &str, status: u16, body: &str) -> TransportError {
    let body: String = body.chars().take(300).collect();
    let message = format!("POST {url}: HTTP {status}: {}", body.trim());
    if status == 408 || status == 429 || status >= 500 {
        TransportError::Retry(message)
    } else {
        TransportError::Rejected(message)
    }
}

fn read_body(response: ureq::Response) -> String {
    use std::io::Read;
    let mut body = String::new();
    let _ = response
        .into_reader()
        .take(BODY_MAX)
        .read_to_string(&mut body);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's status decides what the framework does with the batch: overload and server
    /// errors are retried, a refusal of the payload is not.
    #[test]
    fn statuses_are_classified_retry_or_rejected() {
        for status in [408, 429, 500, 502, 503] {
            assert!(matches!(
                classify("http://x", status, ""),
                TransportError::Retry(_)
            ));
        }
        for status in [400, 401, 403, 404, 413, 422] {
            assert!(matches!(
                classify("http://x", status, "bad"),
                TransportError::Rejected(_)
            ));
        }
    }

    /// Nothing listening: a retry, not a rejection, and the message names the URL.
    #[test]
    fn a_refused_connection_is_a_retry() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = HttpClient::new(Duration::from_secs(2), None).unwrap();
        let url = format!("http://127.0.0.1:{port}/x");
        match client.post(&url, "application/json", &[], b"[]") {
            Err(TransportError::Retry(msg)) => assert!(msg.contains(&url), "{msg}"),
            other => panic!("expected a retry, got {other:?}"),
        }
    }
}
