#!/bin/sh
# T1609: a container administration client run from inside a container (a compromised pod
# talking to the runtime). No container runtime is installed here, so the process is put in a
# cgroup named the way Docker names a container's (docker-<64 hex>.scope): the agent sees a
# process in a container, exactly as with a real one.
set -e
cg=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[ -n "$cg" ] || { echo "no cgroup2 mount" >&2; exit 1; }
id=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
d="$cg/docker-$id.scope"
mkdir "$d"
# The agent maps cgroup ids to paths by walking the cgroup tree, at most once a second.
sleep 2
sh -c "echo \$\$ > $d/cgroup.procs; exec docker ps" > /dev/null 2>&1 || true
# The agent names the container by walking the cgroup tree when it handles the exec, a moment
# later: the cgroup must still be there.
sleep 1
rmdir "$d"
