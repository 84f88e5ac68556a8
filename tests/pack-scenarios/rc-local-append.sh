#!/bin/sh
# T1037.004, after Atomic Red Team "rc.local": append a command to /etc/rc.local, then restore.
set -e
f=/etc/rc.local
if [ -e "$f" ]; then cp -p "$f" "/root/.scn-rc.$$"; fi
printf '#!/bin/sh\n# scenario: /tmp/.payload &\nexit 0\n' >> "$f"
if [ -e "/root/.scn-rc.$$" ]; then mv "/root/.scn-rc.$$" "$f"; else rm -f "$f"; fi
