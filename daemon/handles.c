/*
 * handles.c - one client's table of handles. A handle (pub_open, sub_open,
 * topic_adopt) holds one reference on its topic and counts as one of the
 * topic's publishers or subscribers; a subscriber's handle also holds its
 * slot segment (slots.c), freed when the handle goes. The ops add, find and
 * close handles here; client.c closes all of them with the connection.
 * Nothing here writes to a socket.
 */
#include "daemon/broker.h"

#include <errno.h>
#include <stdlib.h>

void sbd_handles_init(struct sbd_handles *hs, uint32_t client_id)
{
	hs->head = NULL;
	hs->count = 0;
	hs->last_id = 0;
	hs->client_id = client_id;
}

struct sbd_handle *sbd_handle_add(struct sbd_handles *hs, struct sbd_topic *t,
				  bool sub)
{
	struct sbd_handle *h = calloc(1, sizeof(*h));

	if (h == NULL) {
		return NULL;
	}
	h->id = ++hs->last_id;
	h->client_id = hs->client_id;
	h->sub = sub;
	h->slot = -1;
	h->topic = t;
	h->next = hs->head;
	hs->head = h;
	hs->count++;
	sbd_topic_ref(t);
	if (sub) {
		t->subscribers++;
	} else {
		t->publishers++;
	}
	return h;
}

/* Frees `h`, already out of its table, with its slot and its reference. */
static void handle_release(struct sbd_handle *h)
{
	struct sbd_topic *t = h->topic;

	if (h->sub) {
		sbd_slot_close(t, h);
		t->subscribers--;
	} else {
		t->publishers--;
	}
	free(h);
	sbd_topic_unref(t);
}

struct sbd_handle *sbd_handle_find(const struct sbd_handles *hs, uint32_t id)
{
	for (struct sbd_handle *h = hs->head; h != NULL; h = h->next) {
		if (h->id == id) {
			return h;
		}
	}
	return NULL;
}

int sbd_handle_close(struct sbd_handles *hs, uint32_t id)
{
	for (struct sbd_handle **p = &hs->head; *p != NULL; p = &(*p)->next) {
		struct sbd_handle *h = *p;

		if (h->id == id) {
			*p = h->next;
			hs->count--;
			handle_release(h);
			return 0;
		}
	}
	return -ENOENT;
}

void sbd_handles_close_all(struct sbd_handles *hs)
{
	struct sbd_handle *h;

	while ((h = hs->head) != NULL) {
		hs->head = h->next;
		handle_release(h);
	}
	hs->count = 0;
}
