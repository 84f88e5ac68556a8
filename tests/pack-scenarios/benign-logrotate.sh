#!/bin/sh
# Benign: logrotate rotating, compressing and expiring an application's logs under /var/log
# (forced, with its own state file), as the daily job does; the last run expires everything
# (rotate 0) and its lastaction script removes the application's log directory.
set -e
l=/var/log/scn-app-$$
mkdir -p "$l"
for i in 1 2 3; do echo "line $i" >> "$l/app.log"; done
c=$(mktemp)
s=$(mktemp)
printf '%s/app.log {\n  rotate 1\n  compress\n  missingok\n  create 0640 root root\n  postrotate\n    true\n  endscript\n}\n' "$l" > "$c"
logrotate -f -s "$s" "$c"
echo more >> "$l/app.log"
logrotate -f -s "$s" "$c"
printf '%s/app.log {\n  rotate 0\n  missingok\n  nocreate\n  lastaction\n    rm -rf %s\n  endscript\n}\n' "$l" "$l" > "$c"
logrotate -f -s "$s" "$c"
rm -f "$c" "$s"
[ ! -e "$l" ]
