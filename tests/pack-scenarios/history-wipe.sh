#!/bin/sh
# T1070.003, after Atomic Red Team "Clear Bash history (ln dev/null)" and "Clear history of a
# bunch of shells": a user's history files emptied by a script and linked to /dev/null.
set -e
h=$(mktemp -d /home/scn.XXXXXX)
echo 'mysql -u root -pS3cret' > "$h/.bash_history"
echo 'ssh admin@10.0.0.5' > "$h/.zsh_history"
sh -c ": > $h/.zsh_history"
ln -sf /dev/null "$h/.bash_history"
rm -rf "$h"
