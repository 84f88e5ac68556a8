#!/bin/sh
# Benign: an inventory script walking the root file system (what updatedb and asset agents do):
# every directory listed, config files and setuid programs counted.
set -e
find / -xdev -type d > /dev/null 2>&1 || true
find /etc -name '*.conf' -type f > /dev/null 2>&1 || true
find /usr/bin /usr/sbin -perm -4000 -type f > /dev/null 2>&1 || true
