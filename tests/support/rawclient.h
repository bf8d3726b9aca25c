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

#include "ring/ring.h"

/* Descriptors one reply may bring (a request/reply channel's five). */
#define SBT_RC_MAX_FDS 5

struct sbt_rc {
	int fd;
	cJSON *reply;		 /* the last reply, owned */
	int fds[SBT_RC_MAX_FDS]; /* descriptors that came with it, owned */
	int nfds;
};

/* Connects to `path` with a receive timeout of `timeout_ms` (0: none).
 * Returns 0 or -errno. */
int sbt_rc_connect(struct sbt_rc *c, const char *path, int timeout_ms);

/* Connects and says hello as `name`. Returns 0, -errno, or the hello's
 * error code. */
int sbt_rc_hello(struct sbt_rc *c, const char *path, const char *name);

/* Connects and says hello (no name), for peers the broker may refuse: a
 * refusal that closes the connection before the hello arrives is still
 * read. Returns the hello's error code (0: admitted) or -errno. */
int sbt_rc_hello_or_refusal(struct sbt_rc *c, const char *path);

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

/* The last reply's error message, or "(no error)". */
const char *sbt_rc_message(const struct sbt_rc *c);

/* The last reply's "result" object, or NULL. */
const cJSON *sbt_rc_result(const struct sbt_rc *c);

/* An integer at `path` ("stats.blocked_writers", "topic.publishers") under
 * the last reply's result, or `dflt` when missing. */
int64_t sbt_rc_int(const struct sbt_rc *c, const char *path, int64_t dflt);

/*
 * A topic mapped from the last reply of a pub_open or sub_open, as the
 * client library maps it: data (read-write for a publisher), control, and
 * a subscriber's slot segment read-write; a publisher's ring gets a map of
 * the slot segments that it refreshes over `rc` (op slots), so `rc` must
 * not be in use by another thread while the publisher may reclaim.
 */
struct sbt_rc_topic {
	struct sbt_rc *rc;
	int64_t handle;
	void *data, *ctl;
	uint64_t data_size, ctl_size;
	struct sb_ring_slot *slot; /* a subscriber's, else NULL */
	uint32_t slot_index;
	struct sb_ring ring;
	struct sb_ring_slot_map map; /* a publisher's */
	int refreshes;		     /* how many times the map was refreshed */
};

/* Maps the last reply's grant into *t. Returns 0 or -errno. */
int sbt_rc_map_topic(struct sbt_rc *c, int writable, struct sbt_rc_topic *t);

/* Opens a reader on a subscriber's topic in its own slot segment. */
int sbt_rc_topic_reader(struct sbt_rc_topic *t, int start,
			struct sb_ring_reader *rd);

/* Unmaps everything sbt_rc_map_topic() mapped. */
void sbt_rc_unmap_topic(struct sbt_rc_topic *t);

#endif
