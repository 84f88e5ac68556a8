//! The JSON form of an [`Event`]: the contract's field order, the process with the event's
//! thread id, `parent` and `ancestors` as slim views, context parts that outputs serialize once
//! and reuse, and reading events back.

use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{
    Alert, BpfLoad, CredChange, Dns, Event, EventKind, ExecId, Exit, FileInfo, Health, Lost, Memfd,
    Module, Mount, NamespaceChange, Network, Payload, PolicyChange, Process, Ptrace, Signal,
    Socket,
};
use crate::incident::{Incident, Suppressed};
use crate::time::Timestamp;
use crate::workload::{ContainerIdentity, PodIdentity};

/// `process` with the event's thread id.
struct ProcessView<'a> {
    process: &'a Process,
    tid: u32,
}

impl Serialize for ProcessView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.tid == self.process.tid {
            return self.process.serialize(serializer);
        }
        let mut copy = self.process.clone();
        copy.tid = self.tid;
        copy.serialize(serializer)
    }
}

/// The contract's `parent` object: `{ pid, exec_id, binary, args }`.
#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct ParentView {
    pid: u32,
    exec_id: ExecId,
    binary: Arc<str>,
    args: Arc<[String]>,
}

/// The contract's `ancestors[]` entry: `{ pid, exec_id, binary }`.
#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct AncestorView {
    pid: u32,
    exec_id: ExecId,
    binary: Arc<str>,
}

/// A part of the process context, either serialized now or taken as JSON text written before
/// (`crate::json::ContextCache`).
#[derive(Serialize)]
#[serde(untagged)]
enum Part<'a, T: Serialize> {
    Live(T),
    Raw(&'a RawValue),
}

/// An event's `process`, `parent` and `ancestors` as JSON text already written.
pub(crate) struct RawContext<'a> {
    pub process: &'a RawValue,
    pub parent: &'a RawValue,
    pub ancestors: &'a RawValue,
}

impl Event {
    /// The JSON of `process` (with the process's own tid), `parent` and `ancestors`, as
    /// [`Event`]'s serialization writes them to a terminal-safe writer
    /// ([`crate::text::TerminalSafe`]: DEL, C1 and bidi controls as `\uXXXX`), for
    /// `ContextCache` to keep: the text it reuses is already what the output must carry.
    pub(crate) fn context_json(&self) -> serde_json::Result<[Box<RawValue>; 3]> {
        use crate::text::to_string_terminal_safe as json;
        let raw = |text: String| RawValue::from_string(text);
        Ok([
            raw(json(&ProcessView {
                process: &self.process,
                tid: self.process.tid,
            })?)?,
            raw(json(&self.parent_view())?)?,
            raw(json(&self.ancestor_views())?)?,
        ])
    }

    fn parent_view(&self) -> Option<ParentView> {
        self.parent.as_deref().map(|p| ParentView {
            pid: p.pid,
            exec_id: p.exec_id,
            binary: p.binary.clone(),
            args: p.args.clone(),
        })
    }

    fn ancestor_views(&self) -> Vec<AncestorView> {
        self.ancestors
            .iter()
            .map(|a| AncestorView {
                pid: a.pid,
                exec_id: a.exec_id,
                binary: a.binary.clone(),
            })
            .collect()
    }

    /// Serializes the event with its context taken from `ctx` (which must be this event's).
    pub(crate) fn serialize_with<S: Serializer>(
        &self,
        ctx: &RawContext<'_>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        self.wire(Some(ctx)).serialize(serializer)
    }

    fn wire<'a>(&'a self, ctx: Option<&RawContext<'a>>) -> WireOut<'a> {
        let (process, parent, ancestors) = match ctx {
            Some(c) => (
                Part::Raw(c.process),
                Part::Raw(c.parent),
                Part::Raw(c.ancestors),
            ),
            None => (
                Part::Live(ProcessView {
                    process: &self.process,
                    tid: self.tid,
                }),
                Part::Live(self.parent_view()),
                Part::Live(self.ancestor_views()),
            ),
        };
        WireOut {
            time: self.time,
            kind: self.kind,
            node: &self.node,
            process,
            parent,
            ancestors,
            container: self.container.as_deref(),
            k8s: self.k8s.as_deref(),
            exit: self.exit(),
            file: self.file(),
            network: self.network(),
            dns: self.dns(),
            module: self.module(),
            bpf: self.bpf(),
            ptrace: self.ptrace(),
            cred: self.cred(),
            mount: self.mount(),
            namespace: self.namespace(),
            memfd: self.memfd(),
            socket: self.socket(),
            signal: self.signal(),
            lost: self.lost(),
            health: self.health(),
            incident: self.incident(),
            suppressed: self.suppressed(),
            policy: self.policy(),
            result: self.result,
            alerts: &self.alerts,
        }
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    time: Timestamp,
    kind: EventKind,
    node: &'a str,
    process: Part<'a, ProcessView<'a>>,
    parent: Part<'a, Option<ParentView>>,
    ancestors: Part<'a, Vec<AncestorView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a ContainerIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k8s: Option<&'a PodIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<&'a Exit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a FileInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<&'a Network>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<&'a Dns>,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<&'a Module>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bpf: Option<&'a BpfLoad>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ptrace: Option<&'a Ptrace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cred: Option<&'a CredChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount: Option<&'a Mount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a NamespaceChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memfd: Option<&'a Memfd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    socket: Option<&'a Socket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<&'a Signal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lost: Option<&'a Lost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<&'a Health>,
    incident: Option<&'a Incident>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressed: Option<&'a Suppressed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a PolicyChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<i64>,
    #[serde(skip_serializing_if = "<[Alert]>::is_empty")]
    alerts: &'a [Alert],
}

#[derive(Deserialize)]
struct WireIn {
    time: Timestamp,
    kind: EventKind,
    #[serde(default)]
    node: String,
    process: Process,
    #[serde(default)]
    parent: Option<ParentView>,
    #[serde(default)]
    ancestors: Vec<AncestorView>,
    #[serde(default)]
    container: Option<ContainerIdentity>,
    #[serde(default)]
    k8s: Option<PodIdentity>,
    #[serde(default)]
    exit: Option<Exit>,
    #[serde(default)]
    file: Option<FileInfo>,
    #[serde(default)]
    network: Option<Network>,
    #[serde(default)]
    dns: Option<Dns>,
    #[serde(default)]
    module: Option<Module>,
    #[serde(default)]
    bpf: Option<BpfLoad>,
    #[serde(default)]
    ptrace: Option<Ptrace>,
    #[serde(default)]
    cred: Option<CredChange>,
    #[serde(default)]
    mount: Option<Mount>,
    #[serde(default)]
    namespace: Option<NamespaceChange>,
    #[serde(default)]
    memfd: Option<Memfd>,
    #[serde(default)]
    socket: Option<Socket>,
    #[serde(default)]
    signal: Option<Signal>,
    #[serde(default)]
    lost: Option<Lost>,
    #[serde(default)]
    health: Option<Health>,
    incident: Option<Box<Incident>>,
    #[serde(default)]
    suppressed: Option<Box<Suppressed>>,
    #[serde(default)]
    policy: Option<PolicyChange>,
    #[serde(default)]
    result: Option<i64>,
    #[serde(default)]
    alerts: Vec<Alert>,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.wire(None).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    /// Reads an event back (for `policy test` and tools): `parent` and `ancestors` become
    /// processes with only the fields the contract writes for them.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireIn::deserialize(deserializer)?;
        let tid = wire.process.tid;
        let others = [
            wire.exit.map(Payload::Exit),
            wire.file.map(Payload::File),
            wire.module.map(Payload::Module),
            wire.bpf.map(Payload::Bpf),
            wire.ptrace.map(Payload::Ptrace),
            wire.cred.map(Payload::Cred),
            wire.mount.map(Payload::Mount),
            wire.namespace.map(Payload::Namespace),
            wire.memfd.map(Payload::Memfd),
            wire.socket.map(Payload::Socket),
            wire.signal.map(Payload::Signal),
            wire.lost.map(Payload::Lost),
            wire.health.map(Payload::Health),
            wire.incident.map(Payload::Incident),
            wire.suppressed.map(Payload::Suppressed),
            wire.policy.map(Payload::Policy),
        ];
        let payload = Payload::from_objects(wire.kind, wire.network, wire.dns, others)
            .map_err(serde::de::Error::custom)?;
        Ok(Event {
            time: wire.time,
            kind: wire.kind,
            node: Arc::from(wire.node),
            process: Arc::new(wire.process),
            tid,
            parent: wire.parent.map(|p| {
                Arc::new(Process {
                    pid: p.pid,
                    exec_id: p.exec_id,
                    binary: p.binary,
                    args: p.args,
                    ..Process::default()
                })
            }),
            ancestors: wire
                .ancestors
                .into_iter()
                .map(|a| {
                    Arc::new(Process {
                        pid: a.pid,
                        exec_id: a.exec_id,
                        binary: a.binary,
                        ..Process::default()
                    })
                })
                .collect(),
            payload,
            result: wire.result,
            alerts: wire.alerts,
            enforced: None,
            container: wire.container.map(Arc::new),
            k8s: wire.k8s.map(Arc::new),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let bash = Arc::new(Process {
            pid: 10,
            tid: 10,
            exec_id: ExecId(0xa),
            binary: "/usr/bin/bash".into(),
            args: vec!["bash".into(), "-c".into(), "x".into()].into(),
            ..Process::default()
        });
        let env = Arc::new(Process {
            pid: 11,
            tid: 11,
            ppid: 10,
            exec_id: ExecId(0xb),
            parent_exec_id: Some(ExecId(0xa)),
            binary: "/usr/bin/env".into(),
            args: vec!["/usr/bin/env".into(), "true".into()].into(),
            loginuid: crate::LoginUid::UNSET,
            ..Process::default()
        });
        let mut event = Event::new(Timestamp(5), EventKind::ProcessExec, "n1".into(), env);
        event.parent = Some(bash.clone());
        event.ancestors = vec![bash];
        event
    }

    #[test]
    fn serializes_contract_field_names_and_slim_parent_views() {
        let json: serde_json::Value = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["kind"], "process_exec");
        assert_eq!(json["time"], "1970-01-01T00:00:00.000000005Z");
        assert_eq!(json["process"]["exec_id"], "000000000000000b");
        assert_eq!(json["process"]["parent_exec_id"], "000000000000000a");
        assert_eq!(json["process"]["loginuid"], serde_json::Value::Null);
        assert_eq!(
            json["parent"],
            serde_json::json!({"pid": 10, "exec_id": "000000000000000a",
                "binary": "/usr/bin/bash", "args": ["bash", "-c", "x"]})
        );
        assert_eq!(
            json["ancestors"],
            serde_json::json!([{"pid": 10, "exec_id": "000000000000000a", "binary": "/usr/bin/bash"}])
        );
        assert!(
            json.get("alerts").is_none(),
            "alerts appear only when rules matched"
        );
        assert!(json.get("exit").is_none());
    }

    #[test]
    fn event_tid_is_written_into_process_tid() {
        let mut event = sample();
        event.tid = 99;
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["process"]["tid"], 99);
        assert_eq!(json["process"]["pid"], 11);
    }

    #[test]
    fn round_trips_through_json() {
        let event = sample();
        let text = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back.process, event.process);
        assert_eq!(&*back.parent.as_ref().unwrap().binary, "/usr/bin/bash");
        assert_eq!(back.ancestors[0].exec_id, ExecId(0xa));
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
}
