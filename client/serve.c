/*
 * serve.c - the server's side of request and reply (shmbus.h): the
 * channels the broker gives it (asked for when its page says a requester
 * made one), requests taken from them in turn, replies written back on
 * the channel a request came on and never waited for. Nothing here trusts
 * a requester: it can write only its request segment, whose records are
 * checked (ring/chan.c); a channel that breaks the rules is dropped and
 * the others go on being served.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/bus_internal.h"
#include "client/reqrep.h"
#include "wire/topic_name.h"

struct shmbus_server {
	struct sb_rr_party p; /* page: the server's (gen: channels given) */
	int efd;	      /* the broker wakes us: a new channel */
	size_t next;	      /* the channel the next receive looks at first */
	struct sb_rr_chan *claim; /* holds a reply claim */
	uint64_t dropped;
};

/* Drops the channels whose requester went or that broke the rules (a
 * held claim's channel stays until it is committed). */
static void prune(shmbus_server *srv)
{
	for (size_t i = 0; i < srv->p.n;) {
		struct sb_rr_chan *ch = srv->p.v[i];

		if (ch != srv->claim &&
		    (ch->dead || sb_rr_chan_state(ch) != SB_CHAN_OPEN)) {
			sb_rr_drop(&srv->p, i);
			continue;
		}
		i++;
	}
	if (srv->next >= srv->p.n) {
		srv->next = 0;
	}
}

/* The next request of any channel, from `srv->next` on: 0 with its
 * channel and record, or -EAGAIN. */
static int next_request(shmbus_server *srv, struct sb_rr_chan **out,
			uint64_t *corr, const void **data, size_t *len)
{
	for (size_t k = 0; k < srv->p.n; k++) {
		size_t i = (srv->next + k) % srv->p.n;
		struct sb_rr_chan *ch = srv->p.v[i];
		int r;

		if (ch->dead) {
			continue;
		}
		r = sb_chan_peek(&ch->end, corr, data, len);
		if (r == 0) {
			srv->next = i;
			*out = ch;
			return 0;
		}
		if (r == -EBADMSG) {
			/* A requester that wrote garbage fails only its own
			 * channel. */
			ch->dead = true;
			srv->dropped++;
		}
	}
	return -EAGAIN;
}

SHMBUS_API ssize_t shmbus_serve_receive(shmbus_server *srv, void *buf,
					size_t cap, struct shmbus_reqref *req,
					int timeout_ms)
{
	struct sb_wait w = sb_wait_start(timeout_ms);
	struct sb_rr_chan *ch;
	const void *data;
	uint64_t corr;
	size_t len;
	int r;

	if (srv == NULL || req == NULL || (buf == NULL && cap != 0)) {
		return -EINVAL;
	}
	sb_rr_disarm(&srv->p);
	for (;;) {
		r = sb_rr_refresh(&srv->p);
		if (r < 0) {
			return r;
		}
		prune(srv);
		if (next_request(srv, &ch, &corr, &data, &len) == 0) {
			break;
		}
		if (timeout_ms == 0) {
			/* Armed for the caller's poll of shmbus_serve_fd()
			 * unless news came meanwhile. */
			if (sb_rr_arm(&srv->p)) {
				sb_rr_disarm(&srv->p);
				continue;
			}
			return -EAGAIN;
		}
		r = sb_rr_sleep(&srv->p, &w);
		if (r < 0) {
			return r;
		}
	}
	if (len > cap) {
		return -EMSGSIZE; /* it stays */
	}
	memcpy(buf, data, len);
	sb_chan_consume(&ch->end);
	srv->next = (srv->next + 1) % srv->p.n; /* the others' turn */
	req->channel = ch->id;
	req->id = corr;
	return (ssize_t)len;
}

static struct sb_rr_chan *find_chan(shmbus_server *srv, uint64_t id)
{
	for (size_t i = 0; i < srv->p.n; i++) {
		if (srv->p.v[i]->id == id) {
			return srv->p.v[i];
		}
	}
	return NULL;
}

SHMBUS_API int shmbus_reply_claim(shmbus_server *srv,
				  const struct shmbus_reqref *req, size_t len,
				  void **buf)
{
	struct sb_rr_chan *ch;
	int r;

	if (srv == NULL || req == NULL || buf == NULL) {
		return -EINVAL;
	}
	if (srv->claim != NULL) {
		return -EBUSY;
	}
	if (len > srv->p.max_message) {
		return -EMSGSIZE;
	}
	ch = find_chan(srv, req->channel);
	if (ch == NULL || ch->dead || sb_rr_chan_state(ch) != SB_CHAN_OPEN) {
		srv->dropped++;
		return -EPIPE;
	}
	r = sb_chan_claim(&ch->end, req->id, len, buf);
	if (r == -EAGAIN) {
		srv->dropped++; /* the requester does not read */
		return r;
	}
	if (r == -EBADMSG) {
		ch->dead = true;
		srv->dropped++;
		return -EPIPE;
	}
	if (r == 0) {
		srv->claim = ch;
	}
	return r;
}

SHMBUS_API int shmbus_reply_commit(shmbus_server *srv)
{
	if (srv == NULL || srv->claim == NULL) {
		return -EINVAL;
	}
	sb_rr_chan_commit(srv->claim);
	srv->claim = NULL;
	return 0;
}

SHMBUS_API int shmbus_reply(shmbus_server *srv, const struct shmbus_reqref *req,
			    const void *data, size_t len)
{
	void *buf;
	int r;

	if (data == NULL && len != 0) {
		return -EINVAL;
	}
	r = shmbus_reply_claim(srv, req, len, &buf);
	if (r == 0) {
		if (len > 0) {
			memcpy(buf, data, len);
		}
		r = shmbus_reply_commit(srv);
	}
	return r;
}

/* Puts the broker's eventfd (the reply's second descriptor) in the epoll
 * set. */
static int take_efd(shmbus_server *srv, struct sb_client_reply *rep)
{
	int r = sb_rr_epoll_add(srv->p.epfd, rep->fds[1]);

	if (r == 0) {
		srv->efd = rep->fds[1];
		rep->fds[1] = -1;
	}
	return r;
}

SHMBUS_API int shmbus_serve_open(shmbus *bus, const char *service,
				 shmbus_server **out)
{
	struct sb_client_reply rep;
	shmbus_server *srv;
	int r;

	if (out != NULL) {
		*out = NULL;
	}
	if (bus == NULL || out == NULL || service == NULL ||
	    sb_topic_name_check(service, NULL, 0) < 0) {
		return -EINVAL;
	}
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		return -ENOMEM;
	}
	srv->efd = -1;
	r = sb_rr_party_init(&srv->p, bus, "serve_channel", "server", true);
	sb_client_reply_init(&rep);
	if (r == 0) {
		r = sb_rr_party_open(&srv->p, "serve_open", service, 2, &rep);
	}
	if (r == 0) {
		r = take_efd(srv, &rep);
	}
	sb_client_reply_fini(&rep);
	if (r < 0) {
		shmbus_serve_close(srv);
		return r;
	}
	*out = srv;
	return 0;
}

SHMBUS_API int shmbus_serve_fd(const shmbus_server *srv)
{
	return srv != NULL ? srv->p.epfd : -EINVAL;
}

SHMBUS_API size_t shmbus_serve_max_request(const shmbus_server *srv)
{
	return srv != NULL ? srv->p.max_message : 0;
}

SHMBUS_API size_t shmbus_serve_max_reply(const shmbus_server *srv)
{
	return srv != NULL ? srv->p.max_message : 0;
}

SHMBUS_API uint64_t shmbus_serve_dropped(const shmbus_server *srv)
{
	return srv != NULL ? srv->dropped : 0;
}

SHMBUS_API int shmbus_serve_close(shmbus_server *srv)
{
	if (srv == NULL) {
		return -EINVAL;
	}
	sb_rr_party_close(&srv->p, "serve_close");
	if (srv->efd >= 0) {
		close(srv->efd);
	}
	free(srv);
	return 0;
}
