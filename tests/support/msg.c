/*
 * msg.c - see msg.h.
 */
#include "tests/support/msg.h"

#include <string.h>

#include "tests/support/testutil.h"

static uint32_t body_seed(uint32_t producer, uint64_t seq)
{
	return (uint32_t)sbt_mix64(((uint64_t)producer << 40) ^ seq ^
				   0x5eedULL);
}

static uint32_t short_seed(uint32_t producer, size_t len)
{
	return 0x9e3779b9u * (producer + 1) + (uint32_t)len;
}

static uint32_t check_word(uint32_t producer, uint64_t seq, size_t len)
{
	uint64_t h = sbt_mix64(((uint64_t)producer << 32) ^ len);

	return (uint32_t)sbt_mix64(h ^ seq);
}

void sbt_msg_build(void *buf, size_t len, uint32_t producer, uint64_t seq)
{
	unsigned char *m = buf;
	uint32_t check;

	if (len < SBT_MSG_HEAD) {
		sbt_fill_pattern(m, len, short_seed(producer, len));
		return;
	}
	check = check_word(producer, seq, len);
	memcpy(m, &producer, 4);
	memcpy(m + 4, &check, 4);
	memcpy(m + 8, &seq, 8);
	sbt_fill_pattern(m + SBT_MSG_HEAD, len - SBT_MSG_HEAD,
			 body_seed(producer, seq));
}

static int verify_short(const unsigned char *m, size_t len, uint32_t producers,
			unsigned flags, struct sbt_msg_id *id)
{
	if ((flags & SBT_MSG_SHORT) == 0 || producers == 0) {
		return -1;
	}
	id->producer = (uint32_t)(len % producers);
	id->is_short = 1;
	return sbt_check_pattern(m, len, short_seed(id->producer, len)) ? 0
									: -1;
}

int sbt_msg_verify(const void *buf, size_t len, uint32_t producers,
		   unsigned flags, struct sbt_msg_id *id)
{
	const unsigned char *m = buf;
	uint32_t check;

	memset(id, 0, sizeof(*id));
	if (len < SBT_MSG_HEAD) {
		return verify_short(m, len, producers, flags, id);
	}
	memcpy(&id->producer, m, 4);
	memcpy(&check, m + 4, 4);
	memcpy(&id->seq, m + 8, 8);
	if (id->producer >= producers ||
	    check != check_word(id->producer, id->seq, len) ||
	    !sbt_check_pattern(m + SBT_MSG_HEAD, len - SBT_MSG_HEAD,
			       body_seed(id->producer, id->seq))) {
		return -1;
	}
	return 0;
}

size_t sbt_msg_len(uint32_t producer, uint64_t seq)
{
	return SBT_MSG_HEAD + (size_t)((seq * 7 + producer * 13) % 201);
}

size_t sbt_make_msg(unsigned char *buf, uint32_t seq, uint32_t producer)
{
	size_t len = sbt_msg_len(producer, seq);

	sbt_msg_build(buf, len, producer, seq);
	return len;
}

int sbt_check_msg(const unsigned char *buf, size_t len, uint32_t producers,
		  uint32_t *seq, uint32_t *producer)
{
	struct sbt_msg_id id;

	if (sbt_msg_verify(buf, len, producers, 0, &id) < 0 ||
	    id.seq > UINT32_MAX || len != sbt_msg_len(id.producer, id.seq)) {
		return -1;
	}
	*seq = (uint32_t)id.seq;
	*producer = id.producer;
	return 0;
}
