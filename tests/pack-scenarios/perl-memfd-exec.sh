#!/bin/sh
# T1620: fileless execution with perl: memfd_create, copy a binary in, exec /proc/self/fd/N
# (the technique of in-memory loaders such as those in Perl-based bots).
set -e
perl -e '
my $name = "kworker";
my $fd = syscall(319, $name, 1);           # memfd_create(name, MFD_CLOEXEC)
die "memfd_create: $!" if $fd < 0;
use IO::Handle;
open(my $out, ">&=", $fd) or die;
$out->autoflush(1);
open(my $in, "<", "/bin/true") or die;
binmode $in; binmode $out;
my $data = do { local $/; <$in> }; print {$out} $data; close $in;
my $pid = fork();
if ($pid == 0) { exec {"/proc/self/fd/$fd"} "true"; exit 127; }
waitpid($pid, 0);
'
