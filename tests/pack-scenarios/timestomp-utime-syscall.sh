#!/bin/sh
# T1070.006, after Atomic Red Team "Modify file timestamps using reference file" and "Set a
# file's modification timestamp", by another route than touch: a program dropped into
# /usr/local/bin is given /bin/ls's times with python's os.utime (utimensat by path), then
# backdated to a chosen date through an open descriptor (futimens) and with perl's utime.
set -e
f=$(mktemp /usr/local/bin/.XXXXXX)
trap 'rm -f "$f"' EXIT
cp /bin/true "$f"
/usr/bin/python3 -c 'import os, sys
st = os.stat("/bin/ls")
os.utime(sys.argv[1], (st.st_atime, st.st_mtime))
fd = os.open(sys.argv[1], os.O_RDONLY)
os.utime(fd, (1546300800, 1546300800))
os.close(fd)' "$f"
perl -e 'utime 1262304000, 1262304000, $ARGV[0] or die "utime: $!"' "$f"
