/* getppid N: the getppid system call N times in a loop.
 * The cheapest system call there is, and one no agent watches: what an agent costs every
 * other system call of the machine (the syscall-tracepoint tax, or a program run on all). */
#include "common.h"
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: getppid N\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	double start = now_seconds();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid); /* not getppid(): no libc caching, always a syscall */
	double seconds = now_seconds() - start;
	printf("{\"seconds\": %.6f, \"ops\": %ld}\n", seconds, n);
	return 0;
}
