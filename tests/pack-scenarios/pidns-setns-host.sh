#!/bin/sh
# T1611 (Atomic Red Team T1611 "Privilege escalation via nsenter", and the /proc/PID/ns escape
# of containers that see the host's /proc): a process confined to its own pid, mount and UTS
# namespaces (a sandbox made with unshare, as a container runtime makes one) joins a host
# process's mount and UTS namespaces through the host /proc it can still see. No container
# cgroup is involved: the signal is the namespaces themselves. (PID 1's are not readable on
# every machine of this kind, so the host process is this script's shell.)
set -e
host=$$
unshare --pid --mount --uts --fork sh -c "
  hostname sandboxed-scn
  nsenter --mount=/proc/$host/ns/mnt --uts=/proc/$host/ns/uts /bin/true
" || true
