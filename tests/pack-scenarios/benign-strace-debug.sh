#!/bin/sh
# Benign: a developer tracing a program of their own with strace and gdb in batch mode.
set -e
strace -f -o /dev/null /bin/true
gdb -q -batch -ex run -ex bt /bin/true > /dev/null 2>&1 || true
