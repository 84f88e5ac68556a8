//! Who a containerised process is, as its container runtime says: the container (`container`
//! on an event) and, for a container in a Kubernetes pod, the pod (`k8s`).
//!
//! The agent learns the container id from the process's cgroup at once and the rest from the
//! runtime's API a moment later (off the event path), so an event may carry a container with
//! only `id` and `runtime` set; every later event of that container carries all of it. Fields
//! a runtime does not report stay empty (strings) or absent (`Option`s) — never guessed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The container a process runs in (`container` on an event).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerIdentity {
    /// The runtime's container id (64 lower-case hex digits for every runtime shrike knows).
    pub id: String,
    /// The container's name as its runtime knows it (without Docker's leading `/`); for a
    /// container of a pod, the runtime's name (the name in the pod is `k8s.container`).
    pub name: String,
    /// The image as the container was created from it, e.g. `localhost/app:1`.
    pub image: String,
    /// The image's id or digest as the runtime reports it, e.g. `sha256:…`.
    pub image_id: String,
    /// The runtime that answered: `podman`, `docker`, `containerd` or `crio`; before an answer,
    /// the runtime the cgroup path names.
    pub runtime: String,
    pub labels: BTreeMap<String, String>,
    /// True once the runtime answered; false while only the cgroup path is known (or when no
    /// runtime knew the container).
    pub resolved: bool,
    /// The container runs privileged (all capabilities, all devices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// The container shares the host's pid namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<bool>,
    /// The container shares the host's network namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// Host paths bind-mounted into the container (sources, as the runtime reports them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_mounts: Vec<String>,
    /// A container runtime's API socket (docker, podman, containerd, CRI-O) is mounted in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_socket_mounted: Option<bool>,
}

/// The Kubernetes pod a container belongs to (`k8s` on an event), from the runtime's CRI
/// view, which is what the kubelet wrote: no API server is asked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PodIdentity {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// The container's name in the pod spec.
    pub container: String,
    /// The pod's labels.
    pub labels: BTreeMap<String, String>,
}

/// Host paths whose mount into a container hands it a container runtime's API.
pub const RUNTIME_SOCKETS: [&str; 8] = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
    "/var/run/podman/podman.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
];

/// True when `source`, a host path mounted into a container, is or contains a runtime socket.
pub fn is_runtime_socket_mount(source: &str) -> bool {
    let source = source.trim_end_matches('/');
    RUNTIME_SOCKETS.iter().any(|s| {
        *s == source
            || s.strip_prefix(source)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mounting the socket itself or a directory holding it both hand over the runtime.
    #[test]
    fn runtime_socket_mounts_are_the_socket_or_its_directory() {
        assert!(is_runtime_socket_mount("/var/run/docker.sock"));
        assert!(is_runtime_socket_mount("/run/containerd"));
        assert!(is_runtime_socket_mount("/var/run/"));
        assert!(!is_runtime_socket_mount("/var/lib/data"));
        assert!(!is_runtime_socket_mount("/run/container"));
    }
}
