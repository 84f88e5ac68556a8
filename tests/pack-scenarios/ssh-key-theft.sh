#!/bin/sh
# T1552.004, after Atomic Red Team "Discover Private SSH Keys" and "Copy Private SSH Keys with
# CP": find private keys, copy one out (a throwaway key in a scratch home).
set -e
h=$(mktemp -d /home/scn.XXXXXX)
mkdir -p "$h/.ssh"
ssh-keygen -q -t ed25519 -N '' -f "$h/.ssh/id_ed25519"
out=$(mktemp -d)
find /home -maxdepth 3 -name 'id_*' -not -name '*.pub' -exec cp {} "$out/" \; 2>/dev/null
rm -rf "$h" "$out"
