#!/bin/sh
# T1611: from inside a (privileged) container, nsenter into PID 1's namespaces, the textbook
# escape. The container is a cgroup named like Docker's (see container-docker-cli.sh); here PID
# 1's namespaces are the host's own, so entering them changes nothing.
set -e
cg=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[ -n "$cg" ] || { echo "no cgroup2 mount" >&2; exit 1; }
id=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
d="$cg/docker-$id.scope"
mkdir "$d"
# The agent maps cgroup ids to paths by walking the cgroup tree, at most once a second.
sleep 2
sh -c "echo \$\$ > $d/cgroup.procs; exec nsenter -t 1 -m -u -i -n true" || true
# The agent names the container by walking the cgroup tree when it handles the exec, a moment
# later: the cgroup must still be there.
sleep 1
rmdir "$d"
