#!/bin/sh
# T1082 / T1087.001 / T1033: the first commands typed into a web shell, run as the web server's
# account (www-data).
set -e
uid=$(id -u www-data 2>/dev/null || echo 33)
setpriv --reuid="$uid" --regid="$uid" --clear-groups sh -c \
  'id; whoami; uname -a; hostname; cat /etc/passwd; ps aux; ip addr' > /dev/null 2>&1 || true
