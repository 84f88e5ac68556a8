#!/bin/sh
# T1574.006: a program started with LD_AUDIT (a linker audit library sees every symbol bind),
# and a linker search path drop-in in /etc/ld.so.conf.d. Both removed.
set -e
lib=$(mktemp /tmp/.la.XXXXXX)
LD_AUDIT="$lib" /bin/true 2>/dev/null || true
rm -f "$lib"
echo '/var/tmp/.lib' > /etc/ld.so.conf.d/zz-scn-$$.conf
rm -f /etc/ld.so.conf.d/zz-scn-$$.conf
