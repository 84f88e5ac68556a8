/* forkexec N BINARY: fork, exec BINARY (no arguments) in the child, wait for it; N times in a
 * row. Each iteration is one process_fork, process_exec and process_exit for an agent. */
#include "common.h"
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: forkexec N BINARY\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	char *const child_argv[] = {argv[2], NULL};
	char *const child_env[] = {NULL};
	double start = now_seconds();
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			execve(argv[2], child_argv, child_env);
			_exit(127);
		}
		int status = 0;
		if (waitpid(pid, &status, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "%s did not exit 0 (status 0x%x)\n", argv[2], status);
			return 1;
		}
	}
	double seconds = now_seconds() - start;
	printf("{\"seconds\": %.6f, \"ops\": %ld}\n", seconds, n);
	return 0;
}
