#!/bin/sh
# T1059.004, after Atomic Red Team "Creating shell using find command" (GTFOBins): find runs a
# bare /bin/sh, which reads its commands from stdin.
set -e
echo 'id > /dev/null' | find / -maxdepth 0 -exec /bin/sh \; -quit
