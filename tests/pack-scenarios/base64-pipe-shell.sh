#!/bin/sh
# T1027, after Atomic Red Team "Decode base64 Data into Script": the command arrives encoded and
# is decoded straight into a shell.
set -e
sh -c 'echo ZWNobyBoZWxsbyBmcm9tIGEgZGVjb2RlZCBwYXlsb2FkID4gL2Rldi9udWxs | base64 -d | sh'
