#!/bin/sh
# T1546.004, after Atomic Red Team "Append to the system shell profile" done to a user's
# .bash_logout (runs at every logout), in a scratch home.
set -e
h=$(mktemp -d /home/scn.XXXXXX)
echo '(/tmp/.payload &) 2>/dev/null' >> "$h/.bash_logout"
rm -rf "$h"
