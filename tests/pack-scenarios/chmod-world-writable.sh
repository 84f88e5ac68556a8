#!/bin/sh
# T1222.002, after Atomic Red Team "chmod - Change file or folder mode (symbolic mode)" (a+w)
# and "(numeric mode) recursively" (777), on a scratch tree of an application's data under /srv.
set -e
d=/srv/scn-app-$$
mkdir -p "$d"
echo x > "$d/app.conf"
chmod a+w "$d/app.conf"
chmod -R 777 "$d"
rm -rf "$d"
