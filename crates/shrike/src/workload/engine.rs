//! Container identity from the Docker Engine API, which Podman's service also speaks.
//!
//! `GET /containers/<id>/json` answers name, image, labels and the host configuration
//! (privileged, pid and network mode, bind mounts). A container kubelet started through
//! cri-dockerd carries its pod in `io.kubernetes.*` labels, read here too.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use shrike_event::workload::is_runtime_socket_mount;
use shrike_event::{ContainerIdentity, PodIdentity};

use super::{http, Identity, RuntimeError};

/// Asks the engine at `socket` about container `id`; `None` when it does not know it.
pub fn inspect(
    socket: &Path,
    runtime: &str,
    id: &str,
    timeout: Duration,
) -> Result<Option<Identity>, RuntimeError> {
    let (status, body) = http::get(socket, &format!("/containers/{id}/json"), timeout)?;
    match status {
        200 => {}
        404 => return Ok(None),
        other => {
            return Err(RuntimeError::Protocol(
                socket.display().to_string(),
                format!("inspect answered HTTP {other}"),
            ))
        }
    }
    let json: Value = serde_json::from_slice(&body).map_err(|e| {
        RuntimeError::Protocol(socket.display().to_string(), format!("inspect JSON: {e}"))
    })?;
    Ok(Some(from_inspect(&json, runtime, id)))
}

/// The identity an inspect answer describes.
pub fn from_inspect(json: &Value, runtime: &str, id: &str) -> Identity {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let labels: BTreeMap<String, String> = json["Config"]["Labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default();
    let host = &json["HostConfig"];
    let host_mounts: Vec<String> = json["Mounts"]
        .as_array()
        .map(|mounts| {
            mounts
                .iter()
                .filter(|m| m["Type"] == "bind")
                .map(|m| text(&m["Source"]))
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let runtime_socket_mounted = Some(host_mounts.iter().any(|m| is_runtime_socket_mount(m)));
    let k8s = pod_from_labels(&labels);
    let container = ContainerIdentity {
        id: id.to_string(),
        name: text(&json["Name"]).trim_start_matches('/').to_string(),
        image: text(&json["Config"]["Image"]),
        image_id: text(&json["Image"]),
        runtime: runtime.to_string(),
        labels,
        resolved: true,
        privileged: host["Privileged"].as_bool(),
        host_pid: host["PidMode"].as_str().map(|m| m == "host"),
        host_network: host["NetworkMode"].as_str().map(|m| m == "host"),
        host_mounts,
        runtime_socket_mounted,
    };
    Identity { container, k8s }
}

/// The pod kubelet recorded in a container's labels (what it writes through every runtime).
pub fn pod_from_labels(labels: &BTreeMap<String, String>) -> Option<PodIdentity> {
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let pod = get("io.kubernetes.pod.name");
    if pod.is_empty() {
        return None;
    }
    Some(PodIdentity {
        namespace: get("io.kubernetes.pod.namespace"),
        pod,
        uid: get("io.kubernetes.pod.uid"),
        container: get("io.kubernetes.container.name"),
        labels: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trimmed Podman inspect answer: every field the event carries comes from it.
    #[test]
    fn inspect_answers_become_identities() {
        let json = serde_json::json!({
            "Name": "/web",
            "Image": "sha256:e3ea",
            "Config": {"Image": "localhost/app:1", "Labels": {"tier": "front"}},
            "HostConfig": {"Privileged": true, "PidMode": "host", "NetworkMode": "bridge"},
            "Mounts": [
                {"Type": "bind", "Source": "/var/run/docker.sock"},
                {"Type": "volume", "Source": "/var/lib/containers/v"}
            ]
        });
        let got = from_inspect(&json, "podman", "ab");
        let c = got.container;
        assert_eq!(
            (c.name.as_str(), c.image.as_str()),
            ("web", "localhost/app:1")
        );
        assert_eq!(c.image_id, "sha256:e3ea");
        assert_eq!(c.labels.get("tier").map(String::as_str), Some("front"));
        assert_eq!(
            (c.privileged, c.host_pid, c.host_network),
            (Some(true), Some(true), Some(false))
        );
        assert_eq!(c.host_mounts, vec!["/var/run/docker.sock".to_string()]);
        assert_eq!(c.runtime_socket_mounted, Some(true));
        assert!(got.k8s.is_none());
    }
}
