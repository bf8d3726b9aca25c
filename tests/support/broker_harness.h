/*
 * broker_harness.h - starts a real shmbusd for integration tests: in a fresh
 * temporary directory, on its own socket, with an optional config file, and
 * stops it again. The binary comes from $SHMBUS_TEST_BINDIR (the Makefile
 * points it at the variant under test, so the ASan pass tests an ASan
 * broker).
 */
#ifndef SB_BROKER_HARNESS_H
#define SB_BROKER_HARNESS_H

#include <sys/types.h>

struct sbt_broker {
	pid_t pid;
	char *dir;	  /* the temporary directory (owned) */
	char socket[256]; /* dir/shmbusd.sock */
	char config[256]; /* dir/shmbusd.json, or "" */
	char log[256];	  /* dir/shmbusd.log: the broker's stderr */
	/* A resource limit the broker starts under (setrlimit in the child
	 * before exec), set by sbt_broker_start_rlimit(); 0: none. */
	int rlimit_resource;
	unsigned long rlimit_value;
	/* The uid and gid the broker runs as (set in the child after the
	 * limit, before exec), by sbt_broker_start_as(); 0: the caller's. */
	uid_t run_uid;
	gid_t run_gid;
};

/*
 * Writes `config_json` (NULL: no config file) to dir/shmbusd.json and starts
 * shmbusd --foreground --socket dir/shmbusd.sock [--config ...] plus
 * `extra_args` (NULL-terminated, may be NULL), with stderr to dir/shmbusd.log.
 * Waits (bounded, 10 s) until the socket accepts connections. Returns 0, or
 * the broker's exit status as a negative number if it exited instead.
 */
int sbt_broker_start(struct sbt_broker *b, const char *config_json,
		     const char *const *extra_args);

/* Like sbt_broker_start() in an existing directory (b->dir set, e.g. to
 * restart a broker on the same socket); does not create or remove it. */
int sbt_broker_start_in(struct sbt_broker *b, const char *config_json,
			const char *const *extra_args);

/* Like sbt_broker_start() with the broker's `resource` limit (soft and
 * hard) set to `value`, e.g. RLIMIT_NOFILE to test running out of
 * descriptors, RLIMIT_FSIZE to refuse big topics. Restarts with
 * sbt_broker_start_in() keep the limit. */
int sbt_broker_start_rlimit(struct sbt_broker *b, const char *config_json,
			    const char *const *extra_args, int resource,
			    unsigned long value);

/* Like sbt_broker_start_rlimit() with the broker running as `uid`/`gid`
 * (no supplementary groups), in a directory given to that uid (mode 0755,
 * so that peers of other uids reach a socket of mode 0666). The kernel
 * exempts root from some per-user limits, such as that on descriptors in
 * flight over sockets: tests of those run the broker as another uid.
 * `value` 0 sets no limit. */
int sbt_broker_start_as(struct sbt_broker *b, const char *config_json,
			const char *const *extra_args, uid_t uid, gid_t gid,
			int resource, unsigned long value);

/* Sends `sig` and waits for the broker to exit (bounded, 10 s, then
 * SIGKILL). Returns its exit status, or -signal. */
int sbt_broker_signal_wait(struct sbt_broker *b, int sig);

/* SIGTERM, wait, and remove the directory. Returns the exit status. */
int sbt_broker_stop(struct sbt_broker *b);

/* 1 when the broker's log contains `text`. */
int sbt_broker_log_contains(const struct sbt_broker *b, const char *text);

/* Waits (bounded, 10 s) until the broker's log contains `text`: a line
 * logged around start-up may land just after the socket accepts. Returns 1
 * when it appeared, 0 otherwise. */
int sbt_broker_log_wait(const struct sbt_broker *b, const char *text);

/* Runs shmbusd with `argv` (argv[0] ignored) to completion, stderr captured
 * into `err` (NUL-terminated, truncated to errlen). Returns the exit status
 * or -signal. For start-up failures such as bad config files. */
int sbt_run_shmbusd(const char *const *argv, char *err, size_t errlen);

/*
 * For Check tests (these assert): sbt_broker_start() that must succeed,
 * and the same with the directory opened to every uid (mode 0755), so
 * that peers of other uids reach the socket and only the broker's rules
 * refuse them.
 */
void sbt_broker_up(struct sbt_broker *b, const char *config_json);
void sbt_broker_up_shared(struct sbt_broker *b, const char *config_json);

#endif
