/* ramp MODE RATE SECONDS WORKERS [PATH]: make events at RATE operations per second (in total,
 * across WORKERS processes) for SECONDS.
 *   fork: create a process that exits at once (a process_fork and a process_exit for an agent:
 *         the cheapest process events there are);
 *   open: open(PATH) and close it (a file_open when the agent watches PATH).
 * When the machine cannot keep up, the workers go as fast as they can and the achieved rate
 * says so. */
#include "common.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *open_path;

static void one_op(void)
{
	if (open_path) {
		int fd = open(open_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die(open_path);
		close(fd);
		return;
	}
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		_exit(0);
	if (waitpid(pid, NULL, 0) < 0)
		die("waitpid");
}

static long worker(double rate, double seconds)
{
	double start = now_seconds();
	double deadline = start + seconds;
	long done = 0;
	for (;;) {
		double t = now_seconds();
		if (t >= deadline)
			break;
		double due_at = start + (double)done / rate;
		if (t < due_at) {
			double wait = due_at - t;
			struct timespec ts = {.tv_sec = (time_t)wait,
					      .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
			nanosleep(&ts, NULL);
			continue;
		}
		one_op();
		done++;
	}
	return done;
}

int main(int argc, char **argv)
{
	if (argc < 5 || argc > 6 || (strcmp(argv[1], "fork") != 0 && strcmp(argv[1], "open") != 0) ||
	    (strcmp(argv[1], "open") == 0) != (argc == 6)) {
		fprintf(stderr, "usage: ramp fork RATE SECONDS WORKERS | ramp open RATE SECONDS WORKERS PATH\n");
		return 2;
	}
	if (argc == 6)
		open_path = argv[5];
	long rate = parse_count(argv[2], "RATE");
	double seconds = strtod(argv[3], NULL);
	long workers = parse_count(argv[4], "WORKERS");
	if (seconds <= 0) {
		fprintf(stderr, "SECONDS must be positive\n");
		return 2;
	}
	int fds[2];
	if (pipe(fds) < 0)
		die("pipe");
	double start = now_seconds();
	for (long w = 0; w < workers; w++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			close(fds[0]);
			long done = worker((double)rate / (double)workers, seconds);
			if (write(fds[1], &done, sizeof(done)) != sizeof(done))
				_exit(1);
			_exit(0);
		}
	}
	close(fds[1]);
	long total = 0, part = 0;
	while (read(fds[0], &part, sizeof(part)) == sizeof(part))
		total += part;
	while (wait(NULL) > 0)
		;
	double elapsed = now_seconds() - start;
	printf("{\"seconds\": %.6f, \"ops\": %ld, \"requested_rate\": %ld, \"rate\": %.1f}\n",
	       elapsed, total, rate, (double)total / elapsed);
	return 0;
}
