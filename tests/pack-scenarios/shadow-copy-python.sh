#!/bin/sh
# T1003.008, after Atomic Red Team "Access /etc/shadow (Local)" done the way hash dumpers do it:
# python copies the shadow and group-shadow files next to passwd for offline cracking.
set -e
d=$(mktemp -d)
python3 -c 'import shutil, sys
for f in ("/etc/shadow", "/etc/gshadow", "/etc/passwd"):
    shutil.copy(f, sys.argv[1])' "$d"
rm -rf "$d"
