/* tcp N: N TCP connect/accept pairs on loopback, one after the other, in one thread.
 * A listener on 127.0.0.1 (ephemeral port); each iteration connects, accepts, and closes both
 * ends. The client closes with SO_LINGER {1, 0} (a reset), so no TIME_WAIT sockets pile up and
 * ephemeral ports never run out, whatever the round count. */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: tcp N\n");
		return 2;
	}
	long n = parse_count(argv[1], "N");
	int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0)
		die("socket");
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("bind 127.0.0.1");
	if (listen(listener, 128) < 0)
		die("listen");
	socklen_t len = sizeof(addr);
	if (getsockname(listener, (struct sockaddr *)&addr, &len) < 0)
		die("getsockname");
	struct linger reset = {.l_onoff = 1, .l_linger = 0};

	double start = now_seconds();
	for (long i = 0; i < n; i++) {
		int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (client < 0)
			die("socket");
		if (connect(client, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			die("connect 127.0.0.1");
		int server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (server < 0)
			die("accept");
		if (setsockopt(client, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)) < 0)
			die("setsockopt SO_LINGER");
		close(client);
		close(server);
	}
	double seconds = now_seconds() - start;
	close(listener);
	printf("{\"seconds\": %.6f, \"ops\": %ld}\n", seconds, n);
	return 0;
}
