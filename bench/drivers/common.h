/* Shared helpers of the benchmark workload drivers (bench/drivers/, one .c each).
 *
 * The drivers are small static C programs so that their own overhead is tiny and stable: the
 * suite (bench/bench.py) compiles them with gcc at run time and times what they report. Every
 * driver prints one JSON object on stdout at the end; "seconds" is the time of the measured loop
 * alone (CLOCK_MONOTONIC), without the driver's own start-up. */
#ifndef SHRIKE_BENCH_COMMON_H
#define SHRIKE_BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline long parse_count(const char *text, const char *what)
{
	char *end = NULL;
	long value = strtol(text, &end, 10);
	if (!end || *end != '\0' || value <= 0) {
		fprintf(stderr, "%s must be a positive integer, got '%s'\n", what, text);
		exit(2);
	}
	return value;
}

static inline void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(1);
}

#endif
