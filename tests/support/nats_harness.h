/*
 * nats_harness.h - a real nats-server and real shmbus-bridge processes for
 * the bridge's tests. The server listens on a free loopback port in a
 * temporary directory and can be killed and started again on the same
 * port; the bridge comes from $SHMBUS_TEST_BINDIR, with its stderr in a
 * log file the test can wait on. They assert nothing.
 */
#ifndef SB_NATS_HARNESS_H
#define SB_NATS_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

struct sbt_nats {
	pid_t pid;     /* 0 while not running */
	char *dir;     /* the temporary directory (owned) */
	int port;      /* chosen at the first start, kept on restarts */
	char url[64];  /* nats://127.0.0.1:PORT */
	char log[256]; /* dir/nats.log: the server's output */
	const char *const *args; /* extra nats-server arguments, or NULL */
};

/*
 * Starts nats-server -a 127.0.0.1 -p PORT plus `extra_args` (NULL-terminated,
 * kept for restarts; may be NULL), on a free port the first time and the
 * same one after. Waits (bounded, 10 s) until the port accepts. 0, or -1
 * if the server did not come up (its log says why).
 */
int sbt_nats_start(struct sbt_nats *n, const char *const *extra_args);

/* Starts it again after sbt_nats_kill(), on the same port. */
int sbt_nats_restart(struct sbt_nats *n);

/* SIGKILL and reap (a server that dies, not one that shuts down). */
void sbt_nats_kill(struct sbt_nats *n);

/* Kills the server if running and removes its directory. */
void sbt_nats_stop(struct sbt_nats *n);

struct sbt_bridge {
	pid_t pid;
	char log[256]; /* the bridge's stderr */
};

/*
 * Starts `shmbus-bridge` with `args` (NULL-terminated, without argv[0]),
 * its stderr to `dir`/bridge-<n>.log (n counts the bridges started). Does
 * not wait for anything: see sbt_bridge_log_wait().
 */
int sbt_bridge_start(struct sbt_bridge *b, const char *dir,
		     const char *const *args);

/* Waits (bounded: `ms`) until the bridge's log contains `text`. 1 when it
 * does, 0 otherwise. */
int sbt_bridge_log_wait(const struct sbt_bridge *b, const char *text, int ms);

/* The number of times `text` is in the bridge's log. */
int sbt_bridge_log_count(const struct sbt_bridge *b, const char *text);

/* Sends `sig` and waits (bounded, 20 s, then SIGKILL) for the exit. The
 * exit status, or -signal. */
int sbt_bridge_signal_wait(struct sbt_bridge *b, int sig);

/* Runs shmbus-bridge with `args` to completion (bounded: `ms`, then
 * SIGKILL), stderr into `err`. The exit status, or -signal. */
int sbt_bridge_run(const char *const *args, char *err, size_t errlen, int ms);

#endif
