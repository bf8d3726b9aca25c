/*
 * subset.c - the subscribers of one `shmbus sub`: the topics named on the
 * command line, and for each pattern a watch (shmbus_watch_*) whose topics
 * are subscribed to as they appear, drained and closed as they go. The
 * command's loop polls their descriptors (sb_cli_subset_pollfds) and
 * calls sb_cli_subset_service() when any is readable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/subset.h"

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *p;

	if (n < *cap) {
		return 0;
	}
	p = realloc(*v, (*cap != 0 ? *cap * 2 : 8) * size);
	if (p == NULL) {
		return -ENOMEM;
	}
	*v = p;
	*cap = *cap != 0 ? *cap * 2 : 8;
	return 0;
}

static struct sb_cli_sub *find(struct sb_cli_subset *s, const char *topic)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->subs[i].topic, topic) == 0) {
			return &s->subs[i];
		}
	}
	return NULL;
}

/* Opens a subscriber of `topic` into the set. 0 or a negative errno. */
static int open_sub(struct sb_cli_subset *s, const char *topic)
{
	struct sb_cli_sub *e;
	shmbus_sub *sub = NULL;
	char *name;
	int r;

	if (find(s, topic) != NULL) {
		return 0; /* a topic named twice, or listed and announced */
	}
	if (grow((void **)&s->subs, &s->cap, s->n, sizeof(*s->subs)) < 0 ||
	    (name = strdup(topic)) == NULL) {
		return -ENOMEM;
	}
	r = shmbus_sub_open(s->bus, topic, s->start, &sub);
	if (r == 0) {
		r = shmbus_sub_fd(sub);
	}
	if (r < 0) {
		if (sub != NULL) {
			shmbus_sub_close(sub);
		}
		free(name);
		return r;
	}
	e = &s->subs[s->n++];
	*e = (struct sb_cli_sub){.topic = name, .sub = sub};
	return 0;
}

void sb_cli_subset_close_sub(struct sb_cli_subset *s, struct sb_cli_sub *e)
{
	shmbus_sub_close(e->sub);
	free(e->topic);
	*e = s->subs[--s->n];
}

int sb_cli_subset_add_topic(struct sb_cli_subset *s, const char *topic)
{
	int r = open_sub(s, topic);

	return r < 0 ? sb_cli_fail_errno("sub", topic, r, NULL) : 0;
}

int sb_cli_subset_add_pattern(struct sb_cli_subset *s, const char *pattern)
{
	struct sb_cli_watch *w;
	int r;

	if (grow((void **)&s->watches, &s->wcap, s->nwatches,
		 sizeof(*s->watches)) < 0) {
		return sb_cli_fail(SB_EXIT_ERROR, "sub", "out of memory");
	}
	w = &s->watches[s->nwatches];
	w->pattern = pattern;
	r = shmbus_watch_open(s->bus, pattern, &w->watch);
	if (r < 0) {
		return sb_cli_fail_errno("sub", NULL, r,
					 r == -ENOTSUP
					     ? "this broker does not tell of "
					       "topics as they appear "
					       "(topic_watch)"
					     : NULL);
	}
	s->nwatches++;
	return 0;
}

/* A topic the watch announced: subscribed to, or said why not (the
 * command goes on with the others). One removed and not yet drained is
 * reopened once it is (sb_cli_subset_retire). */
static void follow(struct sb_cli_subset *s, const char *topic)
{
	struct sb_cli_sub *e = find(s, topic);
	int r;

	if (e != NULL && e->gone) {
		e->reopen = true;
		return;
	}
	r = open_sub(s, topic);

	if (r == -ENOENT) {
		return; /* removed again before we got there */
	}
	if (r < 0) {
		fflush(stdout);
		fprintf(stderr, "shmbus: sub: not following topic \"%s\": %s\n",
			topic, shmbus_strerror(r));
	}
}

void sb_cli_subset_retire(struct sb_cli_subset *s, struct sb_cli_sub *e)
{
	char *topic = e->reopen ? strdup(e->topic) : NULL;

	sb_cli_subset_close_sub(s, e);
	if (topic != NULL) {
		follow(s, topic);
		free(topic);
	}
}

/* Takes every event waiting on `w`. 0 or the exit status. */
static int take_events(struct sb_cli_subset *s, struct sb_cli_watch *w)
{
	char topic[SHMBUS_TOPIC_MAX + 1];
	struct sb_cli_sub *e;
	int event, r;

	while ((r = shmbus_watch_next(w->watch, &event, topic, sizeof(topic),
				      0)) == 0) {
		switch (event) {
		case SHMBUS_WATCH_CREATED:
			follow(s, topic);
			break;
		case SHMBUS_WATCH_DELETED:
			/* Its last messages are read before it goes. */
			e = find(s, topic);
			if (e != NULL) {
				e->gone = true;
				e->reopen = false;
			}
			break;
		case SHMBUS_WATCH_OVERFLOW:
			/* Events were lost: learn the current set again. */
			shmbus_watch_close(w->watch);
			r = shmbus_watch_open(s->bus, w->pattern, &w->watch);
			if (r < 0) {
				return sb_cli_fail_errno("sub", NULL, r, NULL);
			}
			break;
		default:
			break; /* LISTED */
		}
	}
	if (r != -EAGAIN) {
		return sb_cli_fail_errno("sub", NULL, r,
					 r == -ECONNRESET
					     ? "the broker went away while "
					       "following a pattern"
					     : NULL);
	}
	return 0;
}

int sb_cli_subset_events(struct sb_cli_subset *s)
{
	for (size_t i = 0; i < s->nwatches; i++) {
		int status = take_events(s, &s->watches[i]);

		if (status != 0) {
			return status;
		}
	}
	return 0;
}

size_t sb_cli_subset_pollfds(const struct sb_cli_subset *s, struct pollfd *fds,
			     size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n && n < max; i++) {
		fds[n++] = (struct pollfd){.fd = shmbus_sub_fd(s->subs[i].sub),
					   .events = POLLIN};
	}
	for (size_t i = 0; i < s->nwatches && n < max; i++) {
		fds[n++] =
		    (struct pollfd){.fd = shmbus_watch_fd(s->watches[i].watch),
				    .events = POLLIN};
	}
	return n;
}

void sb_cli_subset_fini(struct sb_cli_subset *s)
{
	while (s->n > 0) {
		sb_cli_subset_close_sub(s, &s->subs[0]);
	}
	for (size_t i = 0; i < s->nwatches; i++) {
		shmbus_watch_close(s->watches[i].watch);
	}
	free(s->subs);
	free(s->watches);
	if (s->bus != NULL) {
		shmbus_close(s->bus);
	}
	memset(s, 0, sizeof(*s));
}
