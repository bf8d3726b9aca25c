/*
 * bus.c - the public bus API (shmbus.h) over the connection (conn.c) and
 * the topic ring (ring/ring.c): topics are created and opened by name
 * through the broker, then publishers and subscribers work on the mapped
 * ring alone, so the data path never touches the socket and survives the
 * broker (opening a topic's segments is topic_open.c's). Also the pollable
 * descriptor of a subscriber and its watcher thread.
 */
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/bus_internal.h"
#include "client/metadata.h"
#include "client/slots.h"
#include "client/topic_open.h"
#include "sys/barrier.h"
#include "sys/deadline.h"
#include "sys/futex.h"
#include "sys/identity.h"
#include "ring/ring.h"
#include "wire/names.h"
#include "wire/topic_name.h"

/* One numbering of modes and policies: the public API's, the protocol's
 * (wire/names.h) and the ring header's are the same, so each conversion
 * between them is a cast. */
static_assert(SB_MODE_BROADCAST == SHMBUS_BROADCAST &&
		  SB_MODE_BROADCAST == SB_RING_BROADCAST &&
		  SB_MODE_QUEUE == SHMBUS_QUEUE &&
		  SB_MODE_QUEUE == SB_RING_QUEUE,
	      "mode numbering");
static_assert(SB_OVERFLOW_BLOCK == SHMBUS_BLOCK &&
		  SB_OVERFLOW_BLOCK == SB_RING_BLOCK &&
		  SB_OVERFLOW_OVERWRITE == SHMBUS_OVERWRITE &&
		  SB_OVERFLOW_OVERWRITE == SB_RING_OVERWRITE &&
		  SB_OVERFLOW_REJECT == SHMBUS_REJECT &&
		  SB_OVERFLOW_REJECT == SB_RING_REJECT,
	      "overflow numbering");

/* The public enums are the ring's values; the mapping below relies on it. */
static_assert(SHMBUS_BROADCAST == SB_RING_BROADCAST, "");
static_assert(SHMBUS_QUEUE == SB_RING_QUEUE, "");
static_assert(SHMBUS_START_LATEST == SB_RING_START_LATEST, "");
static_assert(SHMBUS_START_EARLIEST == SB_RING_START_EARLIEST, "");

struct shmbus_pub {
	shmbus *bus; /* a reference: the connection outlives shmbus_close() */
	struct sb_client_topic reg; /* descriptors kept for re-adoption */
	struct sb_linger_segs m;
	struct sb_ring ring;
	/* The subscribers' slot segments, whose cursors it reads before it
	 * reclaims. */
	struct sb_slots slots;
	/* Thread id of the claim's holder, 0 when none; only that thread
	 * touches `claim`. */
	_Atomic pid_t claim_tid;
	struct sb_ring_claim claim;
	/* A topic with metadata: each message goes out after it, with this
	 * id (the connection's when the pub was opened). */
	bool meta;
	uint64_t publisher;
};

struct shmbus_sub {
	shmbus *bus;		    /* a reference, as for pubs */
	struct sb_client_topic reg; /* as for pubs; data_fd is read-only */
	struct sb_linger_segs m;
	struct sb_ring ring;
	struct sb_ring_reader rd;
	struct sb_ring_slot *slot; /* its slot segment, mapped read-write */
	/* A queue consumer's view of the other consumers' slots (their
	 * claims); slots.map.slots is NULL for a broadcast subscriber. */
	struct sb_slots slots;
	/* A topic with metadata: stripped from each message, the last one's
	 * kept for shmbus_receive_info(). */
	bool meta;
	struct sb_meta last_meta;

	/* The pollable descriptor and its watcher (shmbus_sub_fd()). */
	int efd; /* -1 until the first shmbus_sub_fd() */
	pthread_t watcher;
	/* Orders the watcher's signal against the reader's clear-and-re-arm,
	 * so that a signal for an older generation can never land after the
	 * clear. Held only around an eventfd write or read. */
	pthread_mutex_t w_lock;
	struct sb_ring_reader w_view; /* the watcher's copy: ring and slot */
	_Atomic uint32_t w_stop;      /* set once, by shmbus_sub_close() */
	_Atomic uint32_t w_gen;	      /* bumped at each re-arm; futex word */
	_Atomic uint32_t w_parked;    /* the watcher sleeps on w_gen */
	_Atomic uint64_t w_pos;	      /* where the reader last found nothing */
};

/* ---- topics -------------------------------------------------------- */

static int check_topic(const char *topic)
{
	return sb_topic_name_valid(topic) ? 0 : -EINVAL;
}

/* Sends `req` and returns the reply's code, dropping the reply. */
static int simple_call(shmbus *bus, const char *op, cJSON *req)
{
	struct sb_client_reply rep;
	int r = sb_client_call(bus, op, req, &rep);

	sb_client_reply_fini(&rep);
	return r;
}

cJSON *sb_client_topic_request(const char *topic)
{
	cJSON *req = cJSON_CreateObject();

	if (req != NULL &&
	    cJSON_AddStringToObject(req, "topic", topic) == NULL) {
		cJSON_Delete(req);
		req = NULL;
	}
	return req;
}

/* Adds the config's non-zero fields to `req`. Returns 0, -EINVAL, -ENOMEM. */
static int add_config(cJSON *req, const struct shmbus_topic_config *cfg)
{
	if (cfg->mode < 0 || cfg->mode > SHMBUS_QUEUE || cfg->overflow < 0 ||
	    cfg->overflow > SHMBUS_REJECT || cfg->capacity > SB_MSG_INT_MAX) {
		return -EINVAL;
	}
	if ((cfg->capacity != 0 &&
	     sb_msg_add_int(req, "capacity", (int64_t)cfg->capacity) == NULL) ||
	    (cfg->max_message != 0 &&
	     sb_msg_add_int(req, "max_message", cfg->max_message) == NULL) ||
	    (cfg->mode != 0 &&
	     cJSON_AddStringToObject(req, "mode", sb_mode_name(cfg->mode)) ==
		 NULL) ||
	    (cfg->overflow != 0 &&
	     cJSON_AddStringToObject(
		 req, "overflow", sb_overflow_name(cfg->overflow)) == NULL) ||
	    (cfg->persistent != 0 &&
	     cJSON_AddTrueToObject(req, "persistent") == NULL) ||
	    (cfg->metadata != 0 &&
	     cJSON_AddTrueToObject(req, "metadata") == NULL)) {
		return -ENOMEM;
	}
	return 0;
}

int shmbus_topic_create(shmbus *bus, const char *topic,
			const struct shmbus_topic_config *cfg)
{
	cJSON *req;
	int r;

	if (bus == NULL || check_topic(topic) < 0) {
		return -EINVAL;
	}
	req = sb_client_topic_request(topic);
	if (req == NULL) {
		return -ENOMEM;
	}
	if (cfg != NULL) {
		r = add_config(req, cfg);
		if (r < 0) {
			cJSON_Delete(req);
			return r;
		}
	}
	return simple_call(bus, "topic_create", req);
}

int shmbus_topic_delete(shmbus *bus, const char *topic)
{
	cJSON *req;

	if (bus == NULL || check_topic(topic) < 0) {
		return -EINVAL;
	}
	req = sb_client_topic_request(topic);
	if (req == NULL) {
		return -ENOMEM;
	}
	return simple_call(bus, "topic_delete", req);
}

/* ---- publishing ------------------------------------------------------ */

int shmbus_pub_open(shmbus *bus, const char *topic, shmbus_pub **out)
{
	struct sb_client_grant g;
	shmbus_pub *pub;
	cJSON *req;
	int r;

	if (out != NULL) {
		*out = NULL;
	}
	if (bus == NULL || out == NULL || check_topic(topic) < 0) {
		return -EINVAL;
	}
	pub = calloc(1, sizeof(*pub));
	req = sb_client_topic_request(topic);
	if (pub == NULL || req == NULL) {
		free(pub);
		cJSON_Delete(req);
		return -ENOMEM;
	}
	r = sb_client_open_topic(bus, "pub_open", req, PROT_READ | PROT_WRITE,
				 0, &g, &pub->ring);
	if (r == 0 && sb_slots_init(&pub->slots, bus, &pub->reg, &pub->ring,
				    g.slot_gen, g.slots_in_use) < 0) {
		sb_linger_unmap(&g.m);
		sb_client_close_grant_fds(&g);
		sb_client_close_handle(bus, g.handle, g.gen);
		r = -ENOMEM;
	}
	if (r < 0) {
		free(pub);
		return r;
	}
	sb_client_ref(bus);
	pub->bus = bus;
	pub->m = g.m;
	atomic_init(&pub->claim_tid, 0);
	pub->meta = (pub->ring.flags & SB_RING_FLAG_METADATA) != 0;
	pub->publisher = sb_client_id(bus);
	sb_client_register_topic(bus, &pub->reg, topic, 0, &g, &pub->ring,
				 NULL);
	/* Now, while the broker is surely there: a publisher whose broker
	 * has gone since goes on reclaiming past the subscribers it knows. */
	sb_slots_prefetch(&pub->slots);
	*out = pub;
	return 0;
}

/* The calling thread's id: cached per thread and corrected in a forked
 * child (sys/identity.h), so that the ownership checks of every publish,
 * claim and commit make no system call. */
static pid_t self_tid(void)
{
	return (pid_t)sb_thread_id();
}

/* 1 when the calling thread holds `pub`'s claim. No claim held (the
 * common case) is told without asking who is calling. */
static int holds_claim(shmbus_pub *pub)
{
	/* relaxed: only the holder itself can see its own id here. */
	pid_t holder =
	    atomic_load_explicit(&pub->claim_tid, memory_order_relaxed);

	return holder != 0 && holder == self_tid();
}

/* shmbus_publish() while some thread holds a claim (refused on the
 * holder's thread, which would wait for the writer lock it holds itself),
 * or on a topic with metadata. Out of line, so that the common path makes
 * no call before the ring's. */
__attribute__((noinline)) static int publish_out_of_line(shmbus_pub *pub,
							 const void *data,
							 uint32_t len,
							 int timeout_ms)
{
	if (holds_claim(pub)) {
		return -EBUSY;
	}
	if (pub->meta) {
		return sb_meta_publish(&pub->ring, pub->publisher, data, len,
				       timeout_ms);
	}
	return sb_ring_publish(&pub->ring, data, len, timeout_ms);
}

/* 1 when some thread holds `pub`'s claim. */
static int claimed(shmbus_pub *pub)
{
	/* relaxed: a claim by another thread is ordered by the writer lock;
	 * only our own is decided here, and we see our own stores. */
	return atomic_load_explicit(&pub->claim_tid, memory_order_relaxed) != 0;
}

int shmbus_publish(shmbus_pub *pub, const void *data, size_t len,
		   int timeout_ms)
{
	if (pub == NULL || (data == NULL && len != 0) || timeout_ms < -1) {
		return -EINVAL;
	}
	if (len > UINT32_MAX) {
		return -EMSGSIZE;
	}
	if (claimed(pub) || pub->meta) {
		return publish_out_of_line(pub, data, (uint32_t)len,
					   timeout_ms);
	}
	return sb_ring_publish(&pub->ring, data, (uint32_t)len, timeout_ms);
}

/* A batch on a topic with metadata: checked whole first, then published
 * one message at a time (each with its own publish time). */
static ssize_t publish_batch_meta(shmbus_pub *pub, const struct iovec *msgs,
				  size_t n, int timeout_ms)
{
	if (msgs == NULL && n != 0) {
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].iov_base == NULL && msgs[i].iov_len != 0) {
			return -EINVAL;
		}
		if (msgs[i].iov_len > sb_meta_max_payload(&pub->ring)) {
			return -EMSGSIZE;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int r = sb_meta_publish(&pub->ring, pub->publisher,
					msgs[i].iov_base,
					(uint32_t)msgs[i].iov_len, timeout_ms);

		if (r < 0) {
			return i > 0 ? (ssize_t)i : r;
		}
	}
	return (ssize_t)n;
}

ssize_t shmbus_publish_batch(shmbus_pub *pub, const struct iovec *msgs,
			     size_t n, int timeout_ms)
{
	if (pub == NULL || timeout_ms < -1) {
		return -EINVAL;
	}
	if (holds_claim(pub)) {
		return -EBUSY;
	}
	if (pub->meta) {
		return publish_batch_meta(pub, msgs, n, timeout_ms);
	}
	return sb_ring_publish_batch(&pub->ring, msgs, n, timeout_ms);
}

/*
 * Ownership is decided once the ring has made this thread its one writer
 * (solo or writer lock), so plain stores do: a compare-and-swap here was a
 * locked instruction on every claim, which waits for the previous commit's
 * stores to reach lines the subscriber holds, and took 40 % of the
 * zero-copy publisher's time (bench/README.md, "Measured figures"). A
 * second thread that claims meanwhile sees the holder and gets -EBUSY, or,
 * racing the holder's first instructions, waits in the ring for its commit
 * as any other publisher does. Takes the ring's claim of `len` bytes for
 * the calling thread.
 */
__attribute__((always_inline)) static inline int
claim_bytes(shmbus_pub *pub, uint32_t len, int timeout_ms)
{
	int r;

	if (claimed(pub)) {
		return -EBUSY;
	}
	r = sb_ring_claim(&pub->ring, len, &pub->claim, timeout_ms);
	if (r < 0) {
		return r;
	}
	/* relaxed: the id only marks ownership; the ring's writer exclusion
	 * orders it against the next holder's. */
	atomic_store_explicit(&pub->claim_tid, self_tid(),
			      memory_order_relaxed);
	return 0;
}

/* shmbus_claim() on a topic with metadata: room for it before the
 * message, stamped at the commit. Out of line, as for publish. */
__attribute__((noinline)) static int
claim_with_meta(shmbus_pub *pub, size_t len, void **buf, int timeout_ms)
{
	int r;

	if (len > sb_meta_max_payload(&pub->ring)) {
		return -EMSGSIZE;
	}
	r = claim_bytes(pub, (uint32_t)len + SB_RING_METADATA_BYTES,
			timeout_ms);
	if (r == 0) {
		*buf = (char *)pub->claim.data + SB_RING_METADATA_BYTES;
	}
	return r;
}

int shmbus_claim(shmbus_pub *pub, size_t len, void **buf, int timeout_ms)
{
	int r;

	if (pub == NULL || buf == NULL || timeout_ms < -1) {
		return -EINVAL;
	}
	if (pub->meta) {
		return claim_with_meta(pub, len, buf, timeout_ms);
	}
	if (len > UINT32_MAX) {
		return -EMSGSIZE;
	}
	r = claim_bytes(pub, (uint32_t)len, timeout_ms);
	if (r == 0) {
		*buf = pub->claim.data;
	}
	return r;
}

int shmbus_commit(shmbus_pub *pub)
{
	if (pub == NULL || !holds_claim(pub)) {
		return -EINVAL;
	}
	/* Cleared while this thread is still the ring's writer: the next
	 * holder sets it only after our commit lets go of the ring. */
	atomic_store_explicit(&pub->claim_tid, 0, memory_order_relaxed);
	if (pub->meta) {
		/* Stamped now: the publish time is the commit's. */
		sb_meta_stamp(pub->claim.data, pub->publisher);
	}
	return sb_ring_commit(&pub->ring, &pub->claim);
}

int shmbus_abort(shmbus_pub *pub)
{
	if (pub == NULL || !holds_claim(pub)) {
		return -EINVAL;
	}
	/* Cleared while this thread is still the ring's writer, as in
	 * shmbus_commit(). */
	atomic_store_explicit(&pub->claim_tid, 0, memory_order_relaxed);
	return sb_ring_abort(&pub->ring, &pub->claim);
}

uint64_t shmbus_pub_id(const shmbus_pub *pub)
{
	return pub != NULL && pub->meta ? pub->publisher : 0;
}

size_t shmbus_pub_max_message(const shmbus_pub *pub)
{
	if (pub == NULL) {
		return 0;
	}
	return pub->meta ? sb_meta_max_payload(&pub->ring)
			 : pub->ring.max_message;
}

int shmbus_pub_close(shmbus_pub *pub)
{
	if (pub == NULL) {
		return -EINVAL;
	}
	/* A claim still held keeps the writer lock: give it back before the
	 * memory goes, or every other writer would wait for it forever. */
	if (atomic_load_explicit(&pub->claim_tid, memory_order_relaxed) != 0) {
		(void)sb_ring_abort(&pub->ring, &pub->claim);
	}
	sb_client_unregister_topic(pub->bus, &pub->reg);
	sb_slots_fini(&pub->slots);
	sb_linger_put(sb_client_linger(pub->bus), &pub->m);
	sb_client_unref(pub->bus);
	free(pub);
	return 0;
}

/* ---- subscribing ----------------------------------------------------- */

int shmbus_sub_open(shmbus *bus, const char *topic, int start, shmbus_sub **out)
{
	struct sb_client_grant g;
	shmbus_sub *sub;
	cJSON *req;
	int r;

	if (out != NULL) {
		*out = NULL;
	}
	if (bus == NULL || out == NULL || check_topic(topic) < 0 ||
	    (start != SHMBUS_START_LATEST && start != SHMBUS_START_EARLIEST)) {
		return -EINVAL;
	}
	sub = calloc(1, sizeof(*sub));
	req = sb_client_topic_request(topic);
	if (sub == NULL || req == NULL ||
	    cJSON_AddStringToObject(req, "start",
				    start == SHMBUS_START_EARLIEST
					? "earliest"
					: "latest") == NULL) {
		free(sub);
		cJSON_Delete(req);
		return -ENOMEM;
	}
	r = sb_client_open_topic(bus, "sub_open", req, PROT_READ, 1, &g,
				 &sub->ring);
	if (r == 0) {
		r = sb_ring_reader_open_slot(&sub->ring, g.slot,
					     (uint32_t)g.slot_index, start,
					     &sub->rd);
		/* A queue consumer reads the others' claims. */
		if (r == 0 && sub->ring.mode == SB_RING_QUEUE &&
		    sb_slots_init(&sub->slots, bus, &sub->reg, &sub->ring, -1,
				  -1) < 0) {
			(void)sb_ring_reader_close(&sub->rd);
			r = -ENOMEM;
		}
		if (r < 0) {
			sb_linger_unmap(&g.m);
			sb_slots_unmap_one(&g.slot);
			sb_client_close_grant_fds(&g);
			sb_client_close_handle(bus, g.handle, g.gen);
		}
	}
	if (r < 0) {
		free(sub);
		return r;
	}
	sb_client_ref(bus);
	sub->bus = bus;
	sub->m = g.m;
	sub->slot = g.slot;
	sub->efd = -1;
	sub->meta = (sub->ring.flags & SB_RING_FLAG_METADATA) != 0;
	sb_client_register_topic(bus, &sub->reg, topic, 1, &g, &sub->ring,
				 &sub->rd);
	if (sub->slots.map.slots != NULL) {
		sb_slots_prefetch(&sub->slots);
	}
	*out = sub;
	return 0;
}

/* The reader found the topic empty: clear the descriptor and let the
 * watcher wait again from where the reader stands. */
static void found_empty(shmbus_sub *sub)
{
	uint64_t v;

	if (sub->efd < 0) {
		return;
	}
	pthread_mutex_lock(&sub->w_lock);
	while (read(sub->efd, &v, sizeof(v)) < 0 && errno == EINTR) {
	}
	atomic_store_explicit(&sub->w_pos, sb_ring_reader_position(&sub->rd),
			      memory_order_relaxed);
	/* seq_cst: release publishes w_pos to the acquire load of w_gen in
	 * watch_main(); seq_cst orders the bump before our load of w_parked
	 * (Dekker with the watcher's store of w_parked, then load of w_gen,
	 * in park()). */
	atomic_fetch_add_explicit(&sub->w_gen, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&sub->w_lock);
	if (atomic_load_explicit(&sub->w_parked, memory_order_seq_cst) != 0) {
		sb_futex_wake(&sub->w_gen, 1);
	}
}

ssize_t shmbus_receive(shmbus_sub *sub, void *buf, size_t cap, int timeout_ms)
{
	ssize_t r;

	if (sub == NULL) {
		return -EINVAL;
	}
	r = sub->meta ? sb_meta_receive(&sub->rd, buf, cap, &sub->last_meta,
					timeout_ms)
		      : sb_ring_receive(&sub->rd, buf, cap, timeout_ms);
	if (r == -EAGAIN || r == -ETIMEDOUT) {
		found_empty(sub);
	}
	return r;
}

int shmbus_peek(shmbus_sub *sub, const void **data, size_t *len, int timeout_ms)
{
	uint32_t n;
	int r;

	if (sub == NULL || data == NULL || len == NULL) {
		return -EINVAL;
	}
	if (sub->meta) {
		r = sb_meta_peek(&sub->rd, data, len, &sub->last_meta,
				 timeout_ms);
	} else {
		r = sb_ring_peek(&sub->rd, data, &n, timeout_ms);
		if (r == 0) {
			*len = n;
		}
	}
	if (r == -EAGAIN || r == -ETIMEDOUT) {
		found_empty(sub);
	}
	return r;
}

int shmbus_release(shmbus_sub *sub)
{
	if (sub == NULL) {
		return -EINVAL;
	}
	return sb_ring_release(&sub->rd);
}

/* 1 when `info` has room for the fields this version fills. */
static int info_usable(const struct shmbus_msg_info *info)
{
	return info != NULL &&
	       info->size >=
		   offsetof(struct shmbus_msg_info, seq) + sizeof(info->seq);
}

/* Whether `info` has room for `field` (a later field of the struct). */
#define INFO_HAS(info, field)                                                  \
	((info)->size >=                                                       \
	 offsetof(struct shmbus_msg_info, field) + sizeof((info)->field))

static void info_fill(const shmbus_sub *sub, struct shmbus_msg_info *info)
{
	info->seq = sb_ring_reader_seq(&sub->rd);
	if (INFO_HAS(info, publisher)) {
		info->flags = sub->meta ? SHMBUS_MSG_METADATA : 0;
		info->publish_time_ns = sub->meta ? sub->last_meta.time_ns : 0;
		info->publisher = sub->meta ? sub->last_meta.publisher : 0;
	}
}

ssize_t shmbus_receive_info(shmbus_sub *sub, void *buf, size_t cap,
			    struct shmbus_msg_info *info, int timeout_ms)
{
	ssize_t r;

	if (!info_usable(info)) {
		return -EINVAL;
	}
	r = shmbus_receive(sub, buf, cap, timeout_ms);
	if (r >= 0) {
		info_fill(sub, info);
	}
	return r;
}

int shmbus_peek_info(shmbus_sub *sub, const void **data, size_t *len,
		     struct shmbus_msg_info *info, int timeout_ms)
{
	int r;

	if (!info_usable(info)) {
		return -EINVAL;
	}
	r = shmbus_peek(sub, data, len, timeout_ms);
	if (r == 0) {
		info_fill(sub, info);
	}
	return r;
}

uint64_t shmbus_sub_lost(const shmbus_sub *sub)
{
	return sub != NULL ? sb_ring_reader_lost(&sub->rd) : 0;
}

/* ---- the pollable descriptor ----------------------------------------- */

/* Sleeps until the reader re-arms (w_gen moves past `gen`) or a stop. */
static void park(shmbus_sub *sub, uint32_t gen)
{
	/* seq_cst: Dekker with found_empty(): we say we sleep, then load
	 * w_gen; it bumps w_gen, then loads w_parked. */
	atomic_store_explicit(&sub->w_parked, 1, memory_order_seq_cst);
	while (atomic_load_explicit(&sub->w_gen, memory_order_seq_cst) == gen) {
		sb_futex_wait(&sub->w_gen, gen, NULL);
	}
	atomic_store_explicit(&sub->w_parked, 0, memory_order_relaxed);
}

/* Makes the descriptor readable, unless the reader re-armed since the
 * watcher saw the tail move (generation `gen`): that news is stale. */
static void signal_readable(shmbus_sub *sub, uint32_t gen)
{
	uint64_t one = 1;

	pthread_mutex_lock(&sub->w_lock);
	/* relaxed: w_gen only changes under w_lock, which we hold (the stop
	 * bump aside, which needs no signal). */
	if (atomic_load_explicit(&sub->w_gen, memory_order_relaxed) == gen) {
		while (write(sub->efd, &one, sizeof(one)) < 0 &&
		       errno == EINTR) {
		}
	}
	pthread_mutex_unlock(&sub->w_lock);
}

/*
 * The watcher: makes sub->efd readable while messages wait for the reader.
 * Loop: take the reader's last empty position (w_pos, generation w_gen);
 * sleep on the ring until the tail moves away from it; signal; park until
 * the reader finds the topic empty again (found_empty(), which clears the
 * descriptor and bumps the generation). Signal and clear are ordered by
 * w_lock, so once a receive has returned -EAGAIN the descriptor is clear
 * until the tail moves past where that receive stood.
 */
static void *watch_main(void *arg)
{
	shmbus_sub *sub = arg;

	for (;;) {
		/* acquire: pairs with the seq_cst bump in found_empty(), so
		 * w_pos is at least as new as this generation. */
		uint32_t gen =
		    atomic_load_explicit(&sub->w_gen, memory_order_acquire);
		uint64_t pos =
		    atomic_load_explicit(&sub->w_pos, memory_order_relaxed);
		int r =
		    sb_ring_wait_readable(&sub->w_view, pos, &sub->w_stop, -1);

		if (r == -ECANCELED) {
			break;
		}
		/* The tail moved (or the ring failed: readable, so that the
		 * reader's next receive reports the error). */
		signal_readable(sub, gen);
		park(sub, gen);
	}
	return NULL;
}

int shmbus_sub_fd(shmbus_sub *sub)
{
	sigset_t all, old;
	int efd, r;

	if (sub == NULL) {
		return -EINVAL;
	}
	if (sub->efd >= 0) {
		return sub->efd;
	}
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		return -errno;
	}
	r = pthread_mutex_init(&sub->w_lock, NULL);
	if (r != 0) {
		close(efd);
		return -r;
	}
	sub->w_view = sub->rd;
	atomic_init(&sub->w_stop, 0);
	atomic_init(&sub->w_gen, 0);
	atomic_init(&sub->w_parked, 0);
	atomic_init(&sub->w_pos, sb_ring_reader_position(&sub->rd));
	sub->efd = efd;
	/* The watcher takes no signals: they belong to the application's
	 * threads, and an EINTR there would only cost a loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&sub->watcher, NULL, watch_main, sub);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		sub->efd = -1;
		pthread_mutex_destroy(&sub->w_lock);
		close(efd);
		return -r;
	}
	return efd;
}

/*
 * Stops the watcher. The stop flag comes first; then both places it may
 * sleep are woken: w_gen (parked) and the ring's data_seq (waiting for a
 * message). Waking data_seq also wakes this topic's other sleeping readers
 * once; they find nothing new and sleep again. That costs them one look,
 * and in exchange sub_close never waits on a timer period.
 */
static void stop_watcher(shmbus_sub *sub)
{
	if (sub->efd < 0) {
		return;
	}
	/* seq_cst: the flag must be visible to a watcher that sees either
	 * bump below (pairs with the acquire loads in watch_main() and
	 * sb_ring_wait_readable()). */
	atomic_store_explicit(&sub->w_stop, 1, memory_order_seq_cst);
	atomic_fetch_add_explicit(&sub->w_gen, 1, memory_order_seq_cst);
	sb_futex_wake(&sub->w_gen, 1);
	sb_ring_wake_readers(&sub->ring);
	pthread_join(sub->watcher, NULL);
	pthread_mutex_destroy(&sub->w_lock);
	close(sub->efd);
	sub->efd = -1;
}

int shmbus_sub_close(shmbus_sub *sub)
{
	if (sub == NULL) {
		return -EINVAL;
	}
	stop_watcher(sub);
	/* Unregistered first, so that a reconnection cannot hand the slot
	 * back (or end it) while we free it. */
	sb_client_unregister_topic(sub->bus, &sub->reg);
	/* Free the slot before unmapping it (writers stop waiting now, not
	 * when the broker reads the close). */
	(void)sb_ring_reader_close(&sub->rd);
	if (sub->slots.map.slots != NULL) {
		sb_slots_fini(&sub->slots);
	}
	sb_slots_unmap_one(&sub->slot);
	sb_linger_put(sb_client_linger(sub->bus), &sub->m);
	sb_client_unref(sub->bus);
	free(sub);
	return 0;
}
