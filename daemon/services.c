/*
 * services.c - request and reply on the broker's side (broker.h): the
 * registry of services, their servers and requesters, and the channel of
 * each (requester, server) pair with its memory. The broker never reads a
 * channel's records; it only writes the pages the parties read (a
 * service's set of servers, a server's new channels, a channel's state)
 * and wakes the parties through their eventfds when those change.
 */
#include "daemon/broker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"

static const struct sb_config_service *
config_service(const struct sbd_broker *b, const char *name)
{
	for (size_t i = 0; i < b->cfg.n_services; i++) {
		if (strcmp(b->cfg.services[i].name, name) == 0) {
			return &b->cfg.services[i];
		}
	}
	return NULL;
}

int sbd_service_check_rule(const struct sbd_client *c, const char *name,
			   const char *what, struct sb_msg_error *err)
{
	const struct sb_config_service *s = config_service(c->broker, name);
	const struct sb_config_access *a =
	    s != NULL ? &s->access : &c->broker->cfg.service_defaults.access;
	const struct sb_config_rule *rule =
	    strcmp(what, "serve") == 0 ? &a->serve : &a->request;

	if (sb_config_rule_allows(rule, c->cred.uid, c->cred.gids,
				  c->cred.n_gids)) {
		return 0;
	}
	sbd_info("client %" PRIu32 " (uid %lu): %s on service \"%s\" refused",
		 c->id, (unsigned long)c->cred.uid, what, name);
	return sb_msg_errorf(err, -EACCES,
			     "the %s rule of service \"%s\" refuses uid %lu",
			     what, name, (unsigned long)c->cred.uid);
}

/*
 * A sealed memfd of `size` bytes whose mode is 0400: the parties get
 * duplicates of the broker's read-write descriptor or read-only reopenings
 * of it (ops_services.c), and with 0400 none can reopen a read-only one
 * for writing through /proc (root can), as for a topic's data segment.
 */
static int memfd_0400(const char *name, const char *suffix, uint64_t size,
		      const char *what, int *fd)
{
	int r = sbd_memfd(name, suffix, size, what, fd);

	if (r == 0 && fchmod(*fd, 0400) < 0) {
		r = -errno;
		sbd_error("fchmod(%s of service \"%s\"): %s", what, name,
			  strerror(-r));
		close(*fd);
		*fd = -1;
	}
	return r;
}

/* A broker page (sb_chan_page): a sealed memfd, mapped here read-write. */
static int page_make(const char *name, const char *suffix, int *fd,
		     struct sb_chan_page **page)
{
	void *p;
	int r = memfd_0400(name, suffix, SB_CHAN_PAGE_SIZE, "page", fd);

	if (r < 0) {
		return r;
	}
	p = mmap(NULL, SB_CHAN_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 *fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		close(*fd);
		*fd = -1;
		return r;
	}
	*page = p;
	return 0;
}

static void page_free(int *fd, struct sb_chan_page **page)
{
	if (*page != NULL) {
		munmap(*page, SB_CHAN_PAGE_SIZE);
		*page = NULL;
	}
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Wakes whoever sleeps on eventfd `fd` (non-blocking: a counter already
 * at its maximum is readable anyway). */
static void wake(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: already signalled. Nothing else can happen to an
		 * eventfd write of 1. */
	}
}

static void service_free(struct sbd_service *s)
{
	struct sbd_service **pp = &s->broker->services;

	while (*pp != s) {
		pp = &(*pp)->next;
	}
	*pp = s->next;
	s->broker->n_services--;
	page_free(&s->page_fd, &s->page);
	free(s->name);
	free(s);
}

/* A service without servers or requesters goes, unless the config keeps
 * it. */
static void service_maybe_free(struct sbd_service *s)
{
	if (!s->declared && s->servers == NULL && s->requesters == NULL) {
		service_free(s);
	}
}

int sbd_service_get(struct sbd_broker *b, const char *name,
		    struct sbd_service **out, struct sb_msg_error *err)
{
	const struct sb_config_service *cs = config_service(b, name);
	struct sbd_service *s;

	for (s = b->services; s != NULL; s = s->next) {
		if (strcmp(s->name, name) == 0) {
			*out = s;
			return 0;
		}
	}
	if (cs == NULL && !b->cfg.auto_create) {
		return sb_msg_errorf(err, -ENOENT,
				     "no such service \"%s\" (auto_create is "
				     "off and the config does not declare it)",
				     name);
	}
	/* Services share the topics' bound: each holds a page. */
	if (b->n_services >= b->cfg.limits.max_topics) {
		return sb_msg_errorf(err, -ENOSPC,
				     "%" PRIu32 " services exist already "
				     "(limits.max_topics)",
				     b->n_services);
	}
	if (cs == NULL) {
		cs = &b->cfg.service_defaults;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->name = strdup(name)) == NULL) {
		free(s);
		return sb_msg_errorf(err, -ENOMEM, "out of memory");
	}
	s->broker = b;
	s->declared = cs != &b->cfg.service_defaults;
	s->capacity = cs->capacity;
	s->max_message = (uint32_t)cs->max_message;
	s->page_fd = -1;
	if (page_make(name, ":service", &s->page_fd, &s->page) < 0) {
		free(s->name);
		free(s);
		return sb_msg_errorf(err, -ENOMEM,
				     "no memory for service \"%s\"", name);
	}
	s->next = b->services;
	b->services = s;
	b->n_services++;
	*out = s;
	return 0;
}

/* The service's set of servers changed: requesters see it at their next
 * request and ask for the channels they lack. */
static void service_servers_changed(struct sbd_service *s)
{
	atomic_store_explicit(&s->page->count, s->n_servers,
			      memory_order_relaxed);
	/* Pairs with the requester's acquire load of gen. */
	atomic_fetch_add_explicit(&s->page->gen, 1, memory_order_release);
}

static int check_room(struct sbd_client *c, struct sb_msg_error *err)
{
	if (c->n_rr >= SBD_MAX_RR_PER_CLIENT) {
		return sb_msg_errorf(err, -EMFILE,
				     "this connection holds %d servers and "
				     "requesters already",
				     SBD_MAX_RR_PER_CLIENT);
	}
	return 0;
}

int sbd_server_add(struct sbd_client *c, struct sbd_service *svc,
		   struct sbd_server **out, struct sb_msg_error *err)
{
	struct sbd_server *srv;

	if (check_room(c, err) < 0) {
		return err->code;
	}
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		return sb_msg_errorf(err, -ENOMEM, "out of memory");
	}
	srv->page_fd = -1;
	srv->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->efd < 0 ||
	    page_make(svc->name, ":server", &srv->page_fd, &srv->page) < 0) {
		if (srv->efd >= 0) {
			close(srv->efd);
		}
		free(srv);
		return sb_msg_errorf(err, -ENOMEM,
				     "no memory or descriptor for a server");
	}
	srv->svc = svc;
	srv->client = c;
	srv->id = ++c->broker->next_rr_id;
	srv->next = svc->servers;
	svc->servers = srv;
	svc->n_servers++;
	srv->cnext = c->servers;
	c->servers = srv;
	c->n_rr++;
	service_servers_changed(svc);
	*out = srv;
	return 0;
}

int sbd_requester_add(struct sbd_client *c, struct sbd_service *svc,
		      struct sbd_requester **out, struct sb_msg_error *err)
{
	struct sbd_requester *rq;

	if (check_room(c, err) < 0) {
		return err->code;
	}
	rq = calloc(1, sizeof(*rq));
	if (rq == NULL) {
		return sb_msg_errorf(err, -ENOMEM, "out of memory");
	}
	rq->svc = svc;
	rq->client = c;
	rq->id = ++c->broker->next_rr_id;
	rq->next = svc->requesters;
	svc->requesters = rq;
	rq->cnext = c->requesters;
	c->requesters = rq;
	c->n_rr++;
	*out = rq;
	return 0;
}

struct sbd_server *sbd_server_find(const struct sbd_client *c, uint32_t id)
{
	struct sbd_server *s = c->servers;

	while (s != NULL && s->id != id) {
		s = s->cnext;
	}
	return s;
}

struct sbd_requester *sbd_requester_find(const struct sbd_client *c,
					 uint32_t id)
{
	struct sbd_requester *r = c->requesters;

	while (r != NULL && r->id != id) {
		r = r->cnext;
	}
	return r;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void chan_free(struct sbd_chan *ch)
{
	struct sbd_broker *b = ch->srv->client->broker;

	close_fd(&ch->req_fd);
	close_fd(&ch->rep_fd);
	close_fd(&ch->st_fd);
	close_fd(&ch->to_server);
	close_fd(&ch->to_requester);
	if (ch->state != NULL) {
		munmap(ch->state, SB_CHAN_PAGE_SIZE);
	}
	b->ring_bytes -= ch->bytes;
	free(ch);
}

/* Unlinks `ch` from its server's and its requester's lists. */
static void chan_unlink(struct sbd_chan *ch)
{
	struct sbd_chan **pp = &ch->srv->chans;

	while (*pp != ch) {
		pp = &(*pp)->snext;
	}
	*pp = ch->snext;
	pp = &ch->rq->chans;
	while (*pp != ch) {
		pp = &(*pp)->rnext;
	}
	*pp = ch->rnext;
}

/* One end of `ch` is gone: the state says which (release: what that end
 * wrote before is visible to whoever sees the state), the other end is
 * woken, and the broker lets go of the channel (each end keeps its own
 * mappings until it sees the state). */
static void chan_end(struct sbd_chan *ch, uint32_t state)
{
	atomic_store_explicit(&ch->state->state, state, memory_order_release);
	wake(state == SB_CHAN_SERVER_GONE ? ch->to_requester : ch->to_server);
	chan_unlink(ch);
	chan_free(ch);
}

static void client_unlink_server(struct sbd_server *srv)
{
	struct sbd_server **pp = &srv->client->servers;

	while (*pp != srv) {
		pp = &(*pp)->cnext;
	}
	*pp = srv->cnext;
	srv->client->n_rr--;
	pp = &srv->svc->servers;
	while (*pp != srv) {
		pp = &(*pp)->next;
	}
	*pp = srv->next;
}

void sbd_server_remove(struct sbd_server *srv)
{
	struct sbd_service *svc = srv->svc;

	sbd_debug("client %" PRIu32 ": server %" PRIu32 " of \"%s\" ends",
		  srv->client->id, srv->id, svc->name);
	while (srv->chans != NULL) {
		chan_end(srv->chans, SB_CHAN_SERVER_GONE);
	}
	client_unlink_server(srv);
	svc->n_servers--;
	service_servers_changed(svc);
	page_free(&srv->page_fd, &srv->page);
	close_fd(&srv->efd);
	free(srv);
	service_maybe_free(svc);
}

void sbd_requester_remove(struct sbd_requester *rq)
{
	struct sbd_service *svc = rq->svc;
	struct sbd_requester **pp = &rq->client->requesters;

	while (rq->chans != NULL) {
		chan_end(rq->chans, SB_CHAN_REQUESTER_GONE);
	}
	while (*pp != rq) {
		pp = &(*pp)->cnext;
	}
	*pp = rq->cnext;
	rq->client->n_rr--;
	pp = &svc->requesters;
	while (*pp != rq) {
		pp = &(*pp)->next;
	}
	*pp = rq->next;
	free(rq);
	service_maybe_free(svc);
}

static bool has_chan(const struct sbd_requester *rq,
		     const struct sbd_server *srv)
{
	for (const struct sbd_chan *ch = rq->chans; ch != NULL;
	     ch = ch->rnext) {
		if (ch->srv == srv) {
			return true;
		}
	}
	return false;
}

/* The channel's memory: two segments of the service's geometry and the
 * state page, all sealed memfds; two eventfds. */
static int chan_memory(struct sbd_chan *ch, const struct sbd_service *svc)
{
	uint64_t seg = sb_chan_segment_size(svc->capacity, svc->max_message);
	void *p;
	int r;

	ch->to_server = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ch->to_requester = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ch->to_server < 0 || ch->to_requester < 0) {
		return -errno;
	}
	r = memfd_0400(svc->name, ":request", seg, "request segment",
		       &ch->req_fd);
	if (r == 0) {
		r = memfd_0400(svc->name, ":reply", seg, "reply segment",
			       &ch->rep_fd);
	}
	if (r == 0) {
		r = memfd_0400(svc->name, ":channel", SB_CHAN_PAGE_SIZE,
			       "channel page", &ch->st_fd);
	}
	if (r < 0) {
		return r;
	}
	p = mmap(NULL, SB_CHAN_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 ch->st_fd, 0);
	if (p == MAP_FAILED) {
		return -errno;
	}
	ch->state = p;
	atomic_store_explicit(&ch->state->state, SB_CHAN_OPEN,
			      memory_order_relaxed);
	return 0;
}

int sbd_chan_make(struct sbd_requester *rq, struct sbd_chan **out,
		  struct sb_msg_error *err)
{
	struct sbd_service *svc = rq->svc;
	struct sbd_broker *b = rq->client->broker;
	struct sbd_server *srv = svc->servers;
	struct sbd_chan *ch;
	uint64_t bytes = 2 * svc->capacity;
	int r;

	while (srv != NULL && has_chan(rq, srv)) {
		srv = srv->next;
	}
	*out = NULL;
	if (srv == NULL) {
		return 0;
	}
	if (bytes > b->cfg.limits.max_ring_bytes - b->ring_bytes) {
		return sb_msg_errorf(err, -ENOSPC,
				     "a channel of service \"%s\" would pass "
				     "limits.max_ring_bytes",
				     svc->name);
	}
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL) {
		return sb_msg_errorf(err, -ENOMEM, "out of memory");
	}
	ch->req_fd = ch->rep_fd = ch->st_fd = -1;
	ch->to_server = ch->to_requester = -1;
	ch->srv = srv;
	ch->rq = rq;
	r = chan_memory(ch, svc);
	if (r < 0) {
		chan_free(ch);
		return sb_msg_errorf(err, r,
				     "no memory for a channel of service "
				     "\"%s\": %s",
				     svc->name, strerror(-r));
	}
	ch->bytes = bytes;
	b->ring_bytes += bytes;
	ch->id = ++b->next_chan_id;
	ch->snext = srv->chans;
	srv->chans = ch;
	ch->rnext = rq->chans;
	rq->chans = ch;
	/* The server learns of it through its page and asks (serve_channel);
	 * pairs with its acquire load of gen. */
	atomic_fetch_add_explicit(&srv->page->gen, 1, memory_order_release);
	wake(srv->efd);
	*out = ch;
	return 0;
}

struct sbd_chan *sbd_chan_next_for_server(const struct sbd_server *srv)
{
	struct sbd_chan *ch = srv->chans;

	while (ch != NULL && ch->server_has) {
		ch = ch->snext;
	}
	return ch;
}

bool sbd_server_has_new(const struct sbd_server *srv)
{
	return sbd_chan_next_for_server(srv) != NULL;
}

void sbd_chan_given_to_server(struct sbd_chan *ch)
{
	ch->server_has = true;
	close_fd(&ch->req_fd);
	close_fd(&ch->rep_fd);
	close_fd(&ch->st_fd);
}

void sbd_services_client_gone(struct sbd_client *c)
{
	while (c->servers != NULL) {
		sbd_server_remove(c->servers);
	}
	while (c->requesters != NULL) {
		sbd_requester_remove(c->requesters);
	}
}

void sbd_services_free_all(struct sbd_broker *b)
{
	while (b->services != NULL) {
		service_free(b->services);
	}
}
