//! The local API's wire format (documented in docs/API.md): newline-delimited JSON over a
//! unix stream socket. A client writes one [`Request`] per line; the agent answers each with
//! one or more [`Reply`] lines. A stream of events ends with an `end` line saying why.

use serde::{Deserialize, Serialize};

/// The default socket.
pub const DEFAULT_SOCKET: &str = "/run/shrike/api.sock";

/// Version of the protocol, in every `status` reply.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Events matching `filter`: the most recent ones the agent keeps (up to `limit`, oldest
    /// first), or with `follow` every new one as it happens, until the client leaves.
    Events {
        #[serde(default)]
        follow: bool,
        #[serde(default)]
        filter: FilterSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// The process tree's live processes, or with `pid` that process and its ancestry.
    Ps {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// Health: capabilities, rules not in force, counters.
    Status,
    /// The policy in force: generation, sources, rules.
    Policy,
}

/// A server-side event filter; every field given must match (empty: everything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterSpec {
    /// Event kinds (`process_exec`, `alert`-bearing events are any kind; see `severity`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// A glob on rule ids: the event must carry an alert (or be an incident) of such a rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Minimum severity (`info` … `critical`) of one of the event's alerts or its incident.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The process id the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// A glob on the process's binary (`/usr/bin/*`; `**` crosses `/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// A container id or its prefix (as `docker ps` shows it), or the container's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The Kubernetes namespace of the event's pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A glob on the name of the event's Kubernetes pod (`web-*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// One line the agent writes back, other than an event (see [`event_line`]).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// The answer to `ps`, `status` or `policy`.
    Result { result: serde_json::Value },
    /// The end of an `events` answer: `done` (all recent events sent), `slow_client` (the
    /// client did not keep up and was cut off), `shutdown` (the agent is stopping).
    End {
        reason: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        message: String,
    },
    /// The request could not be answered.
    Error { message: String },
}

/// Any line the agent writes, as a client reads it: `type` says which fields are set.
#[derive(Debug, Deserialize)]
pub struct ReplyLine {
    /// `event`, `result`, `end` or `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's JSON, unchanged (`event`).
    #[serde(default)]
    pub event: Option<Box<serde_json::value::RawValue>>,
    /// `result`.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    /// Why a stream ended (`end`).
    #[serde(default)]
    pub reason: Option<String>,
    /// `end` and `error`.
    #[serde(default)]
    pub message: Option<String>,
}

/// The line the agent writes for one event: `{"type":"event","event":<json>}` and a newline.
pub fn event_line(event_json: &str) -> String {
    let mut line = String::with_capacity(event_json.len() + 26);
    line.push_str("{\"type\":\"event\",\"event\":");
    line.push_str(event_json);
    line.push_str("}\n");
    line
}

/// A reply as one line, newline included.
pub fn line(reply: &Reply) -> String {
    let mut text = serde_json::to_string(reply).unwrap_or_else(|e| {
        format!("{{\"type\":\"error\",\"message\":\"reply not serializable: {e}\"}}")
    });
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests are read as the documentation writes them; unknown fields are refused.
    #[test]
    fn requests_parse_as_documented() {
        let r: Request = serde_json::from_str(
            r#"{"op":"events","follow":true,"filter":{"kinds":["process_exec"],"severity":"high","binary":"/usr/bin/*"}}"#,
        )
        .unwrap();
        let Request::Events { follow, filter, .. } = r else {
            panic!("{r:?}")
        };
        assert!(follow);
        assert_eq!(filter.kinds, vec!["process_exec"]);
        assert_eq!(filter.binary.as_deref(), Some("/usr/bin/*"));
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"ps","pid":1}"#).unwrap(),
            Request::Ps { pid: Some(1) }
        );
        assert!(
            serde_json::from_str::<Request>(r#"{"op":"events","filter":{"kind":[]}}"#).is_err()
        );
    }

    /// An event line wraps the event's JSON unchanged and reads back as a reply.
    #[test]
    fn event_lines_wrap_the_event_unchanged() {
        let line = event_line(r#"{"kind":"dns","x":[1,2]}"#);
        let reply: ReplyLine = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(reply.kind, "event");
        assert_eq!(reply.event.unwrap().get(), r#"{"kind":"dns","x":[1,2]}"#);
        let end = self::line(&Reply::End {
            reason: "slow_client".into(),
            message: "m".into(),
        });
        let reply: ReplyLine = serde_json::from_str(end.trim_end()).unwrap();
        assert_eq!(
            (reply.kind.as_str(), reply.reason.as_deref()),
            ("end", Some("slow_client"))
        );
    }
}
