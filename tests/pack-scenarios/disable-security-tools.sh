#!/bin/sh
# T1562.001, after Atomic Red Team "Disable syslog" and kernel hardening tampering: auditd and
# rsyslog disabled (under an empty alternate root, so nothing real changes) and kptr_restrict
# rewritten (with its current value).
set -e
r=$(mktemp -d)
systemctl --root="$r" disable auditd.service > /dev/null 2>&1 || true
systemctl --root="$r" mask rsyslog.service > /dev/null 2>&1 || true
rm -rf "$r"
v=$(cat /proc/sys/kernel/kptr_restrict)
sysctl -q -w kernel.kptr_restrict="$v"
