/*
 * metadata.c - messages of topics created with "metadata": each payload
 * in the ring starts with SB_RING_METADATA_BYTES that the publisher's
 * library writes (the publish time, CLOCK_REALTIME ns, and the publisher's
 * client id, both 8 bytes in host order) and the subscriber's library
 * strips, reporting them through shmbus_msg_info. The ring carries them as
 * payload, so checksums, persistence and the bounds checks cover them as
 * they do the rest. A subscriber trusts nothing of them: a record shorter
 * than the metadata is refused (-EBADMSG) and passed over, and the time
 * and id are whatever the publisher wrote.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "client/metadata.h"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void sb_meta_stamp(void *record_payload, uint64_t publisher)
{
	int64_t t = now_ns();

	memcpy(record_payload, &t, sizeof(t));
	memcpy((char *)record_payload + 8, &publisher, sizeof(publisher));
}

void sb_meta_read(const void *record_payload, struct sb_meta *m)
{
	memcpy(&m->time_ns, record_payload, sizeof(m->time_ns));
	memcpy(&m->publisher, (const char *)record_payload + 8,
	       sizeof(m->publisher));
}

uint32_t sb_meta_max_payload(const struct sb_ring *ring)
{
	return ring->max_message > SB_RING_METADATA_BYTES
		   ? ring->max_message - SB_RING_METADATA_BYTES
		   : 0;
}

int sb_meta_publish(struct sb_ring *ring, uint64_t publisher, const void *data,
		    uint32_t len, int timeout_ms)
{
	struct sb_ring_claim c;
	int r;

	if (len > sb_meta_max_payload(ring)) {
		return -EMSGSIZE;
	}
	r = sb_ring_claim(ring, len + SB_RING_METADATA_BYTES, &c, timeout_ms);
	if (r < 0) {
		return r;
	}
	if (len != 0) {
		memcpy((char *)c.data + SB_RING_METADATA_BYTES, data, len);
	}
	sb_meta_stamp(c.data, publisher);
	return sb_ring_commit(ring, &c);
}

int sb_meta_peek(struct sb_ring_reader *rd, const void **data, size_t *len,
		 struct sb_meta *m, int timeout_ms)
{
	const void *p;
	uint32_t n;
	int r = sb_ring_peek(rd, &p, &n, timeout_ms);

	if (r < 0) {
		return r;
	}
	if (n < SB_RING_METADATA_BYTES) {
		/* Not written by a library: consumed, and said. */
		(void)sb_ring_release(rd);
		return -EBADMSG;
	}
	sb_meta_read(p, m);
	*data = (const char *)p + SB_RING_METADATA_BYTES;
	*len = n - SB_RING_METADATA_BYTES;
	return 0;
}

ssize_t sb_meta_receive(struct sb_ring_reader *rd, void *buf, size_t cap,
			struct sb_meta *m, int timeout_ms)
{
	for (;;) {
		const void *data;
		size_t len;
		int r = sb_meta_peek(rd, &data, &len, m, timeout_ms);

		if (r < 0) {
			return r;
		}
		if (len > cap) {
			(void)sb_ring_unpeek(rd);
			return -EMSGSIZE; /* it stays, as receive promises */
		}
		if (len != 0) {
			memcpy(buf, data, len);
		}
		r = sb_ring_release(rd);
		if (r != -ESTALE) {
			return r < 0 ? r : (ssize_t)len;
		}
		/* Overwritten while copied (the overwrite policy) or taken
		 * by another consumer: the copy may be torn; the next one. */
	}
}
