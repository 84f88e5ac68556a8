#!/bin/sh
# Benign: an admin reviewing scheduled work: grep -r over the systemd and cron directories,
# and the unit files listed with ls -l.
set -e
grep -r -n -e ExecStart -e OnCalendar /etc/systemd 2>/dev/null > /dev/null || true
grep -r -n root /etc/cron* 2>/dev/null > /dev/null || true
ls -la /etc/cron.d /etc/systemd/system > /dev/null 2>&1 || true
cat /etc/crontab > /dev/null 2>&1 || true
