/*
 * subset.h - what `shmbus sub` receives from: one subscriber per topic,
 * named or found through a pattern's watch (subset.c). Prefix: sb_cli_.
 */
#ifndef SB_TOOLS_SUBSET_H
#define SB_TOOLS_SUBSET_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "tools/cli.h"

struct sb_cli_sub {
	char *topic;
	shmbus_sub *sub;
	uint64_t lost; /* as last reported */
	bool gone;     /* the topic was removed: close once drained */
	bool reopen;   /* and created again since: then open the new one */
};

struct sb_cli_watch {
	const char *pattern; /* argv's */
	shmbus_watch *watch;
};

struct sb_cli_subset {
	shmbus *bus; /* kept: topics found later are opened on it */
	int start;   /* SHMBUS_START_LATEST or _EARLIEST */
	struct sb_cli_sub *subs;
	size_t n, cap;
	struct sb_cli_watch *watches;
	size_t nwatches, wcap;
};

/* Subscribes to `topic` now. Returns 0 or the exit status after
 * reporting. */
int sb_cli_subset_add_topic(struct sb_cli_subset *s, const char *topic);

/* Watches `pattern` (checked): each topic it lists or announces is
 * subscribed to, and closed once removed and drained. Returns 0 or the
 * exit status after reporting. */
int sb_cli_subset_add_pattern(struct sb_cli_subset *s, const char *pattern);

/* Takes the watches' waiting events. Returns 0 or the exit status. */
int sb_cli_subset_events(struct sb_cli_subset *s);

/* Fills `fds` with the subscribers' and watches' descriptors (at most
 * `max`); returns how many. */
size_t sb_cli_subset_pollfds(const struct sb_cli_subset *s, struct pollfd *fds,
			     size_t max);

/* Closes one subscriber (the last one takes its place in the array). */
void sb_cli_subset_close_sub(struct sb_cli_subset *s, struct sb_cli_sub *e);

/* Closes a drained subscriber of a removed topic, and subscribes to the
 * topic of that name again if it was created anew meanwhile (appended). */
void sb_cli_subset_retire(struct sb_cli_subset *s, struct sb_cli_sub *e);

/* Closes everything, the connection too. */
void sb_cli_subset_fini(struct sb_cli_subset *s);

#endif
