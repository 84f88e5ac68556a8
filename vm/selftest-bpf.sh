#!/usr/bin/env bash
# Guest side of vm/selftest.sh's BPF check (runs inside a matrix guest, not on
# the host): mounts bpffs, loads vm/cache/selftest/selftest.bpf.o with the
# host's bpftool, attaches its LSM and fentry programs (vm/bpf_attach.py), and
# proves they act: exec of /tmp/shrike-vm-deny-me is refused while the LSM
# program is attached and allowed after it is detached; unlink calls are counted.
# With --expect-lsm-inert (a guest booted with vm/matrix.sh --lsm off) it
# proves the opposite: the LSM program loads and attaches but never runs.
#
# usage (in a guest): vm/selftest-bpf.sh [--expect-lsm-inert] [OBJECT]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
inert=0
[[ ${1:-} == --expect-lsm-inert ]] && { inert=1; shift; }
obj="${1:-$here/cache/selftest/selftest.bpf.o}"
pin=/sys/fs/bpf/shrike-vm-selftest

fail() { echo "selftest-bpf: FAIL: $*"; exit 1; }
step() { echo "selftest-bpf: $*"; }

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security
step "kernel $(uname -r), LSMs: $(cat /sys/kernel/security/lsm 2>/dev/null || echo '(securityfs not mounted)')"

bpftool prog loadall "$obj" "$pin" pinmaps "$pin-maps" || fail "bpftool could not load $obj"
step "loaded: $(ls "$pin" | tr '\n' ' ')"
bpftool prog show pinned "$pin/deny_exec"
bpftool prog show pinned "$pin/count_unlink"

/usr/bin/python3 "$here/bpf_attach.py" "$pin/deny_exec" "$pin-lsm-link" || fail "LSM program did not attach"
/usr/bin/python3 "$here/bpf_attach.py" "$pin/count_unlink" "$pin-fentry-link" || fail "fentry program did not attach"

cp /usr/bin/true /tmp/shrike-vm-deny-me
if ((inert)); then
  /tmp/shrike-vm-deny-me || fail "exec was denied although bpf is not an active LSM"
  step "LSM program attached but inert: /tmp/shrike-vm-deny-me still runs"
else
  if /tmp/shrike-vm-deny-me 2>/dev/null; then fail "exec of /tmp/shrike-vm-deny-me was not denied"; fi
  /usr/bin/true || fail "exec of /usr/bin/true was denied too"
  step "LSM deny works: /tmp/shrike-vm-deny-me refused, /usr/bin/true allowed"
fi

for i in 1 2 3; do touch "/tmp/unlink-$i" && rm "/tmp/unlink-$i"; done
bss=$(ls "$pin-maps" | grep -m1 'bss$') || fail "no .bss map pinned in $pin-maps"
dump=$(bpftool -j map dump pinned "$pin-maps/$bss")
counter() {  # value of a global variable of the object's .bss
  /usr/bin/python3 -c 'import json, sys
vars = json.loads(sys.argv[1])[0]["formatted"]["value"][".bss"]
print({k: v for x in vars for k, v in x.items()}[sys.argv[2]])' "$dump" "$1"
}
unlinks=$(counter unlink_count)
denied=$(counter denied_count)
((unlinks >= 3)) || fail "fentry/vfs_unlink counted $unlinks unlinks, expected at least 3"
((inert == 0 || denied == 0)) || fail "the LSM program ran ($denied denials) although bpf is not an active LSM"
step "fentry works: vfs_unlink counted $unlinks times; LSM denied $denied exec(s)"

rm "$pin-lsm-link" "$pin-fentry-link"
# Removing the pin releases the link from bpffs's inode eviction, after an RCU
# grace period; 5.10 then detaches from a work queue and waits for RCU-tasks,
# so the program can still run for a moment. Allow it ten seconds.
for try in $(seq 20); do
  /tmp/shrike-vm-deny-me 2>/dev/null && break
  ((try < 20)) || fail "exec still denied 10 s after the LSM link was removed"
  sleep 0.5
done
step "detached: /tmp/shrike-vm-deny-me runs again (after $(((try - 1) * 500)) ms)"
step "PASS"
