#!/bin/sh
# T1055.008 without ptrace: process_vm_writev(2) writes into another process's memory with no
# attach and no stop (perl's syscall() here, the x86_64 number 311): eight bytes at the low,
# unused end of the victim's stack mapping.
set -e
sleep 30 &
victim=$!
sleep 0.2
perl -e '
my $pid = shift() + 0;   # a number: syscall() passes strings as pointers
open(my $m, "<", "/proc/$pid/maps") or die;
my ($addr) = map { /^([0-9a-f]+)-[0-9a-f]+ rw.p .*\[stack\]/ ? hex($1) : () } <$m>;
my $payload = "\x90" x 8;
my $local = pack("QQ", unpack("Q", pack("P", $payload)), 8);
my $remote = pack("QQ", $addr, 8);
my $n = syscall(311, $pid, $local, 1, $remote, 1, 0);
print "wrote $n bytes\n";
' "$victim"
kill "$victim" 2>/dev/null || true
