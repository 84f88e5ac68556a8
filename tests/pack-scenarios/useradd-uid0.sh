#!/bin/sh
# T1136.001 / T1098, after Atomic Red Team "Create a new user in Linux with `root` UID and GID":
# a second uid 0 account (locked, no home), removed at once.
set -e
u=scr$$
useradd -o -u 0 -g 0 -M -d /root -s /bin/bash "$u"
userdel -f "$u" 2>/dev/null || sed -i "/^$u:/d" /etc/passwd /etc/shadow /etc/group 2>/dev/null || true
