/*
 * chan_read.c - libFuzzer target for a request/reply channel's reader and
 * writer (ring/chan.c): the input is what a hostile peer leaves in its
 * segment -- its tail (8 bytes), its read position in ours (8 bytes), then
 * its records (up to the 4096-byte area). The end under test reads every
 * record it accepts and then writes a few of its own.
 *
 * Oracles: no crash or sanitizer report; every accepted record lies inside
 * the peer's area and within max_message; every claim lies inside our own
 * area; a refusal is -EAGAIN, -EBADMSG or -EMSGSIZE, and once broken the
 * end stays broken.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring/chan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 4096u
#define MAX 1024u

static void die_if(int bad)
{
	if (bad) {
		abort();
	}
}

static void read_all(struct sb_chan_end *e, const uint8_t *area)
{
	unsigned char copy[MAX];

	/* A 4096-byte area holds at most 256 records. */
	for (int i = 0; i < 300; i++) {
		const void *p;
		uint64_t id;
		size_t len;
		int r = sb_chan_peek(e, &id, &p, &len);

		if (r != 0) {
			die_if(r != -EAGAIN && r != -EBADMSG);
			die_if(r == -EBADMSG &&
			       sb_chan_peek(e, &id, &p, &len) != -EBADMSG);
			return;
		}
		die_if(len > MAX);
		die_if((const uint8_t *)p < area ||
		       (const uint8_t *)p + len > area + CAP);
		memcpy(copy, p, len);
		sb_chan_consume(e);
	}
}

static void write_some(struct sb_chan_end *e, const uint8_t *area)
{
	static const size_t lens[] = {0, 1, 100, MAX, MAX + 1, 3000};

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		void *buf;
		int r = sb_chan_claim(e, i, lens[i], &buf);

		if (r == 0) {
			die_if((uint8_t *)buf < area ||
			       (uint8_t *)buf + lens[i] > area + CAP);
			memset(buf, 0x5a, lens[i]);
			(void)sb_chan_commit(e);
		} else {
			die_if(r != -EAGAIN && r != -EBADMSG && r != -EMSGSIZE);
			die_if(r == -EMSGSIZE && lens[i] <= MAX);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *own, *peer;
	struct sb_chan_hdr *ph;
	struct sb_chan_end e;
	uint64_t v;

	if (own == NULL) {
		own = aligned_alloc(4096, SB_CHAN_HEADER_SIZE + CAP);
		peer = aligned_alloc(4096, SB_CHAN_HEADER_SIZE + CAP);
		die_if(own == NULL || peer == NULL);
	}
	memset(own, 0, SB_CHAN_HEADER_SIZE + CAP);
	memset(peer, 0, SB_CHAN_HEADER_SIZE + CAP);
	ph = (struct sb_chan_hdr *)peer;
	if (size >= 8) {
		memcpy(&v, data, 8);
		atomic_store(&ph->tail, v);
	}
	if (size >= 16) {
		memcpy(&v, data + 8, 8);
		atomic_store(&ph->head, v);
	}
	if (size > 16) {
		size_t n = size - 16 < CAP ? size - 16 : CAP;

		memcpy(peer + SB_CHAN_HEADER_SIZE, data + 16, n);
	}
	die_if(sb_chan_end_init(&e, own, peer, CAP, MAX) != 0);
	read_all(&e, peer + SB_CHAN_HEADER_SIZE);
	write_some(&e, own + SB_CHAN_HEADER_SIZE);
	return 0;
}
