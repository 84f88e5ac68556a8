#!/usr/bin/env python3
"""Checks deploy/k8s/*.yaml against each other and against the repository (run by test.sh).

The schema validator sees one object at a time; this sees the whole: every object in the one
namespace, the service account and ConfigMaps the DaemonSet names exist, every mount has its
volume, each --policy argument is a key of a mounted ConfigMap (and every key of the default
pack is loaded), the capabilities are exactly the hardened unit's (packaging/shrike.service),
the image is the one `./dev package image` builds, Bidirectional propagation only where the API
server allows it (privileged containers), and the ConfigMaps fit in kubectl's last-applied
annotation. With --extract DIR it then writes the ConfigMaps' files under DIR as the pod sees
them (DIR/etc/shrike/...) and prints the agent's arguments with paths under DIR, one a line,
for test.sh to compile with the real binary. Needs PyYAML (the test's venv has it).
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
# kubectl apply (client-side) copies each object into an annotation; annotations of one object
# may total 256 KiB.
ANNOTATION_LIMIT = 256 * 1024

errors = []


def fail(msg):
    errors.append(msg)


def load():
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                objects.append((path.name, doc))
    return objects


def unit_capabilities():
    text = (ROOT / "packaging" / "shrike.service").read_text()
    m = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M)
    if not m:
        sys.exit("check.py: no CapabilityBoundingSet= in packaging/shrike.service")
    return sorted(c.removeprefix("CAP_") for c in m.group(1).split())


def packaged_image():
    text = (ROOT / "packaging" / "package.sh").read_text()
    m = re.search(r'^IMAGE="([^":]+):\$VERSION"', text, re.M)
    if not m:
        sys.exit('check.py: no IMAGE="NAME:$VERSION" in packaging/package.sh')
    return m.group(1)


def main():
    extract = None
    if sys.argv[1:2] == ["--extract"] and len(sys.argv) == 3:
        extract = pathlib.Path(sys.argv[2])
    elif sys.argv[1:]:
        sys.exit("usage: check.py [--extract DIR]")

    objects = load()
    by_kind = {}
    for fname, o in objects:
        by_kind.setdefault(o.get("kind"), []).append((fname, o))

    namespaces = [o["metadata"]["name"] for _, o in by_kind.get("Namespace", [])]
    if len(namespaces) != 1:
        sys.exit(f"check.py: expected one Namespace, found {namespaces}")
    ns = namespaces[0]
    for fname, o in objects:
        if o["kind"] != "Namespace" and o["metadata"].get("namespace") != ns:
            fail(f"{fname}: {o['kind']}/{o['metadata']['name']} is not in namespace {ns}")
    if by_kind.get("Role") or by_kind.get("ClusterRole") or by_kind.get("RoleBinding") or by_kind.get("ClusterRoleBinding"):
        fail("RBAC objects found: the agent does not call the API server (pod identity is from the CRI socket)")

    configmaps = {o["metadata"]["name"]: o for _, o in by_kind.get("ConfigMap", [])}
    for name, cm in configmaps.items():
        size = len(yaml.safe_dump(cm).encode())
        if size >= ANNOTATION_LIMIT:
            fail(f"ConfigMap {name} is {size} bytes: over kubectl apply's 256 KiB annotation limit")
    accounts = {o["metadata"]["name"] for _, o in by_kind.get("ServiceAccount", [])}

    daemonsets = by_kind.get("DaemonSet", [])
    if len(daemonsets) != 1:
        sys.exit(f"check.py: expected one DaemonSet, found {len(daemonsets)}")
    fname, ds = daemonsets[0]
    pod = ds["spec"]["template"]["spec"]
    if pod.get("serviceAccountName") not in accounts:
        fail(f"{fname}: serviceAccountName {pod.get('serviceAccountName')!r} is not among {sorted(accounts)}")
    if not pod.get("hostPID"):
        fail(f"{fname}: hostPID must be true (the agent reads /proc/<pid> of every process)")
    selector = ds["spec"]["selector"]["matchLabels"]
    labels = ds["spec"]["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in selector.items()):
        fail(f"{fname}: the selector {selector} does not match the pod labels {labels}")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    containers = pod["containers"]
    if len(containers) != 1:
        fail(f"{fname}: expected one container")
    c = containers[0]
    sc = c.get("securityContext", {})

    image = c["image"]
    want = packaged_image()
    if image.rsplit(":", 1)[0] != want:
        fail(f"{fname}: image {image} is not the image packaging/package.sh builds ({want}:VERSION)")

    caps = sc.get("capabilities", {})
    if caps.get("drop") != ["ALL"]:
        fail(f"{fname}: capabilities.drop must be [ALL], is {caps.get('drop')}")
    added = sorted(caps.get("add", []))
    unit = unit_capabilities()
    if added != unit:
        fail(f"{fname}: capabilities.add {added} differ from packaging/shrike.service's bounding set {unit}")
    privileged = bool(sc.get("privileged"))
    if privileged:
        fail(f"{fname}: privileged: true (the capabilities above are what the agent needs)")
    if not sc.get("readOnlyRootFilesystem"):
        fail(f"{fname}: readOnlyRootFilesystem must be true")

    mounts = {}
    for m in c.get("volumeMounts", []):
        if m["name"] not in volumes:
            fail(f"{fname}: volumeMount {m['name']} has no volume")
            continue
        mounts[m["mountPath"]] = volumes[m["name"]]
        if m.get("mountPropagation") == "Bidirectional" and not privileged:
            fail(f"{fname}: {m['name']}: Bidirectional propagation is refused by the API server for unprivileged containers")
        host = volumes[m["name"]].get("hostPath")
        if host and not m.get("readOnly") and host["path"] != "/sys/fs/bpf":
            fail(f"{fname}: host path {host['path']} is mounted writable: only the bpffs (pins) needs writing")
    for name, v in volumes.items():
        cm = v.get("configMap")
        if cm and cm["name"] not in configmaps:
            fail(f"{fname}: volume {name} names ConfigMap {cm['name']}, which is not in deploy/k8s")

    # --policy arguments: each a key of a mounted ConfigMap, and all of the default pack.
    args = c.get("args", [])
    if "--no-default-policy" not in args:
        fail(f"{fname}: --no-default-policy is missing: the pack would be loaded twice")
    policies = [a.split("=", 1)[1] for a in args if a.startswith("--policy=")]
    if any(a == "--policy" for a in args):
        fail(f"{fname}: write --policy=FILE (one list item) so the arguments can be checked")
    used = set()
    files = []
    for p in policies:
        d, _, key = p.rpartition("/")
        vol = mounts.get(d)
        cm = configmaps.get(vol["configMap"]["name"]) if vol and "configMap" in vol else None
        if cm is None or key not in cm.get("data", {}):
            fail(f"{fname}: --policy={p} is not a key of a ConfigMap mounted at {d}")
            continue
        used.add((cm["metadata"]["name"], key))
        files.append((p, cm["data"][key]))
    for name, cm in configmaps.items():
        for key in cm.get("data", {}):
            if (name, key) not in used:
                fail(f"ConfigMap {name}: {key} is never given to the agent as --policy")

    if errors:
        for e in errors:
            print(f"FAIL {e}", file=sys.stderr)
        sys.exit(1)
    print(f"ok   {len(objects)} objects consistent; capabilities {added} = packaging/shrike.service; {len(policies)} policy files", file=sys.stderr)

    if extract:
        for p, text in files:
            dest = extract / p.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
        for a in args[1:]:
            if a.startswith("--policy="):
                a = "--policy=" + str(extract / a.split("=", 1)[1].lstrip("/"))
            print(a)


if __name__ == "__main__":
    main()
