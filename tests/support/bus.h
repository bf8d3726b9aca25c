/*
 * bus.h - the bus API (include/shmbus/shmbus.h) as the Check suites of the
 * client drive it against a real broker: a connection, a topic, and the
 * messages of msg.h, of lengths varying with their seq, published and
 * received by copy or zero-copy. sbt_bus_up() and sbt_bus_topic() assert;
 * the rest returns codes, for forked children too.
 */
#ifndef SB_TESTS_BUS_H
#define SB_TESTS_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "shmbus/shmbus.h"
#include "tests/support/broker_harness.h"

/* Bound on every wait: never reached in a healthy run. */
#define SBT_BUS_BOUND_MS 10000

/* The largest message sent; topics take it with room to spare. */
#define SBT_BUS_MAX_PAYLOAD 1000

/* Connects to the broker `b` as `name`. */
shmbus *sbt_bus_up(const struct sbt_broker *b, const char *name);

/* Creates `topic` for messages up to SBT_BUS_MAX_PAYLOAD. */
void sbt_bus_topic(shmbus *bus, const char *topic, uint64_t capacity, int mode,
		   int overflow);

/* Builds message `seq` of `producer` in buf (SBT_BUS_MAX_PAYLOAD bytes);
 * returns its length. */
size_t sbt_bus_msg_make(unsigned char *buf, uint32_t seq, uint32_t producer);

/* Returns 1, with its seq and producer, when `buf` is a whole message. */
int sbt_bus_msg_check(const void *buf, size_t len, uint32_t *seq,
		      uint32_t *producer);

/* Publishes message `seq` of `producer`, by copy or zero-copy. Returns 0
 * or a code. */
int sbt_bus_publish(shmbus_pub *pub, uint32_t seq, uint32_t producer,
		    int zero_copy);

/* Receives one message by copy or peek and checks it. Returns 0, a code,
 * or -EBADMSG when it was not whole. */
int sbt_bus_receive(shmbus_sub *sub, int zero_copy, uint32_t *seq,
		    uint32_t *producer);

#endif
