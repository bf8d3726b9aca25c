/*
 * linger.c - closed topic mappings kept for the next open of the same
 * topic (see linger.h for why and for the bounds).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "client/linger.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int sb_linger_init(struct sb_linger *l)
{
	memset(l->entries, 0, sizeof(l->entries));
	return -pthread_mutex_init(&l->lock, NULL);
}

void sb_linger_unmap(struct sb_linger_segs *segs)
{
	if (segs->data != NULL) {
		munmap(segs->data, segs->key.data_size);
		segs->data = NULL;
	}
	if (segs->ctl != NULL) {
		munmap(segs->ctl, segs->key.ctl_size);
		segs->ctl = NULL;
	}
}

void sb_linger_fini(struct sb_linger *l)
{
	for (int i = 0; i < SB_LINGER_MAX; i++) {
		if (l->entries[i].used) {
			sb_linger_unmap(&l->entries[i].segs);
			l->entries[i].used = 0;
		}
	}
	pthread_mutex_destroy(&l->lock);
}

static int same_key(const struct sb_linger_key *a,
		    const struct sb_linger_key *b)
{
	return a->data_dev == b->data_dev && a->data_ino == b->data_ino &&
	       a->ctl_dev == b->ctl_dev && a->ctl_ino == b->ctl_ino &&
	       a->data_size == b->data_size && a->ctl_size == b->ctl_size &&
	       a->data_prot == b->data_prot;
}

/*
 * Under the lock: moves every entry older than SB_LINGER_MS into `stale`
 * (room for SB_LINGER_MAX), for the caller to unmap after unlocking.
 * Returns how many.
 */
static int collect_stale(struct sb_linger *l, uint64_t now,
			 struct sb_linger_segs *stale)
{
	int n = 0;

	for (int i = 0; i < SB_LINGER_MAX; i++) {
		struct sb_linger_entry *e = &l->entries[i];

		if (e->used && now - e->since_ns > SB_LINGER_MS * 1000000ull) {
			stale[n++] = e->segs;
			e->used = 0;
		}
	}
	return n;
}

static void unmap_all(struct sb_linger_segs *segs, int n)
{
	for (int i = 0; i < n; i++) {
		sb_linger_unmap(&segs[i]);
	}
}

int sb_linger_take(struct sb_linger *l, const struct sb_linger_key *key,
		   struct sb_linger_segs *out)
{
	struct sb_linger_segs stale[SB_LINGER_MAX];
	int found = 0, nstale;

	pthread_mutex_lock(&l->lock);
	nstale = collect_stale(l, now_ns(), stale);
	for (int i = 0; i < SB_LINGER_MAX && !found; i++) {
		struct sb_linger_entry *e = &l->entries[i];

		if (e->used && same_key(&e->segs.key, key)) {
			*out = e->segs;
			e->used = 0;
			found = 1;
		}
	}
	pthread_mutex_unlock(&l->lock);
	unmap_all(stale, nstale);
	return found;
}

/* Under the lock: a free entry, or the oldest one emptied into *evicted
 * (evicted->data is NULL when nothing was). */
static struct sb_linger_entry *free_entry(struct sb_linger *l,
					  struct sb_linger_segs *evicted)
{
	struct sb_linger_entry *oldest = &l->entries[0];

	memset(evicted, 0, sizeof(*evicted));
	for (int i = 0; i < SB_LINGER_MAX; i++) {
		if (!l->entries[i].used) {
			return &l->entries[i];
		}
		if (l->entries[i].since_ns < oldest->since_ns) {
			oldest = &l->entries[i];
		}
	}
	*evicted = oldest->segs;
	oldest->used = 0;
	return oldest;
}

void sb_linger_put(struct sb_linger *l, const struct sb_linger_segs *segs)
{
	struct sb_linger_segs stale[SB_LINGER_MAX];
	struct sb_linger_segs evicted;
	struct sb_linger_entry *e;
	uint64_t now = now_ns();
	int nstale;

	pthread_mutex_lock(&l->lock);
	nstale = collect_stale(l, now, stale);
	e = free_entry(l, &evicted);
	e->segs = *segs;
	e->since_ns = now;
	e->used = 1;
	pthread_mutex_unlock(&l->lock);
	unmap_all(stale, nstale);
	sb_linger_unmap(&evicted);
}

size_t sb_linger_count(struct sb_linger *l)
{
	size_t n = 0;

	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < SB_LINGER_MAX; i++) {
		n += l->entries[i].used != 0;
	}
	pthread_mutex_unlock(&l->lock);
	return n;
}
