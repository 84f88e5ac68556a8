#!/bin/sh
# T1036.004: processes started under a kernel worker's name and under a daemon's name
# (`exec -a`), as cryptominers and implants do to hide in ps output.
set -e
bash -c '(exec -a "[kworker/0:2-events]" sleep 0); (exec -a sshd sleep 0)'
