/* storm TOTAL BURSTS GAP_MS: TOTAL processes in BURSTS bursts. In a burst, one process forks
 * TOTAL/BURSTS children as fast as it can, each child execs this same binary ("storm child",
 * which exits at once), then the burst is reaped and the next one starts after GAP_MS.
 * Every event of the storm names this binary, so the suite can count exactly which of the
 * storm's events an agent delivered. */
#include "common.h"
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "child") == 0)
		return 0;
	if (argc != 4) {
		fprintf(stderr, "usage: storm TOTAL BURSTS GAP_MS\n");
		return 2;
	}
	long total = parse_count(argv[1], "TOTAL");
	long bursts = parse_count(argv[2], "BURSTS");
	long gap_ms = strtol(argv[3], NULL, 10);
	char self[4096];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0)
		die("readlink /proc/self/exe");
	self[len] = '\0';
	char *const child_argv[] = {self, "child", NULL};
	char *const child_env[] = {NULL};
	long per_burst = total / bursts, started = 0, failed = 0;
	double start = now_seconds();
	for (long b = 0; b < bursts; b++) {
		long live = 0;
		for (long i = 0; i < per_burst; i++) {
			pid_t pid = fork();
			if (pid < 0) {
				/* Out of pids or memory: reap what we have and go on. */
				if (errno != EAGAIN)
					die("fork");
				while (live > 0 && wait(NULL) > 0)
					live--;
				failed++;
				continue;
			}
			if (pid == 0) {
				execve(self, child_argv, child_env);
				_exit(127);
			}
			live++;
			started++;
		}
		while (wait(NULL) > 0)
			;
		if (gap_ms > 0 && b + 1 < bursts) {
			struct timespec gap = {.tv_sec = gap_ms / 1000, .tv_nsec = (gap_ms % 1000) * 1000000L};
			nanosleep(&gap, NULL);
		}
	}
	double seconds = now_seconds() - start;
	printf("{\"seconds\": %.6f, \"ops\": %ld, \"fork_failures\": %ld, \"binary\": \"%s\"}\n",
	       seconds, started, failed, self);
	return 0;
}
