#!/bin/sh
# T1055.008: ptrace injection the linux-inject way, with perl's syscall(): seize a process,
# interrupt it, read a word of its stack and write the same word back with PTRACE_POKEDATA.
set -e
sleep 30 &
victim=$!
sleep 0.2
perl -e '
my $pid = shift;
open(my $m, "<", "/proc/$pid/maps") or die;
my ($addr) = map { /^([0-9a-f]+)-[0-9a-f]+ rw.p .*\[stack\]/ ? hex($1) : () } <$m>;
syscall(101, 0x4206, $pid, 0, 0);          # PTRACE_SEIZE
syscall(101, 0x4207, $pid, 0, 0);          # PTRACE_INTERRUPT
waitpid($pid, 0x40000000);                 # __WALL
my $word = "\0" x 8;
syscall(101, 2, $pid, $addr, unpack("Q", pack("P", $word)));   # PTRACE_PEEKDATA
syscall(101, 5, $pid, $addr, unpack("Q", $word));              # PTRACE_POKEDATA
syscall(101, 17, $pid, 0, 0);              # PTRACE_DETACH
' "$victim"
kill "$victim" 2>/dev/null || true
