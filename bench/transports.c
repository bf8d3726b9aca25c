/*
 * transports.c - the table of transports shmbus-bench can measure. This is
 * the registration point: a transport defined in bench/tr_<name>.c and
 * declared in transports.h is measured once it has a line here.
 */
#include "bench/transports.h"

#include <string.h>

const struct bench_tr_ops *const bench_tr_table[] = {
    /* The references shmbus is read against: the bare hand-off of one
     * line, a classic fixed-slot ring, and a ring of variable-length
     * records like shmbus's. */
    &bench_tr_floor,
    &bench_tr_classic,
    &bench_tr_spsc,
    /* shmbus through its public API, on topics a broker made. */
    &bench_tr_shmbus_spin,
    &bench_tr_shmbus_wait,
    &bench_tr_shmbus_zerocopy,
    &bench_tr_shmbus_batch,
    &bench_tr_shmbus_checksum,
    &bench_tr_shmbus_metadata,
    /* The ring alone, labelled internal: what the library adds. */
    &bench_tr_ring_spin,
    &bench_tr_ring_block,
    /* The kernel's baselines. */
    &bench_tr_unix,
    &bench_tr_pipe,
};

const size_t bench_tr_table_len =
    sizeof(bench_tr_table) / sizeof(bench_tr_table[0]);

const struct bench_tr_ops *bench_tr_find(const char *name)
{
	for (size_t i = 0; i < bench_tr_table_len; i++) {
		if (strcmp(bench_tr_table[i]->name, name) == 0) {
			return bench_tr_table[i];
		}
	}
	return NULL;
}
