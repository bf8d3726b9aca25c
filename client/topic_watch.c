/*
 * topic_watch.c - shmbus_watch_*: the topics whose names match a pattern,
 * as they are created and removed. A watch has a link of its own to the
 * broker (its requests would otherwise be interleaved with events), sends
 * topic_watch once, and then only reads events: first "topics" batches of
 * the topics that already match (the last one empty), then one
 * "topic_created" or "topic_deleted" each, or "overflow" when the broker
 * dropped some because this side did not read them (docs/protocol.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/conn_internal.h"
#include "client/link.h"
#include "client/request.h"
#include "shmbus/shmbus.h"
#include "wire/topic_name.h"

/* One event decoded, waiting for shmbus_watch_next(). */
struct watch_event {
	int kind;
	char topic[SB_TOPIC_NAME_MAX + 1];
};

struct shmbus_watch {
	struct link *link;
	struct watch_event *queue; /* a "topics" batch, taken one by one */
	size_t head, n, cap;
};

static int push(struct shmbus_watch *w, int kind, const char *topic)
{
	struct watch_event *e;

	if (w->n == w->cap) {
		size_t cap = w->cap != 0 ? w->cap * 2 : 16;
		struct watch_event *q = realloc(w->queue, cap * sizeof(*q));

		if (q == NULL) {
			return -ENOMEM;
		}
		w->queue = q;
		w->cap = cap;
	}
	e = &w->queue[w->n++];
	e->kind = kind;
	snprintf(e->topic, sizeof(e->topic), "%s", topic);
	return 0;
}

/* A topic name the broker sent: valid, or the stream is not to be
 * trusted. */
static int take_name(const cJSON *item, const char **name)
{
	if (!cJSON_IsString(item) || !sb_topic_name_valid(item->valuestring)) {
		return -EPROTO;
	}
	*name = item->valuestring;
	return 0;
}

/* Queues what one event frame says. */
static int decode(struct shmbus_watch *w, const cJSON *ev)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(ev, "event");
	const cJSON *topics = cJSON_GetObjectItemCaseSensitive(ev, "topics");
	const char *name;
	const cJSON *item;

	if (!cJSON_IsString(kind)) {
		return -EPROTO;
	}
	if (strcmp(kind->valuestring, "topics") == 0 && cJSON_IsArray(topics)) {
		if (cJSON_GetArraySize(topics) == 0) {
			return push(w, SHMBUS_WATCH_LISTED, "");
		}
		cJSON_ArrayForEach(item, topics)
		{
			if (take_name(item, &name) < 0 ||
			    push(w, SHMBUS_WATCH_CREATED, name) < 0) {
				return -EPROTO;
			}
		}
		return 0;
	}
	if (strcmp(kind->valuestring, "overflow") == 0) {
		return push(w, SHMBUS_WATCH_OVERFLOW, "");
	}
	if (take_name(cJSON_GetObjectItemCaseSensitive(ev, "topic"), &name) <
	    0) {
		return -EPROTO;
	}
	if (strcmp(kind->valuestring, "topic_created") == 0) {
		return push(w, SHMBUS_WATCH_CREATED, name);
	}
	if (strcmp(kind->valuestring, "topic_deleted") == 0) {
		return push(w, SHMBUS_WATCH_DELETED, name);
	}
	return 0; /* an event of a later version: not ours to report */
}

int shmbus_watch_open(shmbus *bus, const char *pattern, shmbus_watch **out)
{
	struct sb_client_reply rep;
	struct shmbus_watch *w;
	cJSON *req, *hello = NULL;
	uint32_t client_id;
	int conn_err, r;

	if (out != NULL) {
		*out = NULL;
	}
	if (bus == NULL || out == NULL ||
	    sb_topic_pattern_check(pattern, NULL, 0) < 0) {
		return -EINVAL;
	}
	w = calloc(1, sizeof(*w));
	req = cJSON_CreateObject();
	r = w == NULL || req == NULL ||
		    cJSON_AddStringToObject(req, "pattern", pattern) == NULL
		? -ENOMEM
		: sb_link_open(bus->path, bus->name, -1,
			       SB_CLIENT_REPLY_TIMEOUT_MS, &w->link, &hello,
			       &client_id);
	cJSON_Delete(hello);
	sb_client_reply_init(&rep);
	if (r == 0) {
		r = sb_link_call(w->link, "topic_watch", req, NULL, 0,
				 SB_CLIENT_REPLY_TIMEOUT_MS, &rep, &conn_err);
	}
	if (r == 0 && rep.msg.code != 0) {
		r = rep.msg.code; /* refused: an old broker says -ENOTSUP */
	}
	sb_client_reply_fini(&rep);
	cJSON_Delete(req);
	if (r < 0) {
		shmbus_watch_close(w);
		return r;
	}
	*out = w;
	return 0;
}

int shmbus_watch_next(shmbus_watch *w, int *event, char *topic, size_t cap,
		      int timeout_ms)
{
	const struct watch_event *e;
	cJSON *ev;
	int r;

	if (w == NULL || event == NULL || topic == NULL || cap == 0 ||
	    timeout_ms < -1) {
		return -EINVAL;
	}
	while (w->head == w->n) {
		w->head = w->n = 0;
		r = sb_link_read_event(w->link, timeout_ms, &ev);
		if (r < 0) {
			return r;
		}
		r = decode(w, ev);
		cJSON_Delete(ev);
		if (r < 0) {
			return r;
		}
	}
	e = &w->queue[w->head];
	if (strlen(e->topic) >= cap) {
		return -EMSGSIZE;
	}
	w->head++;
	*event = e->kind;
	memcpy(topic, e->topic, strlen(e->topic) + 1);
	return 0;
}

int shmbus_watch_fd(const shmbus_watch *w)
{
	return w != NULL ? w->link->fd : -EINVAL;
}

int shmbus_watch_close(shmbus_watch *w)
{
	if (w == NULL) {
		return -EINVAL;
	}
	sb_link_free(w->link); /* NULL when the open failed early */
	free(w->queue);
	free(w);
	return 0;
}
