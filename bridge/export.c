/*
 * export.c - one thread per exported topic: it peeks each message in the
 * ring (no copy out of shared memory), hands it to the NATS client (which
 * copies it into its write buffer and flushes in batches from its own
 * thread) with the bridge's headers, and releases it. Messages this
 * bridge's importer published into the topic are skipped: that is what
 * keeps two bridges of the same names from echoing (docs/bridge.md,
 * "Loops").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/bridge.h"

/* How long a wait for a message lasts before the thread looks at its stop
 * flag, and how long it waits before it tries to open a topic again. */
#define POLL_MS	  200
#define REOPEN_MS 1000

/* How long flush_idle() waits for the server's PONG. */
#define FLUSH_WAIT_MS 1

bool sbb_is_own_publisher(struct sbb_bridge *br, uint64_t id)
{
	size_t n = atomic_load_explicit(&br->n_own, memory_order_acquire);

	for (size_t i = 0; i < n && i < SBB_OWN_IDS; i++) {
		if (atomic_load_explicit(&br->own_ids[i],
					 memory_order_relaxed) == id) {
			return true;
		}
	}
	return false;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Counts a publish's outcome. */
static void count_publish(struct sbb_export *e, natsStatus s, size_t len)
{
	switch (s) {
	case NATS_OK:
		atomic_fetch_add(&e->n.sent, 1);
		atomic_fetch_add(&e->n.bytes, len);
		break;
	case NATS_INSUFFICIENT_BUFFER:
		atomic_fetch_add(&e->n.buffer_full, 1);
		break;
	case NATS_MAX_PAYLOAD:
		atomic_fetch_add(&e->n.too_big, 1);
		break;
	default:
		if (atomic_fetch_add(&e->n.failed, 1) < 10) {
			sbb_warn("export %s -> %s: %s", e->topic, e->subject,
				 natsStatus_GetText(s));
		}
		break;
	}
}

/* `v` in decimal at the end of `buf`; returns where it starts. snprintf
 * was 700 of the 9,600 instructions a message cost the bridge. */
static const char *decimal(char buf[24], uint64_t v)
{
	char *p = buf + 23;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return p;
}

/* Publishes one message with the headers; the sequence number is already
 * the one it carries. */
static natsStatus send_one(struct sbb_export *e, const void *data, size_t len)
{
	struct sbb_bridge *br = e->br;
	int64_t max =
	    atomic_load_explicit(&br->max_payload, memory_order_relaxed);
	char buf[24];
	const char *seq = decimal(buf, e->seq);
	natsMsg *m = NULL;
	natsStatus s;

	if (max > 0 && (int64_t)len > max) {
		return NATS_MAX_PAYLOAD;
	}
	s = natsMsg_Create(&m, e->subject, NULL, data, (int)len);
	if (s == NATS_OK) {
		s = natsMsgHeader_Set(m, SBB_HDR_ORIGIN, br->cfg.origin);
	}
	if (s == NATS_OK) {
		s = natsMsgHeader_Set(m, SBB_HDR_RUN, br->run);
	}
	if (s == NATS_OK) {
		s = natsMsgHeader_Set(m, SBB_HDR_SEQ, seq);
	}
	if (s == NATS_OK) {
		s = natsConnection_PublishMsg(br->nc, m);
	}
	natsMsg_Destroy(m);
	return s;
}

/*
 * Takes the messages lost in the ring before this one into account: they
 * count as lost here and advance the sequence number, so that an importer
 * counts them in its gaps too and its received plus gaps is everything
 * that was published.
 */
static void note_lost(struct sbb_export *e, shmbus_sub *sub, uint64_t *lost)
{
	uint64_t now = shmbus_sub_lost(sub);

	if (now > *lost) {
		atomic_fetch_add(&e->n.lost, now - *lost);
		e->seq += now - *lost;
		*lost = now;
	}
}

/*
 * The topic has nothing more for now: what this thread handed the NATS
 * client goes out at once. Left to the client, it would wait for the
 * client's flusher, which lets a first message sit 1 ms for others to
 * join it: most of a message's latency at low rates (bridge-bench). A
 * flush is a PING written with the buffer; the PONG is waited for at most
 * FLUSH_WAIT_MS, the delay the flusher would have added anyway, so that
 * a distant server holds the thread no longer than that. A busy topic is
 * never empty and never flushed here: the client batches as before.
 */
static void flush_idle(struct sbb_export *e)
{
	if (atomic_load(&e->br->connected)) {
		natsConnection_FlushTimeout(e->br->nc, FLUSH_WAIT_MS);
	}
}

/* Moves messages until stopped or the subscription fails. Returns 0 when
 * stopped, else the error (the caller opens the topic again): -ENOENT
 * when the topic was deleted, once what it held is sent. */
static int pump(struct sbb_export *e, shmbus_sub *sub)
{
	struct shmbus_msg_info info = {.size = sizeof(info)};
	uint64_t lost = shmbus_sub_lost(sub);
	bool unflushed = false; /* sent since the last flush_idle() */

	for (;;) {
		int stop = atomic_load(&e->stop);
		int deleted = atomic_load(&e->deleted);
		const void *data;
		size_t len;
		int r = shmbus_peek_info(
		    sub, &data, &len, &info,
		    stop == SBB_RUN && !deleted && !unflushed ? POLL_MS : 0);

		if (r == -EAGAIN || r == -ETIMEDOUT) {
			note_lost(e, sub, &lost); /* counted while idle too */
			if (unflushed) {
				flush_idle(e);
				unflushed = false;
				continue;
			}
			if (stop != SBB_RUN) {
				return 0;
			}
			if (deleted) {
				return -ENOENT;
			}
			continue;
		}
		if (r < 0) {
			return r;
		}
		note_lost(e, sub, &lost);
		if ((info.flags & SHMBUS_MSG_METADATA) != 0 &&
		    sbb_is_own_publisher(e->br, info.publisher)) {
			atomic_fetch_add(&e->n.skipped_own, 1);
		} else {
			e->seq++;
			count_publish(e, send_one(e, data, len), len);
			unflushed = true;
		}
		shmbus_release(sub);
		if (atomic_load(&e->stop) == SBB_STOP) {
			return 0;
		}
	}
}

/*
 * Opens the topic and pumps it, again after a failure. A subscription
 * whose topic was deleted reads memory nobody names any more (its users
 * keep it until they close; after a shmbusd restart, a topic only this
 * subscription handed back takes no publisher, so it is deleted and made
 * again): the name is opened again, from the first message the topic
 * that has it now holds.
 */
static void *export_main(void *arg)
{
	struct sbb_export *e = arg;
	int said = 0, start = SHMBUS_START_LATEST;

	while (atomic_load(&e->stop) == SBB_RUN) {
		shmbus_sub *sub = NULL;
		int r;

		/* A deletion from now on is of the topic opened here. */
		atomic_store(&e->deleted, 0);
		/* Before the broker's auto_create would make it without
		 * metadata, which an import into it needs (import.c). A
		 * refusal (access rules) leaves the open to say more. */
		(void)sbb_topic_create_if_missing(e->br, e->topic);
		r = shmbus_sub_open(e->br->bus, e->topic, start, &sub);
		if (r == 0) {
			if (said != 0) {
				sbb_info("export %s: topic open", e->topic);
			}
			said = 0;
			start = SHMBUS_START_LATEST;
			r = pump(e, sub);
			shmbus_sub_close(sub);
			if (r == 0) {
				break;
			}
			if (r == -ENOENT) {
				sbb_info("export %s: topic deleted; opening "
					 "it again in %d ms",
					 e->topic, REOPEN_MS);
				start = SHMBUS_START_EARLIEST;
				said = r;
			}
		}
		if (r != said) {
			sbb_warn("export %s: %s; trying again every %d ms",
				 e->topic, strerror(-r), REOPEN_MS);
			said = r;
		}
		sleep_ms(REOPEN_MS);
	}
	return NULL;
}

/* ---- topic deletions, watched by the main thread ---------------------- */

static void mark_deleted(struct sbb_bridge *br, const char *topic)
{
	pthread_mutex_lock(&br->maps_lock);
	for (size_t i = 0; i < br->nexports; i++) {
		if (strcmp(br->exports[i]->topic, topic) == 0) {
			atomic_store(&br->exports[i]->deleted, 1);
		}
	}
	pthread_mutex_unlock(&br->maps_lock);
}

static void *watch_main(void *arg)
{
	struct sbb_bridge *br = arg;
	shmbus_watch *w = NULL;
	bool lost = false;

	while (!atomic_load(&br->watch_stop)) {
		char topic[SHMBUS_TOPIC_MAX + 1];
		int event, r;

		if (w == NULL) {
			r = shmbus_watch_open(br->bus, ">", &w);
			if (r == -ENOTSUP) {
				sbb_warn("shmbusd: no topic_watch: an exported "
					 "topic deleted and made again is not "
					 "followed");
				break;
			}
			if (r < 0) {
				sleep_ms(POLL_MS);
				continue;
			}
			if (lost) {
				sbb_info("shmbusd: watching topics again");
			}
		}
		r = shmbus_watch_next(w, &event, topic, sizeof(topic), POLL_MS);
		if (r == 0 && event == SHMBUS_WATCH_DELETED) {
			mark_deleted(br, topic);
		}
		if ((r == 0 && event != SHMBUS_WATCH_OVERFLOW) ||
		    r == -ETIMEDOUT || r == -EAGAIN) {
			continue;
		}
		/* Gone with shmbusd (opened again once it is back), or events
		 * dropped: either way the watch starts over. */
		sbb_warn("shmbusd: topic watch: %s; opening it again",
			 r == 0 ? "events dropped" : strerror(-r));
		shmbus_watch_close(w);
		w = NULL;
		lost = true;
	}
	if (w != NULL) {
		shmbus_watch_close(w);
	}
	return NULL;
}

int sbb_watch_start(struct sbb_bridge *br)
{
	int r = pthread_create(&br->watcher, NULL, watch_main, br);

	br->watching = r == 0;
	return -r;
}

void sbb_watch_stop(struct sbb_bridge *br)
{
	if (br->watching) {
		atomic_store(&br->watch_stop, true);
		pthread_join(br->watcher, NULL);
		br->watching = false;
	}
}

int sbb_export_start(struct sbb_bridge *br, const struct sbb_export_map *m,
		     struct sbb_export **out)
{
	struct sbb_export *e = calloc(1, sizeof(*e));
	int r;

	if (e == NULL) {
		return -ENOMEM;
	}
	e->br = br;
	e->topic = strdup(m->topic);
	e->subject = strdup(m->subject);
	if (e->topic == NULL || e->subject == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	r = -pthread_create(&e->thread, NULL, export_main, e);
	if (r < 0) {
		goto fail;
	}
	*out = e;
	return 0;
fail:
	free(e->topic);
	free(e->subject);
	free(e);
	return r;
}

void sbb_export_stop(struct sbb_export *e, int how)
{
	atomic_store(&e->stop, how);
	pthread_join(e->thread, NULL);
}

void sbb_export_free(struct sbb_export *e)
{
	free(e->topic);
	free(e->subject);
	free(e);
}
