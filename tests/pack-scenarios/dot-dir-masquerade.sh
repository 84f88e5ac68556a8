#!/bin/sh
# T1036.005, after Atomic Red Team "Execute a process from a directory masquerading as the
# current parent directory": a shell copied into "$HOME/..." and run from there.
set -e
d="$HOME/..."
created=; [ -d "$d" ] || { mkdir -p "$d"; created=1; }
cp "$(command -v sh)" "$d/sh"
"$d/sh" -c 'echo $0 > /dev/null'
rm -f "$d/sh"
[ -z "$created" ] || rmdir "$d"
