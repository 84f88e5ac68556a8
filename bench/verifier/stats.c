// SPDX-License-Identifier: Apache-2.0
/*
 * verifier-stats OBJECT [PROGRAM...]: loads each program of a BPF object on its own (the
 * object opened afresh with only that program autoloaded) with the verifier's statistics
 * (log level 4) and prints one line per program: the kernel's verification time, the
 * instructions it processed (its limit is 1,000,000) and its peak states — or why the kernel
 * refused the program. What start-up time the agent spends in the verifier, program by
 * program, and how close each program is to the limit on this kernel. Built and run by
 * bench/verifier/stats.sh.
 */
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_BYTES (4u << 20)

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return 0;
}

/* The program names of `path`, or NULL if it does not open. */
static char **program_names(const char *path, int *count)
{
	struct bpf_object *obj = bpf_object__open(path);
	struct bpf_program *p;
	char **names = NULL;
	int n = 0;

	if (!obj)
		return NULL;
	bpf_object__for_each_program(p, obj) {
		names = realloc(names, sizeof(*names) * (n + 1));
		names[n++] = strdup(bpf_program__name(p));
	}
	bpf_object__close(obj);
	*count = n;
	return names;
}

static void measure(const char *path, const char *name, char *log)
{
	struct bpf_object *obj = bpf_object__open(path);
	struct bpf_program *p;
	char *line, *end;
	int err;

	if (!obj) {
		printf("%-28s open failed\n", name);
		return;
	}
	bpf_object__for_each_program(p, obj) {
		int mine = !strcmp(bpf_program__name(p), name);

		bpf_program__set_autoload(p, mine);
		if (mine) {
			log[0] = 0;
			bpf_program__set_log_level(p, 4);
			bpf_program__set_log_buf(p, log, LOG_BYTES);
		}
	}
	err = bpf_object__load(obj);
	if (err) {
		printf("%-28s refused: %s\n", name, strerror(-err));
	} else {
		line = strstr(log, "verification time");
		long us = line ? atol(line + strlen("verification time")) : -1;

		line = strstr(log, "processed");
		if (line && (end = strchr(line, '\n')))
			*end = 0;
		printf("%-28s %9.1f ms  %s\n", name, us / 1000.0, line ? line : "(no statistics)");
	}
	bpf_object__close(obj);
}

int main(int argc, char **argv)
{
	char *log = malloc(LOG_BYTES);
	char **names;
	int count = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s OBJECT [PROGRAM...]\n", argv[0]);
		return 2;
	}
	libbpf_set_print(quiet);
	if (argc > 2) {
		names = argv + 2;
		count = argc - 2;
	} else if (!(names = program_names(argv[1], &count))) {
		fprintf(stderr, "%s: cannot open %s\n", argv[0], argv[1]);
		return 1;
	}
	for (int i = 0; i < count; i++)
		measure(argv[1], names[i], log);
	return 0;
}
