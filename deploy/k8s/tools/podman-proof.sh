#!/usr/bin/env bash
# Runs the image the way 20-daemonset.yaml runs it, on this machine, with podman instead of a
# kubelet: the same arguments and policy files (taken from the manifests by check.py --extract),
# the same four capabilities and nothing else, no privileged, no-new-privileges, a read-only
# root, no seccomp filter, the host's PID, network and UTS namespaces but a
# private cgroup namespace (as a pod has), the same host mounts with the same propagation and
# read-only flags, and the DaemonSet's memory and CPU limits. Not part of ./dev test (it needs
# the image and loads BPF); run it after `./dev package image` to see the narrow set work:
#
#   1. `shrike doctor` with the DaemonSet's arguments (exit 0: every capability they need)
#   2. `shrike run`: an exec from /dev/shm on the host raises an alert carrying its host pid;
#      a kill rule (added to the local policy) stops a marker before it runs
#   3. the agent stopped: with --keep-enforcing the marker is still stopped, from the pins it
#      left in the host's /sys/fs/bpf/shrike through the hostPath mount
#   4. the agent started again adopts the pins; started once more without --keep-enforcing it
#      removes them (the clean-up README "Kubernetes" describes)
#
# usage: deploy/k8s/tools/podman-proof.sh [IMAGE]     (default: the DaemonSet's image)
# Holds /tmp/shrike-bpf.lock while the agent runs.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../../.."
# shellcheck source=packaging/lib.sh
source packaging/lib.sh
podman_setup

PY=deploy/cache/venv/bin/python
[ -x "$PY" ] || die "run deploy/k8s/tools/test.sh first (it installs the venv)"
IMAGE=${1:-$(sed -n 's/^ *image: //p' deploy/k8s/20-daemonset.yaml)}
podman image exists "$IMAGE" || die "no image $IMAGE: build it with ./dev package image"
W=$(mktemp -d /tmp/shrike-k8sproof.XXXXXX)
C=shrike-k8sproof
PASSED=0
FAILED=0
MADE_PINS=0
cleanup() {
  podman rm -f -t 0 "$C" >/dev/null 2>&1 || true
  # Pins this script left (it failed half way) would be adopted by the next agent on the machine.
  [ "$MADE_PINS" = 0 ] || rm -rf /sys/fs/bpf/shrike
  rm -rf "$W" /dev/shm/shrike-k8sproof /tmp/shrike-k8sproof-kill
}
trap cleanup EXIT
check() {
  local name=$1
  shift
  if "$@"; then printf '  ok   %s\n' "$name" >&2; PASSED=$((PASSED + 1)); else printf '  FAIL %s\n' "$name" >&2; FAILED=$((FAILED + 1)); fi
}

"$PY" deploy/k8s/tools/check.py --extract "$W/pod" 2>/dev/null | sed "s|$W/pod||" > "$W/args"
mapfile -t ARGS < "$W/args"
# A kill rule in the local file, as an operator would add it to the ConfigMap.
cat >> "$W/pod/etc/shrike/policy.d/local.yaml" <<'EOF'
- rule: Marker from the proof directory
  id: LOCAL-K8SPROOF
  description: podman-proof.sh's marker, stopped by the kernel.
  severity: high
  condition: kind = process_exec and process.binary startswith /tmp/shrike-k8sproof-kill/
  action: kill
EOF

# The DaemonSet's pod, translated (see the comments there for why each one).
POD=(--ulimit host --read-only --security-opt no-new-privileges --security-opt seccomp=unconfined
  --cap-drop all --cap-add CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN,CAP_SYS_PTRACE
  --pid host --network host --uts host --cgroupns private --user 0:0
  --memory 1g --cpus 1 -e SHRIKE_LOG=info
  -v /sys/fs/bpf:/sys/fs/bpf:rslave
  -v /sys/kernel/btf:/sys/kernel/btf:ro
  -v /sys/fs/cgroup:/sys/fs/cgroup:ro
  -v /sys/kernel/security:/sys/kernel/security:ro
  -v "$W/pod/etc/shrike/default:/etc/shrike/default:ro"
  -v "$W/pod/etc/shrike/policy.d:/etc/shrike/policy.d:ro")
for d in /run/containerd /run/crio; do
  [ -d "$d" ] && POD+=(-v "$d:$d:ro")
done

mkdir -p /tmp/shrike-k8sproof-kill
cp /usr/bin/true /tmp/shrike-k8sproof-kill/marker
marker_killed() { /tmp/shrike-k8sproof-kill/marker; [ $? -eq 137 ]; }

exec 9>/tmp/shrike-bpf.lock
flock 9
[ ! -e /sys/fs/bpf/shrike ] || die "/sys/fs/bpf/shrike exists: another agent left pins (or runs); not touching them"

log "doctor with the DaemonSet's arguments: the narrow set against --privileged"
# doctor exits 1 wherever the kernel lacks something (fentry here, say): what must hold is that
# the four capabilities give the same table as a privileged container on the same kernel.
podman run --rm "${POD[@]}" "$IMAGE" doctor "${ARGS[@]}" > "$W/doctor-narrow.out" 2>&1 || true
podman run --rm --privileged --ulimit host --pid host --network host --uts host --cgroupns host \
  -v /sys/fs/bpf:/sys/fs/bpf -v "$W/pod/etc/shrike:/etc/shrike:ro" \
  "$IMAGE" doctor "${ARGS[@]}" > "$W/doctor-privileged.out" 2>&1 || true
grep -qi 'running as root' "$W/doctor-narrow.out" || { cat "$W/doctor-narrow.out" >&2; die "doctor did not run"; }
# Rows only: tables without paths that differ by mount (cgroup2 is the same directory either way).
rows() { grep -E '^  (ok|no|fallback|degraded|unavailable) ' "$1" | grep -v 'cgroup v2:'; }
same_doctor() { diff -u <(rows "$W/doctor-privileged.out") <(rows "$W/doctor-narrow.out") >&2; }
check "shrike doctor: the same table as a privileged container ($(rows "$W/doctor-narrow.out" | grep -c '^  ok ') rows ok)" same_doctor

run_agent() { # run_agent EXTRA...: the agent in the background until 'shrike ready'
  podman rm -f -t 0 "$C" >/dev/null 2>&1 || true
  podman run -d --name "$C" "${POD[@]}" "$IMAGE" run "${ARGS[@]}" "$@" >/dev/null
  local i
  for i in $(seq 1 60); do
    podman logs "$C" 2>&1 | grep -q 'shrike ready' && return 0
    [ "$(podman inspect --format '{{.State.Running}}' "$C")" = true ] || break
    sleep 1
  done
  podman logs "$C" >&2
  return 1
}

log "run: alert and kill under the narrow set"
MADE_PINS=1
run_agent
cp /usr/bin/true /dev/shm/shrike-k8sproof
/dev/shm/shrike-k8sproof & shm_pid=$!
wait $shm_pid || true
check "a kill rule from the local ConfigMap stops the marker" marker_killed
sleep 1
cg=$(podman inspect --format '{{.State.CgroupPath}}' "$C")
# cgroup v2 (memory.peak), else v1 (memory.max_usage_in_bytes).
peak=$(cat "/sys/fs/cgroup$cg/memory.peak" 2>/dev/null ||
  cat "/sys/fs/cgroup/memory$cg/memory.max_usage_in_bytes" 2>/dev/null || echo 0)
podman stop -t 30 "$C" >/dev/null
podman logs "$C" > "$W/run1.out" 2> "$W/run1.err"
printf '  memory peak of the container: %s MiB\n' "$((peak / 1048576))" >&2
check "the exec from /dev/shm on the host is alerted, with its host pid" \
  grep -q "\"pid\":$shm_pid[,}]" "$W/run1.out"
check "pins were written to the host's bpffs through the hostPath" test -d /sys/fs/bpf/shrike/links
check "the kernel keeps killing the marker while the agent is stopped" marker_killed

log "restart: adopt, then clean up"
run_agent
check "a new agent adopts the pins" sh -c "podman logs $C 2>&1 | grep -q 'adopted pinned enforcement'"
check "which still kill the marker" marker_killed
podman stop -t 30 "$C" >/dev/null
sed -i '/^--keep-enforcing$/d' "$W/args"
mapfile -t ARGS < "$W/args"
run_agent
podman stop -t 30 "$C" >/dev/null
check "an agent without --keep-enforcing removes the pins" test ! -e /sys/fs/bpf/shrike
check "and the marker runs again" /tmp/shrike-k8sproof-kill/marker
MADE_PINS=0
log "podman proof: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
