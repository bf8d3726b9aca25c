/*
 * check_linger.c - closed topic mappings kept for the next open of the
 * same topic (client/linger.c), through the bus API against a real broker:
 * an open takes the mapping that fits it and works through it, a topic
 * created again is mapped afresh, and how many linger and for how long is
 * bounded.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client/bus_internal.h"
#include "client/linger.h"
#include "shmbus/shmbus.h"
#include "tests/suites.h"
#include "tests/support/broker_harness.h"
#include "tests/support/bus.h"

static size_t lingering(shmbus *bus)
{
	return sb_linger_count(sb_client_linger(bus));
}

/* Mappings of data and control segments of the topics named
 * "t/linger..." in this process, as /proc/self/maps lists them (slot
 * segments, "<topic>:slot:<i>", never linger: they are not counted). */
static int linger_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		n += strstr(line, "memfd:shmbus:t/linger") != NULL &&
		     strstr(line, ":slot:") == NULL;
	}
	fclose(f);
	return n;
}

/*
 * A closed pub's or sub's mapping waits for the next open of the same
 * topic, which takes it instead of mapping again, and works through it; a
 * subscriber never takes a publisher's writable data mapping, nor the
 * reverse.
 */
START_TEST(reopen_takes_the_lingering_mapping)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	uint32_t seq, producer;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_linger");
	sbt_bus_topic(bus, "t/linger", 65536, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/linger", &pub), 0);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/linger", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_uint_eq(lingering(bus), 0);
	ck_assert_int_eq(linger_mappings(), 4);

	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_uint_eq(lingering(bus), 1);
	ck_assert_int_eq(linger_mappings(), 4); /* kept, not unmapped */
	ck_assert_int_eq(shmbus_pub_open(bus, "t/linger", &pub), 0);
	ck_assert_uint_eq(lingering(bus), 0);
	ck_assert_int_eq(linger_mappings(), 4); /* taken, not mapped again */
	ck_assert_int_eq(sbt_bus_publish(pub, 7, 1, 0), 0);
	ck_assert_int_eq(sbt_bus_receive(sub, 0, &seq, &producer), 0);
	ck_assert_uint_eq(seq, 7);

	/* The sub's read-only mapping is not for a pub, and the other way. */
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_uint_eq(lingering(bus), 1);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_uint_eq(lingering(bus), 2);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/linger", &pub), 0);
	ck_assert_uint_eq(lingering(bus), 1);
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/linger", SHMBUS_START_LATEST, &sub), 0);
	ck_assert_uint_eq(lingering(bus), 0);
	ck_assert_int_eq(sbt_bus_publish(pub, 8, 1, 1), 0);
	ck_assert_int_eq(sbt_bus_receive(sub, 1, &seq, &producer), 0);
	ck_assert_uint_eq(seq, 8);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);

	/* The connection's end unmaps whatever lingers. */
	ck_assert_uint_eq(lingering(bus), 2);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(linger_mappings(), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* A topic deleted and created again is new memory: an open maps it afresh
 * and does not take the old topic's lingering mapping. */
START_TEST(recreated_topic_is_mapped_afresh)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	shmbus_sub *sub;
	uint32_t seq, producer;

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_linger");
	sbt_bus_topic(bus, "t/linger", 65536, SHMBUS_BROADCAST, SHMBUS_BLOCK);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/linger", &pub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_uint_eq(lingering(bus), 1);
	ck_assert_int_eq(shmbus_topic_delete(bus, "t/linger"), 0);
	sbt_bus_topic(bus, "t/linger", 65536, SHMBUS_BROADCAST, SHMBUS_BLOCK);

	ck_assert_int_eq(shmbus_pub_open(bus, "t/linger", &pub), 0);
	ck_assert_uint_eq(lingering(bus), 1); /* the old one, untouched */
	ck_assert_int_eq(
	    shmbus_sub_open(bus, "t/linger", SHMBUS_START_LATEST, &sub), 0);
	/* Had the pub taken the old memory, this would never arrive. */
	ck_assert_int_eq(sbt_bus_publish(pub, 3, 2, 0), 0);
	ck_assert_int_eq(sbt_bus_receive(sub, 0, &seq, &producer), 0);
	ck_assert_uint_eq(seq, 3);
	ck_assert_uint_eq(producer, 2);
	ck_assert_int_eq(shmbus_sub_close(sub), 0);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

/* At most SB_LINGER_MAX mappings linger, the oldest going first, and none
 * for longer than SB_LINGER_MS once the connection is used again. */
START_TEST(lingering_is_bounded)
{
	struct sbt_broker b;
	shmbus *bus;
	shmbus_pub *pub;
	char name[32];
	struct timespec wait = {.tv_sec = SB_LINGER_MS / 1000 + 1};

	sbt_broker_up(&b, NULL);
	bus = sbt_bus_up(&b, "check_linger");
	for (int i = 0; i < SB_LINGER_MAX + 2; i++) {
		snprintf(name, sizeof(name), "t/linger%d", i);
		ck_assert_int_eq(shmbus_pub_open(bus, name, &pub), 0);
		ck_assert_int_eq(shmbus_pub_close(pub), 0);
		ck_assert_uint_eq(lingering(bus),
				  i < SB_LINGER_MAX ? i + 1 : SB_LINGER_MAX);
	}
	ck_assert_int_eq(linger_mappings(), 2 * SB_LINGER_MAX);
	/* The two oldest went: their topics open with fresh mappings. */
	ck_assert_int_eq(shmbus_pub_open(bus, "t/linger0", &pub), 0);
	ck_assert_uint_eq(lingering(bus), SB_LINGER_MAX);
	ck_assert_int_eq(shmbus_pub_close(pub), 0);

	nanosleep(&wait, NULL);
	ck_assert_int_eq(shmbus_pub_open(bus, "t/linger5", &pub), 0);
	ck_assert_uint_eq(lingering(bus), 0);	/* all past SB_LINGER_MS */
	ck_assert_int_eq(linger_mappings(), 2); /* only the open pub's */
	ck_assert_int_eq(shmbus_pub_close(pub), 0);
	ck_assert_int_eq(shmbus_close(bus), 0);
	ck_assert_int_eq(sbt_broker_stop(&b), 0);
}
END_TEST

Suite *linger_suite(void)
{
	Suite *s = suite_create("linger");
	TCase *tc = tcase_create("linger");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, reopen_takes_the_lingering_mapping);
	tcase_add_test(tc, recreated_topic_is_mapped_afresh);
	tcase_add_test(tc, lingering_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}
