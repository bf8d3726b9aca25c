/*
 * rawclient.h - a minimal control-protocol client for tests that must speak
 * the wire directly (half frames, floods, other uids, topic_stat): one
 * blocking socket with a receive timeout, frames out, replies and their
 * descriptors in. It asserts nothing, so forked children and the
 * crash-matrix program can use it as well as Check tests.
 */
#ifndef SB_TESTS_RAWCLIENT_H
#define SB_TESTS_RAWCLIENT_H

#include <stdint.h>

#include <cJSON.h>

struct sbt_rc {
	int fd;
	cJSON *reply; /* the last reply, owned */
	int fds[4];   /* descriptors that came with it, owned */
	int nfds;
};

/* Connects to `path` with a receive timeout of `timeout_ms` (0: none).
 * Returns 0 or -errno. */
int sbt_rc_connect(struct sbt_rc *c, const char *path, int timeout_ms);

/* Connects and says hello as `name`. Returns 0, -errno, or the hello's
 * error code. */
int sbt_rc_hello(struct sbt_rc *c, const char *path, const char *name);

/* Closes the socket and frees the reply and its descriptors. */
void sbt_rc_close(struct sbt_rc *c);

/* Sends `len` raw bytes. Returns 0 or -errno. */
int sbt_rc_send_raw(struct sbt_rc *c, const void *buf, size_t len);

/* Sends one frame holding the JSON text `json`. Returns 0 or -errno. */
int sbt_rc_send(struct sbt_rc *c, const char *json);

/* Sends one frame holding `json` with `nfds` descriptors (SCM_RIGHTS on
 * its first byte), as topic_adopt needs. Returns 0 or -errno. */
int sbt_rc_send_fds(struct sbt_rc *c, const char *json, const int *fds,
		    int nfds);

/* Reads one reply. Returns 0, -ECONNRESET (closed), -EAGAIN (timeout),
 * -EBADMSG (not JSON) or -errno. */
int sbt_rc_recv(struct sbt_rc *c);

/* Sends a request (printf format of JSON text), reads its reply, and
 * returns the reply's error code (negative errno) or 0, or the -errno of
 * the exchange. */
__attribute__((format(printf, 2, 3))) int sbt_rc_call(struct sbt_rc *c,
						      const char *fmt, ...);

/* The last reply's error code as a negative errno, or 0. */
int sbt_rc_code(const struct sbt_rc *c);

/* The last reply's "result" object, or NULL. */
const cJSON *sbt_rc_result(const struct sbt_rc *c);

/* An integer at `path` ("stats.blocked_writers", "topic.publishers") under
 * the last reply's result, or `dflt` when missing. */
int64_t sbt_rc_int(const struct sbt_rc *c, const char *path, int64_t dflt);

#endif
