/* openclose N PATH: open(PATH, O_RDONLY) and close it N times in a loop.
 * The cheapest file event there is; with no rule watching PATH, an agent should cost nothing
 * here beyond the kernel's own hook tax. */
#include "common.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: openclose N PATH\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	const char *path = argv[2];
	double start = now_seconds();
	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die(path);
		close(fd);
	}
	double seconds = now_seconds() - start;
	printf("{\"seconds\": %.6f, \"ops\": %ld}\n", seconds, n);
	return 0;
}
