#!/bin/sh
# T1070.006, after Atomic Red Team "Set a file's access timestamp" and "Modify file timestamps
# using reference file": a dropped file backdated, then given /bin/ls's times.
set -e
f=$(mktemp)
touch -a -t 197001010000.00 "$f"
touch -acmr /bin/ls "$f"
rm -f "$f"
