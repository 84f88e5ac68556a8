#!/bin/sh
# Benign: an inventory script walking the root file system (what updatedb and asset agents do):
# every directory listed, config files and recently changed files counted.
set -e
find / -xdev -type d > /dev/null 2>&1 || true
find /etc -name '*.conf' -type f > /dev/null 2>&1 || true
find /etc -xdev -type f -newer /etc/hostname > /dev/null 2>&1 || true
