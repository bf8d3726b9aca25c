/*
 * msg.h - the self-checking message every test that moves many messages
 * sends, so that a reader tells whose message it got, which one, and that
 * it arrived whole. A message of SBT_MSG_HEAD bytes or more is
 *
 *	producer (u32), check (u32), seq (u64), body
 *
 * the body a pattern seeded from producer and seq, the check word a hash
 * of producer, seq and the length: a torn, truncated, misplaced or foreign
 * message fails sbt_msg_verify(). A shorter message (only where a test
 * asks for them, SBT_MSG_SHORT) is a pattern seeded from its producer and
 * length, its producer being its length modulo the number of producers.
 * The sender chooses the length. These helpers assert nothing, so forked
 * children and the crash-matrix program use them too.
 */
#ifndef SB_TESTS_MSG_H
#define SB_TESTS_MSG_H

#include <stddef.h>
#include <stdint.h>

#define SBT_MSG_HEAD 16u

/* sbt_msg_verify() flags: messages shorter than the head are whole too. */
#define SBT_MSG_SHORT 1u

struct sbt_msg_id {
	uint32_t producer;
	uint64_t seq; /* 0 for a short message */
	int is_short;
};

/* Writes message `seq` of `producer`, `len` bytes, into buf. */
void sbt_msg_build(void *buf, size_t len, uint32_t producer, uint64_t seq);

/* Checks `len` bytes received, from a producer below `producers`, and says
 * whose they are in *id (filled from the head even when the check fails,
 * for the failure's report). Returns 0 when whole, -1 otherwise. */
int sbt_msg_verify(const void *buf, size_t len, uint32_t producers,
		   unsigned flags, struct sbt_msg_id *id);

/* The usual length of message `seq` of `producer`: from SBT_MSG_HEAD to
 * SBT_MSG_MAX bytes, varying with both. */
#define SBT_MSG_MAX (SBT_MSG_HEAD + 200)
size_t sbt_msg_len(uint32_t producer, uint64_t seq);

/* Builds message `seq` of `producer` of the usual length; returns it. */
size_t sbt_make_msg(unsigned char *buf, uint32_t seq, uint32_t producer);

/* Checks a message of sbt_make_msg() from a producer below `producers`,
 * its length included, filling *seq and *producer. Returns 0 or -1. */
int sbt_check_msg(const unsigned char *buf, size_t len, uint32_t producers,
		  uint32_t *seq, uint32_t *producer);

#endif
