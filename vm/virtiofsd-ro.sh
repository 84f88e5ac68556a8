#!/usr/bin/env bash
# Serves the host's / to a matrix guest read-only (started by vm/matrix.sh
# inside `unshare --mount --propagation private`, so nothing here is seen by
# the host): binds / recursively at RO_DIR, leaves out /proc, /sys and /dev
# (the guest mounts its own), remounts every remaining mount read-only, then
# becomes virtiofsd serving RO_DIR.
#
# usage: unshare --mount --propagation private -- vm/virtiofsd-ro.sh RO_DIR VIRTIOFSD [ARGS...]
set -euo pipefail
ro="$1"; shift

mount --rbind / "$ro"
for m in proc sys dev; do umount -l "$ro/$m" 2>/dev/null || true; done
awk -v p="$ro" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo |
  while read -r m; do
    mount -o remount,bind,ro "$m" 2>/dev/null || echo "vm: warning: $m stays writable for the guest" >&2
  done
touch "$ro/.shrike-vm-rw-probe" 2>/dev/null && {
  rm -f "$ro/.shrike-vm-rw-probe"
  echo "vm: error: the host's / is still writable through $ro; refusing to share it" >&2
  exit 1
}
exec "$@"
