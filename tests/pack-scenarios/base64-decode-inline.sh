#!/bin/sh
# T1140, after Atomic Red Team "Base64 decoding with shell utilities": an encoded message
# written on the command line and decoded there.
set -e
sh -c 'echo SGVsbG8gZnJvbSBBdG9taWMgUmVkIFRlYW0sIHQxMTQwCg== | base64 -d > /dev/null'
