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
};

/*
 * Starts the shmbusd next to this program and waits (bounded) until it
 * accepts a connection. Returns 0, or a negative errno with the reason on
 * stderr (then nothing is left running or on disk).
 */
int bench_broker_start(struct bench_broker *b);

/* SIGTERM by pid, wait (bounded, then SIGKILL), remove the directory. */
void bench_broker_stop(struct bench_broker *b);

#endif
