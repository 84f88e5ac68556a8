/* sleepers N: keep N processes alive (each blocked in pause()) until stdin closes or SIGTERM.
 * Prints {"ready": N, ...} once all N exist, then waits; on the way out it kills and reaps every
 * child itself. Each child also has PR_SET_PDEATHSIG(SIGKILL), so none outlives this process
 * even if it is killed. Static and tiny, so 100,000 children cost the kernel little. */
#include "common.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: sleepers N\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	pid_t *pids = calloc((size_t)n, sizeof(pid_t));
	if (!pids)
		die("calloc");
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	pid_t self = getpid();
	/* Each child writes a byte once it is about to sleep; the parent waits for a batch of them
	 * before forking more. Without this, children that have not yet run pile up on the run
	 * queue, the parent gets an ever smaller share of the CPU and creating 100,000 takes
	 * minutes instead of seconds. */
	int ack[2];
	if (pipe(ack) < 0)
		die("pipe");
	const long batch = 256;
	long made = 0;
	int rc = 0;
	double start = now_seconds();
	for (; made < n && !stop; made++) {
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "fork failed after %ld children: %s\n", made, strerror(errno));
			rc = 1;
			break;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != self)
				_exit(0);
			close(ack[0]);
			char one = 1;
			if (write(ack[1], &one, 1) != 1)
				_exit(1);
			close(ack[1]);
			for (;;)
				pause();
		}
		pids[made] = pid;
		if ((made + 1) % batch == 0 || made + 1 == n) {
			long want = (made % batch) + 1;
			char buf[256];
			while (want > 0) {
				ssize_t got = read(ack[0], buf, (size_t)want);
				if (got <= 0) {
					if (got < 0 && errno == EINTR && !stop)
						continue;
					break;
				}
				want -= got;
			}
		}
	}
	close(ack[0]);
	close(ack[1]);
	double seconds = now_seconds() - start;
	if (rc == 0 && !stop) {
		printf("{\"ready\": %ld, \"seconds\": %.6f}\n", made, seconds);
		fflush(stdout);
		char buf[64];
		while (!stop && read(0, buf, sizeof(buf)) > 0)
			;
	}
	for (long i = 0; i < made; i++)
		kill(pids[i], SIGKILL);
	long reaped = 0;
	while (wait(NULL) > 0)
		reaped++;
	printf("{\"reaped\": %ld}\n", reaped);
	return rc;
}
