#!/usr/bin/env bash
# Proves the packages by installing them (`./dev test` runs this, and `./dev package-test`):
#
#   deb    for Debian 12 (bookworm) and 13 (trixie): a fresh root file system from Debian's
#          archive (debootstrap minbase + systemd), booted with systemd as PID 1 in a privileged
#          podman container on the host's kernel. `apt-get install ./shrike_*.deb` there must
#          enable and start shrike.service under its hardening (capability bounding set checked
#          on the running agent), `shrike doctor` must pass, a short `shrike run` must report an
#          exec done on the host, an upgrade to a newer package under a running agent with
#          --keep-enforcing must keep a kill rule in force throughout (a marker run in a loop is
#          stopped before, during and after; the agent restarts and adopts the pins), and
#          `apt-get purge` must stop the agent, take the kernel enforcement away and leave
#          nothing behind but dpkg's and apt's own records.
#   image  the container image run the documented way (--privileged --pid=host ...) must report
#          exec events of host processes, with their host pids.
#
#   rootfs only make the suites' root file systems (debootstrap into packaging/cache/); nothing
#          is tested. `./dev test` runs it in the background while the host tests run.
#
# usage: packaging/test.sh [deb|image|all|rootfs]... [--suites "bookworm trixie"] [--keep]
#   --keep   leave the test containers running (for a look inside)
# The root file systems are cached in packaging/cache/ (and as podman images
# localhost/shrike-test-base:SUITE): the first run spends ~3-4 min per suite in debootstrap,
# later runs none. Phases that load BPF hold /tmp/shrike-bpf.lock.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
# shellcheck source=packaging/lib.sh
source packaging/lib.sh

CACHE=packaging/cache
OUT=target/package
SUITES="bookworm trixie"
KEEP=0
ROOTFS_ONLY=0
MIRROR=${SHRIKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CRATE_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The upgrade test installs the same binary packaged under a higher version.
UPGRADE_VERSION="$CRATE_VERSION+upgradetest1"
WORK=$(mktemp -d /tmp/shrike-pkgtest.XXXXXX)
CONTAINERS=()
PASSED=0
FAILED=0

cleanup() {
  local c
  if [ "$KEEP" = 0 ]; then
    for c in "${CONTAINERS[@]}"; do podman rm -f -t 5 "$c" >/dev/null 2>&1 || true; done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

check() { # check NAME COMMAND...: one assertion, counted and reported
  local name=$1
  shift
  if "$@"; then
    printf '  ok   %s\n' "$name" >&2
    PASSED=$((PASSED + 1))
  else
    printf '  FAIL %s\n' "$name" >&2
    FAILED=$((FAILED + 1))
  fi
}

bpf_lock() { exec 9>/tmp/shrike-bpf.lock; flock 9; }
bpf_unlock() { flock -u 9; exec 9>&-; }

# A Debian root file system as a podman image: from the podman storage, else from the tarball
# cached in packaging/cache/, else made with debootstrap (and cached both ways).
base_image() {
  local suite=$1 image="localhost/shrike-test-base:$1"
  if podman image exists "$image"; then
    echo "$image"
    return
  fi
  rootfs_tar "$suite"
  podman import --quiet "$CACHE/debian-$suite.tar" "$image" >/dev/null
  echo "$image"
}

# Makes packaging/cache/debian-SUITE.tar with debootstrap unless it is there: no container, no
# BPF, so `./dev test` runs it (the `rootfs` step) in the background while the host tests run.
rootfs_tar() {
  local suite=$1 tar="$CACHE/debian-$1.tar"
  mkdir -p "$CACHE"
  if [ ! -s "$tar" ]; then
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    log "debootstrap $suite (minbase + systemd) from $MIRROR: a few minutes, once"
    local root="$WORK/rootfs-$suite" start=$SECONDS
    debootstrap --variant=minbase --include=systemd,systemd-sysv "$suite" "$root" "$MIRROR" \
      > "$WORK/debootstrap-$suite.log" 2>&1 || { tail -20 "$WORK/debootstrap-$suite.log" >&2; die "debootstrap $suite failed"; }
    # No apt lists or .debs in the image: the tests install only the local package.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$root"
    log "debootstrap $suite took $((SECONDS - start)) s"
  fi
}

# Builds the packages under test: the .deb and image of this tree, and the same binary as a
# newer .deb for the upgrade.
build_packages() {
  packaging/package.sh binary deb image
  SHRIKE_NO_BUILD=1 SHRIKE_DEB_VERSION="$UPGRADE_VERSION" packaging/package.sh deb >/dev/null
}

# A marker the kill rule names, and one the host runs for the exec-event checks.
host_marker() {
  local m="$WORK/host-marker-$$"
  cp /usr/bin/true "$m"
  echo "$m"
}

# Runs MARKER in the container every 50 ms until /run/marker-stop appears; prints "ran" for
# every run that was not stopped by the kernel (exit 0) and "stopped" for each that was (killed
# or EPERM). Run it in the background.
marker_loop() {
  in_c sh -c "
    while [ ! -e /run/marker-stop ]; do
      if $1 2>/dev/null; then echo ran; else echo stopped; fi
      sleep 0.05
    done"
}

in_c() { podman exec "$C" "$@"; }

test_deb_suite() {
  local suite=$1 image
  image=$(base_image "$suite")
  C="shrike-pkgtest-$suite"
  podman rm -f -t 0 "$C" >/dev/null 2>&1 || true
  log "[$suite] booting $image with systemd"
  bpf_lock
  podman run -d --name "$C" --privileged --systemd=always --ulimit host \
    -v "$PWD/$OUT:/pkg:ro" "$image" /sbin/init >/dev/null
  CONTAINERS+=("$C")
  local i state=""
  for i in $(seq 1 60); do
    state=$(in_c systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 1
  done
  check "[$suite] systemd boots in the container (state: $state)" test "$state" = running -o "$state" = degraded

  # The marker the kill rule names, made before the "before" snapshot of the file system.
  in_c cp /usr/bin/true /usr/local/bin/shrike-marker
  in_c sh -c 'find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \) -prune -o -print | sort' > "$WORK/$suite-before.txt"

  log "[$suite] apt-get install ./shrike_${CRATE_VERSION}_amd64.deb"
  in_c env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/pkg/shrike_${CRATE_VERSION}_amd64.deb" > "$WORK/$suite-install.log" 2>&1 ||
    { cat "$WORK/$suite-install.log" >&2; die "[$suite] install failed"; }
  check "[$suite] package installed" in_c dpkg-query -W -f='${Status}\n' shrike
  check "[$suite] conffiles registered" sh -c "podman exec $C dpkg-query -W -f='\${Conffiles}\n' shrike | grep -q /etc/default/shrike"
  check "[$suite] the example configuration is a conffile and valid" sh -c "podman exec $C dpkg-query -W -f='\${Conffiles}\n' shrike | grep -q /etc/shrike/shrike.yaml && podman exec $C shrike config validate"
  check "[$suite] man page and completions installed" in_c test -s /usr/share/man/man8/shrike-run.8.gz -a -s /usr/share/bash-completion/completions/shrike -a -s /usr/share/zsh/vendor-completions/_shrike -a -s /usr/share/fish/vendor_completions.d/shrike.fish
  check "[$suite] unit enabled by the postinst" sh -c "podman exec $C systemctl is-enabled shrike | grep -qx enabled"
  # --man=no: minbase has no man-db (lintian checks the pages when the package is built).
  check "[$suite] systemd-analyze verify shrike.service" in_c systemd-analyze verify --man=no shrike.service
  check "[$suite] the postinst started the service and it is ready" wait_active "$suite"
  check "[$suite] service running under its hardening" service_hardened "$suite"
  check "[$suite] its pins are in the bpffs of the system (shrike-bpffs.service)" in_c test -d /sys/fs/bpf/shrike/links

  log "[$suite] shrike doctor (the installed binary, in the host's PID namespace)"
  local rc=0
  doctor_in_rootfs > "$WORK/$suite-doctor.txt" 2>&1 || rc=$?
  check "[$suite] shrike doctor exits 0 (its output below if not)" test "$rc" = 0
  [ "$rc" = 0 ] || cat "$WORK/$suite-doctor.txt" >&2

  log "[$suite] shrike run, an exec on the host"
  check "[$suite] shrike run reports an exec done on the host" run_sees_host_exec "$suite"

  test_upgrade "$suite"
  test_purge "$suite"
  bpf_unlock
}

# Waits until the service's current invocation logged "shrike ready" (a restart's old lines
# do not count).
wait_active() {
  local i inv
  for i in $(seq 1 90); do
    inv=$(in_c systemctl show -p InvocationID --value shrike 2>/dev/null || true)
    if [ -n "$inv" ] && in_c systemctl is-active --quiet shrike &&
      in_c journalctl -q --no-pager "_SYSTEMD_INVOCATION_ID=$inv" | grep 'shrike ready' >/dev/null; then
      # (not grep -q: under pipefail, journalctl killed by SIGPIPE would fail the pipeline)
      return 0
    fi
    sleep 1
  done
  in_c systemctl status shrike --no-pager >&2 || true
  in_c journalctl -u shrike --no-pager -n 40 >&2 || true
  return 1
}

# `shrike doctor` of the package installed in the container, run in its root file system with the
# host's /proc, /sys and /dev, as on a Debian host. Not `podman exec`: inside the container's PID
# namespace doctor's trial programs, which wait for an event of their own pid, never see one
# (the probe compares the namespace's pid with the kernel's; `shrike run` is not affected).
doctor_in_rootfs() {
  local root
  root=$(podman mount "$C")
  unshare --mount --propagation private sh -c "
    mount --rbind /proc '$root/proc' && mount --rbind /sys '$root/sys' &&
    mount --rbind /dev '$root/dev' && exec chroot '$root' /usr/bin/shrike doctor"
}

# The running agent's capability bounding set is the unit's, NoNewPrivs is set, it runs in a
# mount namespace of its own with / read-only (ProtectSystem=strict), under a seccomp filter.
service_hardened() {
  local pid status
  pid=$(in_c systemctl show -p MainPID --value shrike)
  [ "${pid:-0}" != 0 ] || { echo "no MainPID" >&2; return 1; }
  status=$(in_c cat "/proc/$pid/status")
  [ "$(in_c readlink "/proc/$pid/exe")" = /usr/bin/shrike ] || { echo "main PID is not the agent" >&2; return 1; }
  grep -q '^NoNewPrivs:[[:space:]]*1' <<<"$status" || { echo "NoNewPrivs not set" >&2; return 1; }
  local bnd
  bnd=$(awk '/^CapBnd:/ { print $2 }' <<<"$status")
  [ "$bnd" = "$UNIT_CAPBND" ] || { echo "CapBnd $bnd, the unit's is $UNIT_CAPBND" >&2; return 1; }
  in_c sh -c "[ \"\$(readlink /proc/1/ns/mnt)\" != \"\$(readlink /proc/$pid/ns/mnt)\" ]" || { echo "no private mount namespace" >&2; return 1; }
  in_c sh -c "awk '\$5 == \"/\" { o = \$6 } END { exit o !~ /^ro/ }' /proc/$pid/mountinfo" || { echo "/ is not read-only for the agent (ProtectSystem=strict)" >&2; return 1; }
  grep -q '^Seccomp:[[:space:]]*2' <<<"$status" || { echo "no system call filter" >&2; return 1; }
}

run_sees_host_exec() {
  local suite=$1 marker out="$WORK/$suite-run.jsonl" pids=()
  marker=$(host_marker)
  in_c sh -c 'echo $$ > /run/test-agent.pid; exec shrike run --duration 90 --no-file-sensor' \
    > "$out" 2> "$WORK/$suite-run.err" &
  local agent=$!
  local i
  for i in $(seq 1 240); do grep -q 'shrike ready' "$WORK/$suite-run.err" && break; sleep 0.25; done
  for i in 1 2 3 4 5; do "$marker" & pids+=($!); sleep 0.2; done
  wait "${pids[@]}" 2>/dev/null || true
  sleep 1
  in_c sh -c 'kill -TERM "$(cat /run/test-agent.pid)"'
  wait "$agent" || { cat "$WORK/$suite-run.err" >&2; return 1; }
  python3 - "$out" "$marker" "${pids[@]}" <<'EOF'
import json, sys
out, marker, pids = sys.argv[1], sys.argv[2], {int(p) for p in sys.argv[3:]}
seen = [e for e in map(json.loads, open(out))
        if e.get("kind") == "process_exec" and e["process"]["binary"] == marker]
assert seen, f"no process_exec of {marker} in {out}"
assert {e["process"]["pid"] for e in seen} & pids, f"pids {[e['process']['pid'] for e in seen]} are not the host's {pids}"
EOF
}

# A kill rule for /usr/local/bin/shrike-marker in policy.d, the service restarted to load it,
# a marker loop running, then an upgrade to a newer package: the postinst restarts the agent
# (SIGTERM: the pins stay; the new agent adopts them) and not one run of the marker gets through.
test_upgrade() {
  local suite=$1 loop log="$WORK/$suite-marker.log" before_pid after_pid
  log "[$suite] upgrade under a running agent with --keep-enforcing"
  podman exec -i "$C" sh -c 'cat > /etc/shrike/policy.d/50-test-kill.yaml' <<'EOF'
- rule: Package test marker
  id: PKGTEST-001
  severity: high
  mitre: [T1059]
  condition: kind = process_exec and process.binary = /usr/local/bin/shrike-marker
  action: kill
EOF
  check "[$suite] systemctl restart shrike" in_c systemctl restart shrike
  check "[$suite] restarted with the kill rule" wait_active "$suite"
  check "[$suite] the service loaded policy.d/50-test-kill.yaml" sh -c "podman exec $C journalctl -u shrike -q --no-pager | grep -q 'policy loaded rules=.*50-test-kill.yaml'"
  check "[$suite] the kill rule is in force before the upgrade" sh -c "! podman exec $C /usr/local/bin/shrike-marker"
  before_pid=$(in_c systemctl show -p MainPID --value shrike)
  in_c rm -f /run/marker-stop
  marker_loop /usr/local/bin/shrike-marker > "$log" 2>&1 &
  loop=$!
  sleep 1
  in_c env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/pkg/shrike_${UPGRADE_VERSION}_amd64.deb" > "$WORK/$suite-upgrade.log" 2>&1 ||
    { cat "$WORK/$suite-upgrade.log" >&2; die "[$suite] upgrade failed"; }
  check "[$suite] the new agent is ready" wait_active "$suite"
  sleep 1
  in_c touch /run/marker-stop
  wait "$loop" || true
  after_pid=$(in_c systemctl show -p MainPID --value shrike)
  check "[$suite] upgraded to $UPGRADE_VERSION" sh -c "podman exec $C dpkg-query -W -f='\${Version}' shrike | grep -qx '$UPGRADE_VERSION'"
  check "[$suite] the agent was restarted by the upgrade ($before_pid -> $after_pid)" test "$before_pid" != "$after_pid" -a "$after_pid" != 0
  check "[$suite] the new agent adopted the pinned enforcement" sh -c "podman exec $C journalctl -u shrike -q --no-pager | grep -q 'adopted pinned enforcement'"
  local stopped ran
  stopped=$(grep -c '^stopped$' "$log" || true)
  ran=$(grep -c '^ran$' "$log" || true)
  printf '       marker runs during the upgrade: %s stopped, %s got through\n' "$stopped" "$ran" >&2
  check "[$suite] not one marker run got through during the upgrade" test "$ran" = 0 -a "$stopped" -gt 10
  check "[$suite] the kill rule is in force after the upgrade" sh -c "! podman exec $C /usr/local/bin/shrike-marker"
}

# No process in the container runs /usr/bin/shrike (minbase has no pgrep).
no_agent_running() {
  in_c sh -c 'for p in /proc/[0-9]*; do
    case "$(readlink "$p/exe" 2>/dev/null)" in /usr/bin/shrike*) echo "still running: $p" >&2; exit 1 ;; esac
  done'
}

test_purge() {
  local suite=$1
  log "[$suite] apt-get purge shrike"
  in_c env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q shrike > "$WORK/$suite-purge.log" 2>&1 ||
    { cat "$WORK/$suite-purge.log" >&2; die "[$suite] purge failed"; }
  check "[$suite] no agent left running" no_agent_running
  check "[$suite] the pinned enforcement is gone" sh -c "! podman exec $C test -e /sys/fs/bpf/shrike"
  check "[$suite] the marker runs again" in_c /usr/local/bin/shrike-marker
  in_c sh -c 'find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \) -prune -o -print | sort' > "$WORK/$suite-after.txt"
  # What Debian keeps: dpkg's and apt's records and logs, the journal, ld.so's and man-db's
  # caches. Anything else that differs was left behind (or taken) by the package.
  diff "$WORK/$suite-before.txt" "$WORK/$suite-after.txt" | grep '^[<>]' |
    grep -Ev '^[<>] /var/(lib/dpkg|lib/apt|cache/apt|cache/debconf|cache/man|cache/ldconfig|log|lib/systemd/catalog)(/|$)' \
    > "$WORK/$suite-leftovers.txt" || true
  check "[$suite] purge leaves nothing behind" test ! -s "$WORK/$suite-leftovers.txt"
  [ ! -s "$WORK/$suite-leftovers.txt" ] || sed 's/^/       /' "$WORK/$suite-leftovers.txt" >&2
}

# The image, run the documented way, reports exec events of host processes with host pids.
test_image() {
  local image="localhost/shrike:$CRATE_VERSION" marker out="$WORK/image-run.jsonl" pids=()
  podman image exists "$image" || die "$image is missing: run packaging/package.sh image"
  marker=$(host_marker)
  log "image: podman run --privileged --pid=host ... $image run"
  bpf_lock
  C=shrike-pkgtest-image
  podman rm -f -t 0 "$C" >/dev/null 2>&1 || true
  podman run --name "$C" --privileged --pid=host --network=host --cgroupns=host --ulimit host \
    -v /sys/fs/bpf:/sys/fs/bpf "$image" run --duration 90 > "$out" 2> "$WORK/image-run.err" &
  local agent=$! i
  CONTAINERS+=("$C")
  for i in $(seq 1 240); do grep -q 'shrike ready' "$WORK/image-run.err" && break; sleep 0.25; done
  for i in 1 2 3 4 5; do "$marker" & pids+=($!); sleep 0.2; done
  wait "${pids[@]}" 2>/dev/null || true
  sleep 1
  podman stop -t 20 "$C" >/dev/null 2>&1 || true
  wait "$agent" || true
  bpf_unlock
  check "image: the agent started (shrike ready)" grep -q 'shrike ready' "$WORK/image-run.err"
  check "image: exec events of host processes, with host pids" python3 - "$out" "$marker" "${pids[@]}" <<'EOF'
import json, sys
out, marker, pids = sys.argv[1], sys.argv[2], {int(p) for p in sys.argv[3:]}
seen = [e for e in map(json.loads, open(out))
        if e.get("kind") == "process_exec" and e["process"]["binary"] == marker]
assert seen, f"no process_exec of {marker}"
got = {e["process"]["pid"] for e in seen}
assert got & pids, f"pids {got} are not the host's {pids}"
assert all(e["parent"] for e in seen), "the host parent is known"
EOF
  check "image: has no shell" sh -c "! podman run --rm --ulimit host --entrypoint /bin/sh $image -c true 2>/dev/null"
}

main() {
  local steps=()
  while (($#)); do
    case "$1" in
      --suites) SUITES=${2:?--suites needs a list}; shift 2 ;;
      --keep) KEEP=1; shift ;;
      deb|image|all) steps+=("$1"); shift ;;
      rootfs) ROOTFS_ONLY=1; shift ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) die "unknown argument '$1'" ;;
    esac
  done
  [ ${#steps[@]} -gt 0 ] || steps=(all)
  [ "$(id -u)" = 0 ] || die "run as root (podman, debootstrap, BPF)"
  local start=$SECONDS suite step
  podman_setup
  if [ "$ROOTFS_ONLY" = 1 ]; then
    for suite in $SUITES; do
      podman image exists "localhost/shrike-test-base:$suite" || rootfs_tar "$suite"
    done
    return
  fi
  UNIT_CAPBND=$(unit_capbnd)
  build_packages
  for step in "${steps[@]}"; do
    case "$step" in
      deb|all) for suite in $SUITES; do test_deb_suite "$suite"; done ;;&
      image|all) test_image ;;
    esac
  done
  printf 'packaging: %d passed, %d failed (%d s)\n' "$PASSED" "$FAILED" "$((SECONDS - start))"
  [ "$FAILED" = 0 ]
}

# The unit's CapabilityBoundingSet as /proc/PID/status prints CapBnd (hex, 16 digits).
unit_capbnd() {
  local caps mask=0 cap n
  caps=$(sed -n 's/^CapabilityBoundingSet=//p' packaging/shrike.service)
  for cap in $caps; do
    n=$(cap_number "$cap") || die "unknown capability $cap in packaging/shrike.service"
    mask=$((mask | (1 << n)))
  done
  printf '%016x' "$mask"
}

cap_number() {
  case "$1" in
    CAP_CHOWN) echo 0 ;; CAP_DAC_OVERRIDE) echo 1 ;; CAP_DAC_READ_SEARCH) echo 2 ;;
    CAP_FOWNER) echo 3 ;; CAP_KILL) echo 5 ;; CAP_SETGID) echo 6 ;; CAP_SETUID) echo 7 ;;
    CAP_NET_ADMIN) echo 12 ;; CAP_NET_RAW) echo 13 ;; CAP_IPC_LOCK) echo 14 ;;
    CAP_SYS_MODULE) echo 16 ;; CAP_SYS_PTRACE) echo 19 ;; CAP_SYS_ADMIN) echo 21 ;;
    CAP_SYS_RESOURCE) echo 24 ;; CAP_PERFMON) echo 38 ;; CAP_BPF) echo 39 ;;
    *) return 1 ;;
  esac
}

main "$@"
