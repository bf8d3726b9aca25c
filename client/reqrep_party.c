/*
 * reqrep_party.c - what a server and a requester share (reqrep.h): the
 * set of channels a party holds, asking the broker for new ones when the
 * party's page says there are some, and letting them all go.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "client/bus_internal.h"
#include "client/reqrep.h"

int sb_rr_party_init(struct sb_rr_party *p, shmbus *bus, const char *op,
		     const char *field, bool page_wakes)
{
	*p = (struct sb_rr_party){
	    .bus = bus, .op = op, .field = field, .page_wakes = page_wakes};
	p->epfd = sb_rr_epoll();
	return p->epfd < 0 ? p->epfd : 0;
}

void sb_rr_party_fini(struct sb_rr_party *p)
{
	for (size_t i = 0; i < p->n; i++) {
		sb_rr_chan_close(p->v[i], p->epfd);
	}
	free(p->v);
	p->v = NULL;
	p->n = p->cap = 0;
	sb_rr_unmap_page(p->page);
	p->page = NULL;
	if (p->epfd >= 0) {
		close(p->epfd);
		p->epfd = -1;
	}
}

int sb_rr_party_open(struct sb_rr_party *p, const char *open_op,
		     const char *service, int nfds, struct sb_client_reply *rep)
{
	cJSON *req = cJSON_CreateObject();
	uint64_t capacity;
	int r;

	if (req == NULL || !cJSON_AddStringToObject(req, "service", service)) {
		cJSON_Delete(req);
		return -ENOMEM;
	}
	r = sb_client_call(p->bus, open_op, req, rep);
	if (r < 0) {
		return r;
	}
	if (sb_msg_get_int(rep->msg.result, p->field, 1, UINT32_MAX, &p->id,
			   NULL) < 0 ||
	    sb_rr_geometry(rep, &capacity, &p->max_message) < 0 ||
	    rep->nfds != nfds) {
		return -EPROTO;
	}
	r = sb_rr_take_page(rep, &p->page);
	if (r == 0) {
		sb_client_ref(p->bus);
		p->have_ref = true;
	}
	return r;
}

void sb_rr_party_close(struct sb_rr_party *p, const char *close_op)
{
	cJSON *req = p->id > 0 ? cJSON_CreateObject() : NULL;

	if (req != NULL && sb_msg_add_int(req, p->field, p->id)) {
		struct sb_client_reply rep;

		sb_client_reply_init(&rep);
		(void)sb_client_call(p->bus, close_op, req, &rep);
		sb_client_reply_fini(&rep);
	} else {
		cJSON_Delete(req);
	}
	sb_rr_party_fini(p);
	if (p->have_ref) {
		sb_client_unref(p->bus);
		p->have_ref = false;
	}
}

static int add_chan(struct sb_rr_party *p, struct sb_rr_chan *ch)
{
	if (p->n == p->cap) {
		size_t cap = p->cap != 0 ? 2 * p->cap : 4;
		struct sb_rr_chan **v = realloc(p->v, cap * sizeof(*v));

		if (v == NULL) {
			return -ENOMEM;
		}
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = ch;
	return 0;
}

/* Asks the broker for one channel; *more when others wait. */
static int fetch_chan(struct sb_rr_party *p, bool *more)
{
	struct sb_client_reply rep;
	struct sb_rr_chan *ch = NULL;
	cJSON *req = cJSON_CreateObject();
	int r;

	sb_client_reply_init(&rep);
	if (req == NULL || !sb_msg_add_int(req, p->field, p->id)) {
		cJSON_Delete(req);
		return -ENOMEM;
	}
	r = sb_client_call(p->bus, p->op, req, &rep);
	if (r == 0 && sb_msg_get_bool(rep.msg.result, "more", more, NULL) < 0) {
		r = -EPROTO;
	}
	if (r == 0 && rep.nfds > 0) {
		r = sb_rr_chan_open(&rep, p->epfd, &ch);
		if (r == 0 && (r = add_chan(p, ch)) < 0) {
			sb_rr_chan_close(ch, p->epfd);
		}
	} else if (r == 0) {
		*more = false;
	}
	sb_client_reply_fini(&rep);
	return r;
}

int sb_rr_refresh(struct sb_rr_party *p)
{
	/* Pairs with the broker's release increment: the channel it made
	 * before the increment is there to ask for. */
	uint64_t gen =
	    atomic_load_explicit(&p->page->gen, memory_order_acquire);
	bool more = true;
	int r = 0;

	if (p->have_gen && gen == p->known_gen) {
		return 0;
	}
	while (r == 0 && more) {
		r = fetch_chan(p, &more);
	}
	if (r == 0) {
		p->known_gen = gen;
		p->have_gen = true;
	}
	return r;
}

void sb_rr_drop(struct sb_rr_party *p, size_t i)
{
	struct sb_rr_chan *ch = p->v[i];

	p->v[i] = p->v[--p->n];
	sb_rr_chan_close(ch, p->epfd);
}
