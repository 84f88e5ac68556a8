#!/bin/sh
# T1140, after Atomic Red Team "Decode base64 Data into Script" with the blob kept out of the
# command line: the encoded commands are written to a file, then `base64 -d FILE | sh` runs them
# as separate steps of this script (no `sh -c` carrying the whole pipeline).
set -e
f=$(mktemp)
printf '%s' 'ZWNobyBkZWNvZGVkIHN0YWdlIHJhbiA+IC9kZXYvbnVsbAo=' > "$f"
base64 -d "$f" | sh
rm -f "$f"
