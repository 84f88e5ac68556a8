#!/bin/sh
# T1070.002, after Atomic Red Team "rm -rf", "Overwrite Linux Log" and journalctl vacuuming:
# shred a log under /var/log and ask journalctl to vacuum (an empty journal directory of its own,
# so no real journal is touched).
set -e
f=/var/log/scn-$$.log
echo 'Accepted password for root from 203.0.113.9' > "$f"
shred -u -z "$f"
j=$(mktemp -d)
journalctl --directory="$j" --vacuum-time=1s > /dev/null 2>&1 || true
rm -rf "$j"
