#!/bin/sh
# T1053.002, after Atomic Red Team "At - Schedule a job": a job file placed in atd's spool (as
# at(1) would write it), then removed.
set -e
d=/var/spool/cron/atjobs
created=; [ -d "$d" ] || { mkdir -p "$d"; created=1; }
f="$d/a0001$(printf '%03x' $(($$ % 4096)))01c2e7f"
printf '#!/bin/sh\n# atrun uid=0 gid=0\n/tmp/.payload\n' > "$f"
rm -f "$f"
[ -z "$created" ] || rmdir "$d" 2>/dev/null || true
