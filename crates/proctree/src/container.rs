//! Containers from cgroup paths.
//!
//! Container runtimes put each container in a cgroup whose path carries the container id; the
//! naming differs by runtime and cgroup driver. This module recognises the common ones
//! (Docker, containerd/CRI, CRI-O, Podman, Kubernetes pods with either driver) and nothing else:
//! a path it does not recognise is "not a container", never a guess.

use shrike_event::Container;

/// The container a cgroup path belongs to, if any.
pub fn from_cgroup_path(path: &str) -> Option<Container> {
    // Innermost match wins: walk the components from the leaf up.
    // A bare id under kubepods is containerd's cgroupfs layout (Docker left Kubernetes with
    // dockershim in 1.24; CRI-O names its cgroups `crio-<id>` with either driver).
    let bare = if path.contains("/kubepods") {
        "containerd"
    } else {
        "docker"
    };
    for component in path.rsplit('/') {
        if let Some(c) = from_component(component, bare) {
            return Some(c);
        }
    }
    None
}

fn from_component(component: &str, bare: &str) -> Option<Container> {
    let scope = component.strip_suffix(".scope").unwrap_or(component);
    let prefixed = [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "crio"),
        ("libpod-", "podman"),
    ];
    for (prefix, runtime) in prefixed {
        if let Some(id) = scope.strip_prefix(prefix) {
            if is_container_id(id) {
                return Some(Container {
                    id: id.to_string(),
                    runtime: runtime.to_string(),
                });
            }
        }
    }
    // cgroupfs driver: /docker/<id>, /kubepods/burstable/pod<uid>/<id>, /system.slice/... .
    if is_container_id(component) {
        return Some(Container {
            id: component.to_string(),
            runtime: bare.to_string(),
        });
    }
    None
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn recognises_runtime_naming_schemes() {
        let cases = [
            (format!("/system.slice/docker-{ID}.scope"), "docker"),
            (format!("/docker/{ID}"), "docker"),
            (format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope"), "containerd"),
            (format!("/kubepods.slice/kubepods-pod2.slice/crio-{ID}.scope"), "crio"),
            (format!("/machine.slice/libpod-{ID}.scope/container"), "podman"),
            (format!("/libpod_parent/libpod-{ID}"), "podman"),
            (format!("/kubepods/besteffort/pod1/{ID}"), "containerd"),
        ];
        for (path, runtime) in cases {
            let c = from_cgroup_path(&path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!((c.id.as_str(), c.runtime.as_str()), (ID, runtime), "{path}");
        }
    }

    #[test]
    fn host_paths_are_not_containers() {
        for path in [
            "/",
            "/user.slice/user-0.slice/session-1.scope",
            "/system.slice/sshd.service",
            "/docker/notanid",
        ] {
            assert_eq!(from_cgroup_path(path), None, "{path}");
        }
    }
}
