#!/bin/sh
# T1548.001, after Atomic Red Team "Make and modify capabilities of a binary" and "Set a SetGID
# flag on file": cap_setuid on a copy of an interpreter, and setgid on a shell copy.
set -e
d=$(mktemp -d)
cp "$(readlink -f /usr/bin/perl)" "$d/perl"
setcap cap_setuid+ep "$d/perl"
cp /bin/sh "$d/sh"
chmod g+s "$d/sh"
rm -rf "$d"
