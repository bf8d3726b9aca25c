/*
 * bus.c - see bus.h.
 */
#include "tests/support/bus.h"

#include <check.h>
#include <errno.h>
#include <string.h>

#include "tests/support/msg.h"

shmbus *sbt_bus_up(const struct sbt_broker *b, const char *name)
{
	shmbus *bus = NULL;
	int r = shmbus_connect(b->socket, name, &bus);

	ck_assert_msg(r == 0, "connect: %s", shmbus_strerror(r));
	return bus;
}

void sbt_bus_topic(shmbus *bus, const char *topic, uint64_t capacity, int mode,
		   int overflow)
{
	struct shmbus_topic_config cfg = {
	    .capacity = capacity,
	    .max_message = SBT_BUS_MAX_PAYLOAD + 24,
	    .mode = mode,
	    .overflow = overflow,
	};
	int r = shmbus_topic_create(bus, topic, &cfg);

	ck_assert_msg(r == 0, "topic_create: %s", shmbus_strerror(r));
}

/* Message `seq`'s length: it varies with seq. */
static size_t msg_len(uint32_t seq)
{
	return SBT_MSG_HEAD +
	       (seq * 7919u) % (SBT_BUS_MAX_PAYLOAD - SBT_MSG_HEAD);
}

size_t sbt_bus_msg_make(unsigned char *buf, uint32_t seq, uint32_t producer)
{
	size_t len = msg_len(seq);

	sbt_msg_build(buf, len, producer, seq);
	return len;
}

int sbt_bus_msg_check(const void *buf, size_t len, uint32_t *seq,
		      uint32_t *producer)
{
	struct sbt_msg_id id;

	if (sbt_msg_verify(buf, len, UINT32_MAX, 0, &id) < 0 ||
	    id.seq > UINT32_MAX) {
		return 0;
	}
	*seq = (uint32_t)id.seq;
	*producer = id.producer;
	return len == msg_len(*seq);
}

int sbt_bus_publish(shmbus_pub *pub, uint32_t seq, uint32_t producer,
		    int zero_copy)
{
	unsigned char buf[SBT_BUS_MAX_PAYLOAD];
	size_t len = sbt_bus_msg_make(buf, seq, producer);
	void *dst;
	int r;

	if (!zero_copy) {
		return shmbus_publish(pub, buf, len, SBT_BUS_BOUND_MS);
	}
	r = shmbus_claim(pub, len, &dst, SBT_BUS_BOUND_MS);
	if (r < 0) {
		return r;
	}
	memcpy(dst, buf, len);
	return shmbus_commit(pub);
}

int sbt_bus_receive(shmbus_sub *sub, int zero_copy, uint32_t *seq,
		    uint32_t *producer)
{
	unsigned char buf[SBT_BUS_MAX_PAYLOAD];
	const void *data;
	size_t len;
	ssize_t n;
	int r;

	if (!zero_copy) {
		n = shmbus_receive(sub, buf, sizeof(buf), SBT_BUS_BOUND_MS);
		if (n < 0) {
			return (int)n;
		}
		return sbt_bus_msg_check(buf, (size_t)n, seq, producer)
			   ? 0
			   : -EBADMSG;
	}
	r = shmbus_peek(sub, &data, &len, SBT_BUS_BOUND_MS);
	if (r < 0) {
		return r;
	}
	r = sbt_bus_msg_check(data, len, seq, producer) ? 0 : -EBADMSG;
	if (shmbus_release(sub) < 0) {
		return -EIO;
	}
	return r;
}
