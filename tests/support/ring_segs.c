/*
 * ring_segs.c - see ring_segs.h.
 */
#include "tests/support/ring_segs.h"

#include <check.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/support/testutil.h"

static size_t page_round(uint64_t size, size_t page)
{
	return (size_t)((size + page - 1) / page * page);
}

/* Makes the page at `p` a guard: any access faults. */
static void guard(unsigned char *p, size_t page)
{
	ck_assert_int_eq(mprotect(p, page, PROT_NONE), 0);
}

void *sbt_shared_zeroed(size_t size)
{
	void *p = sbt_shared_alloc(size);

	ck_assert_ptr_nonnull(p);
	return p;
}

void sbt_segs_create(struct sbt_segs *s, const struct sb_ring_config *cfg)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_span, ctl_span;

	ck_assert_int_eq(sb_ring_layout(cfg, &s->data_size, &s->ctl_size), 0);
	data_span = page_round(s->data_size, page);
	ctl_span = page_round(s->ctl_size, page);
	s->map_size = 3 * page + data_span + ctl_span;
	s->base = sbt_shared_zeroed(s->map_size);
	s->data = s->base + page;
	s->ctl = s->base + 2 * page + data_span;
	guard(s->base, page);
	guard((unsigned char *)s->data + data_span, page);
	guard((unsigned char *)s->ctl + ctl_span, page);
	ck_assert_int_eq(
	    sb_ring_format(s->data, s->data_size, s->ctl, s->ctl_size, cfg), 0);
}

void sbt_segs_attach(const struct sbt_segs *s, struct sb_ring *ring)
{
	ck_assert_int_eq(
	    sb_ring_attach(ring, s->data, s->data_size, s->ctl, s->ctl_size),
	    0);
}

void sbt_segs_open(struct sbt_segs *s, const struct sb_ring_config *cfg)
{
	sbt_segs_create(s, cfg);
	sbt_segs_attach(s, &s->ring);
}

void sbt_segs_destroy(struct sbt_segs *s)
{
	munmap(s->base, s->map_size);
}
