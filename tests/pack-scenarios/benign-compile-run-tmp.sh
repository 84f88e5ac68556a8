#!/bin/sh
# Benign: a small C project built with make under /tmp, its test binary run, a shared library
# linked with an rpath, and the tree cleaned.
set -e
d=$(mktemp -d)
cd "$d"
printf 'int add(int a, int b) { return a + b; }\n' > lib.c
printf 'int add(int, int);\nint main(void) { return add(2, 2) == 4 ? 0 : 1; }\n' > main.c
printf 'all: t\nlibadd.so: lib.c\n\tcc -shared -fPIC -o $@ $<\nt: main.c libadd.so\n\tcc -o $@ main.c -L. -ladd -Wl,-rpath,$(CURDIR)\nclean:\n\trm -f t libadd.so\n' > Makefile
make -s
./t
make -s clean
cd /
rm -rf "$d"
