#!/bin/sh
# T1136.001, after Atomic Red Team "Create a user account on a Linux system": a system account
# with a login shell, then removed.
set -e
u=scn$$
useradd -M -N -r -s /bin/bash -c "evil account" "$u"
userdel "$u"
