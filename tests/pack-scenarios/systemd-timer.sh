#!/bin/sh
# T1053.006, after Atomic Red Team "Create Systemd Service and Timer" and "Create a system level
# transient systemd service and timer": a .timer unit file, and systemd-run --on-calendar.
set -e
u=/etc/systemd/system/scn-$$.timer
mkdir -p /etc/systemd/system
printf '[Timer]\nOnCalendar=*:0/5\nUnit=scn-%s.service\n[Install]\nWantedBy=timers.target\n' $$ > "$u"
rm -f "$u"
systemd-run --unit="scn-$$" --on-calendar='*:0/5' /bin/true > /dev/null 2>&1 || true
