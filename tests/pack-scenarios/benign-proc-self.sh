#!/bin/sh
# Benign: monitoring reads its own /proc entries and the process list (ps with environments,
# top in batch mode).
set -e
cat /proc/self/environ > /dev/null
cat /proc/self/status /proc/self/maps > /dev/null
ps eww -p $$ > /dev/null
top -b -n 1 > /dev/null 2>&1 || true
