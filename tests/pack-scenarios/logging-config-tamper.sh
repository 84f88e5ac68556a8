#!/bin/sh
# T1562.006, after Atomic Red Team "Logging Configuration Changes on Linux Host": an rsyslog
# drop-in that discards auth messages and a journald drop-in that stores nothing. Removed.
set -e
mkdir -p /etc/rsyslog.d /etc/systemd/journald.conf.d
echo 'auth,authpriv.* stop' > /etc/rsyslog.d/00-scn-$$.conf
printf '[Journal]\nStorage=none\n' > /etc/systemd/journald.conf.d/scn-$$.conf
rm -f /etc/rsyslog.d/00-scn-$$.conf /etc/systemd/journald.conf.d/scn-$$.conf
