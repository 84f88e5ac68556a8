#!/bin/sh
# T1548.003, after Atomic Red Team "Unlimited sudo cache timeout" and "Disable tty_tickets for
# sudo caching": /etc/sudoers edited in place with sed -i, then restored.
set -e
f=/etc/sudoers
b=/root/.scn-sudoers.$$
if [ -e "$f" ]; then cp -p "$f" "$b"; else printf 'root ALL=(ALL:ALL) ALL\n' > "$b.new"; chmod 440 "$b.new"; mv "$b.new" "$f"; fi
sed -i '$ a Defaults !tty_tickets' "$f"
if [ -e "$b" ]; then mv "$b" "$f"; else rm -f "$f"; fi
