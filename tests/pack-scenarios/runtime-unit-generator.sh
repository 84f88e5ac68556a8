#!/bin/sh
# T1543.002: a service unit dropped into the runtime unit directory (/run/systemd/system, read by
# the running manager and gone at reboot) and a systemd generator (run by systemd at every boot
# to write units). Both removed.
set -e
mkdir -p /run/systemd/system
u=/run/systemd/system/scn-$$.service
printf '[Service]\nExecStart=/tmp/.payload\n' > "$u"
rm -f "$u"
g=/etc/systemd/system-generators
created=; [ -d "$g" ] || { mkdir -p "$g"; created=1; }
printf '#!/bin/sh\nexit 0\n' > "$g/scn-$$"
rm -f "$g/scn-$$"
[ -z "$created" ] || rmdir "$g"
