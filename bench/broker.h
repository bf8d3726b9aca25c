/*
 * broker.h - a shmbusd started for one run of the benchmark (broker.c).
 */
#ifndef SHMBUS_BENCH_BROKER_H
#define SHMBUS_BENCH_BROKER_H

#include <limits.h>
#include <sys/types.h>

struct bench_broker {
	pid_t pid;
	char dir[PATH_MAX - 32];
	char socket[PATH_MAX];
	char log[PATH_MAX];
	char config[PATH_MAX]; /* "" when started without one */
};

/*
 * Starts the shmbusd next to this program, with `config` (a JSON text, or
 * NULL for none) as its configuration file, and waits (bounded) until it
 * accepts a connection. Returns 0, or a negative errno with the reason on
 * stderr (then nothing is left running or on disk).
 */
int bench_broker_start(struct bench_broker *b, const char *config);

/* SIGTERM by pid, wait (bounded, then SIGKILL), remove the directory. */
void bench_broker_stop(struct bench_broker *b);

#endif
