/*
 * transports.c - the table of transports shmbus-bench can measure. This is
 * the registration point: a transport defined in bench/tr_<name>.c and
 * declared in transports.h is measured once it has a line here.
 */
#include "bench/transports.h"

#include <string.h>

const struct sb_tr_ops *const sb_tr_table[] = {
    /* The references shmbus is read against: the bare hand-off of one
     * line, and the plain ring of issue #6. */
    &sb_tr_floor,
    &sb_tr_spsc,
    /* The shmbus ring. */
    &sb_tr_shmbus_spin,
    &sb_tr_shmbus_block,
    &sb_tr_shmbus_wait,
    &sb_tr_shmbus_zerocopy,
    &sb_tr_shmbus_batch,
    &sb_tr_shmbus_checksum,
    /* The kernel's baselines. */
    &sb_tr_unix,
    &sb_tr_pipe,
};

const size_t sb_tr_table_len = sizeof(sb_tr_table) / sizeof(sb_tr_table[0]);

const struct sb_tr_ops *sb_tr_find(const char *name)
{
	for (size_t i = 0; i < sb_tr_table_len; i++) {
		if (strcmp(sb_tr_table[i]->name, name) == 0) {
			return sb_tr_table[i];
		}
	}
	return NULL;
}
