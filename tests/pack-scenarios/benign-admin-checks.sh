#!/bin/sh
# Benign: an admin's health check as root: services, sockets, disks, memory, users, kernel.
set -e
systemctl list-units --type=service > /dev/null 2>&1 || true
ss -tlnp > /dev/null 2>&1 || true
df -h > /dev/null; free -m > /dev/null; uptime > /dev/null
id > /dev/null; whoami > /dev/null; uname -a > /dev/null; hostname > /dev/null
ps aux > /dev/null; w > /dev/null 2>&1 || true; last -n 5 > /dev/null 2>&1 || true
ip addr > /dev/null; getent passwd root > /dev/null
