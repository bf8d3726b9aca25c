/*
 * metadata.h - the metadata a topic created with "metadata" puts before
 * each payload (metadata.c). Prefix: sb_meta_. Not installed.
 */
#ifndef SB_CLIENT_METADATA_H
#define SB_CLIENT_METADATA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring/ring.h"

struct sb_meta {
	int64_t time_ns; /* CLOCK_REALTIME at publish, as the publisher says */
	uint64_t publisher; /* its client id, as it says */
};

/* Writes the metadata (now, `publisher`) at the start of a record's
 * payload. */
void sb_meta_stamp(void *record_payload, uint64_t publisher);

/* Reads the metadata at the start of a record's payload. */
void sb_meta_read(const void *record_payload, struct sb_meta *m);

/* The largest message a user may publish: max_message less the metadata. */
uint32_t sb_meta_max_payload(const struct sb_ring *ring);

/* Publishes `len` bytes after fresh metadata: one claim and commit. */
int sb_meta_publish(struct sb_ring *ring, uint64_t publisher, const void *data,
		    uint32_t len, int timeout_ms);

/* sb_ring_peek() of the message after the metadata, which goes to *m. A
 * record too short to hold it is consumed and gives -EBADMSG. */
int sb_meta_peek(struct sb_ring_reader *rd, const void **data, size_t *len,
		 struct sb_meta *m, int timeout_ms);

/* sb_ring_receive() of the message after the metadata, through a peek;
 * -EMSGSIZE leaves the message unread. */
ssize_t sb_meta_receive(struct sb_ring_reader *rd, void *buf, size_t cap,
			struct sb_meta *m, int timeout_ms);

#endif
