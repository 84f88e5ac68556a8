//! Container and pod identity from the Kubernetes CRI (containerd, CRI-O), as kubelet sees it.
//!
//! Three calls of `runtime.v1.RuntimeService`: `ContainerStatus` (verbose: name, image,
//! labels, mounts, and containerd's config with `privileged`), `ListContainers` filtered by id
//! (the pod sandbox id), and `PodSandboxStatus` (pod name, namespace, uid, labels and the pod's
//! namespace modes). Field numbers are those of k8s.io/cri-api `api.proto`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value as Json;
use shrike_event::workload::is_runtime_socket_mount;
use shrike_event::{ContainerIdentity, PodIdentity};

use super::pb::{self, Value, Writer};
use super::{engine, grpc, Identity, RuntimeError};

const SERVICE: &str = "/runtime.v1.RuntimeService/";
/// `NamespaceMode.NODE`: the pod shares the host's namespace.
const NODE: u64 = 2;

/// Calls `method` of the runtime service with `request`.
pub fn call(
    socket: &Path,
    method: &str,
    request: &Writer,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, RuntimeError> {
    grpc::call(socket, &format!("{SERVICE}{method}"), &request.buf, timeout)
}

fn text(buf: &[u8], field: u32) -> String {
    pb::field(buf, field).map(Value::text).unwrap_or_default()
}

fn nested(buf: &[u8], field: u32) -> &[u8] {
    pb::field(buf, field).map(Value::bytes).unwrap_or_default()
}

/// Asks the CRI runtime at `socket` about container `id`; `None` when it does not know it.
pub fn inspect(
    socket: &Path,
    runtime: &str,
    id: &str,
    timeout: Duration,
) -> Result<Option<Identity>, RuntimeError> {
    // ContainerStatusRequest { container_id = 1, verbose = 2 }
    let mut req = Writer::new();
    req.string(1, id).uint(2, 1);
    let Some(answer) = call(socket, "ContainerStatus", &req, timeout)? else {
        return Ok(None);
    };
    // ContainerStatusResponse { status = 1, info = 2 }
    let status = nested(&answer, 1);
    if text(status, 1).is_empty() {
        return Ok(None);
    }
    let info: Json = pb::map(&answer, 2)
        .get("info")
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Json::Null);
    let mut identity = container_status(status, runtime, id, &info);

    // ListContainersRequest { filter = 1 { id = 1 } } → ListContainersResponse { containers = 1 }
    let mut filter = Writer::new();
    filter.string(1, id);
    let mut list = Writer::new();
    list.message(1, &filter);
    let sandbox = call(socket, "ListContainers", &list, timeout)?
        .map(|a| text(nested(&a, 1), 2))
        .unwrap_or_default();
    if !sandbox.is_empty() {
        // PodSandboxStatusRequest { pod_sandbox_id = 1 }
        let mut req = Writer::new();
        req.string(1, &sandbox);
        if let Some(answer) = call(socket, "PodSandboxStatus", &req, timeout)? {
            pod_status(nested(&answer, 1), &mut identity);
        }
    }
    Ok(Some(identity))
}

/// `ContainerStatus { id 1, metadata 2 { name 1 }, image 8 { image 1 }, image_ref 9,
/// labels 12, mounts 14 { container_path 1, host_path 2 } }`, with containerd's verbose info.
fn container_status(status: &[u8], runtime: &str, id: &str, info: &Json) -> Identity {
    let labels = pb::map(status, 12);
    let host_mounts: Vec<String> = pb::fields(status)
        .into_iter()
        .filter(|(n, _)| *n == 14)
        .map(|(_, m)| text(m.bytes(), 2))
        .filter(|p| !p.is_empty())
        .collect();
    let security = &info["config"]["linux"]["security_context"];
    let container = ContainerIdentity {
        id: id.to_string(),
        name: text(nested(status, 2), 1),
        image: text(nested(status, 8), 1),
        image_id: text(status, 9),
        runtime: runtime.to_string(),
        runtime_socket_mounted: Some(host_mounts.iter().any(|m| is_runtime_socket_mount(m))),
        host_mounts,
        resolved: true,
        // containerd's verbose info holds the CRI config as JSON, where false is omitted;
        // without it (CRI-O) a top-level `privileged` if there is one, else unknown.
        privileged: if info["config"].is_object() {
            Some(security["privileged"].as_bool().unwrap_or(false))
        } else {
            info["privileged"].as_bool()
        },
        labels,
        ..ContainerIdentity::default()
    };
    let k8s = engine::pod_from_labels(&container.labels);
    Identity { container, k8s }
}

/// `PodSandboxStatus { metadata 2 { name 1, uid 2, namespace 3 }, linux 6 { namespaces 1 {
/// options 2 { network 1, pid 2 } } }, labels 7 }`.
fn pod_status(status: &[u8], identity: &mut Identity) {
    let meta = nested(status, 2);
    let options = nested(nested(nested(status, 6), 1), 2);
    let mode = |f| pb::field(options, f).map(Value::uint).unwrap_or(0);
    identity.container.host_network = Some(mode(1) == NODE);
    identity.container.host_pid = Some(mode(2) == NODE);
    let from_labels = identity.k8s.take().unwrap_or_default();
    identity.k8s = Some(PodIdentity {
        namespace: text(meta, 3),
        pod: text(meta, 1),
        uid: text(meta, 2),
        container: if from_labels.container.is_empty() {
            identity.container.name.clone()
        } else {
            from_labels.container
        },
        labels: pb::map(status, 7),
    });
}
