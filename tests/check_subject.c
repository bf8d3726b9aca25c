/*
 * check_subject.c - topic names to NATS subjects and back (wire/subject.c):
 * the export mapping, its exact inverse, and the refusals.
 */
#include <errno.h>
#include <string.h>

#include "tests/suites.h"
#include "wire/subject.h"
#include "wire/topic_name.h"

/* topic → subject (compared with `expected` unless NULL) → the topic. */
static void round_trip(const char *topic, const char *expected)
{
	char subject[SB_SUBJECT_MAX + 1], back[SB_TOPIC_NAME_MAX + 1];
	char why[160] = "";

	ck_assert_int_eq(
	    sb_subject_from_topic("hostA", topic, subject, sizeof(subject)), 0);
	if (expected != NULL) {
		ck_assert_str_eq(subject, expected);
	}
	ck_assert_int_eq(sb_subject_check(subject, false, why, sizeof(why)), 0);
	ck_assert_int_eq(
	    sb_subject_to_topic(subject, back, sizeof(back), why, sizeof(why)),
	    0);
	ck_assert_str_eq(back, topic);
}

START_TEST(topics_map_to_subjects_and_back)
{
	char longest[SB_TOPIC_NAME_MAX + 1];

	round_trip("imu", "shmbus.hostA.imu");
	round_trip("sensors/imu", "shmbus.hostA.sensors.imu");
	round_trip("a.b/c..d/.e", "shmbus.hostA.a%2Eb.c%2E%2Ed.%2Ee");
	round_trip("shmbus/x", "shmbus.hostA.shmbus.x");
	/* The longest topic, all dots after its first letter. */
	memset(longest, '.', sizeof(longest) - 1);
	longest[0] = 'a';
	longest[sizeof(longest) - 1] = '\0';
	round_trip(longest, NULL);
}
END_TEST

static void to_topic(const char *subject, const char *expected)
{
	char topic[SB_TOPIC_NAME_MAX + 1], why[160] = "";

	ck_assert_int_eq(sb_subject_to_topic(subject, topic, sizeof(topic), why,
					     sizeof(why)),
			 0);
	ck_assert_str_eq(topic, expected);
}

static void to_topic_refused(const char *subject, const char *why_part)
{
	char topic[SB_TOPIC_NAME_MAX + 1], why[256] = "";

	ck_assert_int_eq(sb_subject_to_topic(subject, topic, sizeof(topic), why,
					     sizeof(why)),
			 -EINVAL);
	ck_assert_msg(strstr(why, why_part) != NULL, "%s: %s", subject, why);
}

/* Subjects not made by an exporter: no prefix, lower-case escape, and the
 * ones that name no topic. */
START_TEST(subjects_map_to_topics)
{
	to_topic("telemetry.imu", "telemetry/imu");
	to_topic("shmbus.b.x%2ey", "x.y");
	to_topic("shmbus.b", "shmbus/b"); /* no topic after the origin */
	to_topic("shmbus", "shmbus");
	to_topic("shmbusx.a.b", "shmbusx/a/b");
	to_topic_refused("a.b%41", "'%' that is not \"%2E\"");
	to_topic_refused("a.b%2", "'%' that is not \"%2E\"");
	to_topic_refused("shmbus.h.a:b", "makes topic \"a:b\", which has a "
					 "character other than");
	to_topic_refused("shmbus.h.a.%2E", "which has a \".\" segment");
}
END_TEST

START_TEST(subjects_and_origins_checked)
{
	char why[160];
	char origin[SB_SUBJECT_ORIGIN_MAX + 2];

	ck_assert_int_eq(sb_subject_check("a.*.c", true, why, sizeof(why)), 0);
	ck_assert_int_eq(sb_subject_check("a.>", true, why, sizeof(why)), 0);
	ck_assert_int_eq(sb_subject_check("a.*", false, why, sizeof(why)),
			 -EINVAL);
	ck_assert_str_eq(why, "has a wildcard '*' (a subject to publish to "
			      "names one subject)");
	ck_assert_int_eq(sb_subject_check("a.>.c", true, why, sizeof(why)),
			 -EINVAL);
	ck_assert_str_eq(why, "has '>' before its last token");
	ck_assert_int_eq(sb_subject_check("a..c", true, why, sizeof(why)),
			 -EINVAL);
	ck_assert_str_eq(why, "has an empty token at position 2");
	ck_assert_int_eq(sb_subject_check("a b", true, why, sizeof(why)),
			 -EINVAL);
	ck_assert_int_eq(sb_subject_check("a*b", true, why, sizeof(why)),
			 -EINVAL);
	ck_assert_int_eq(sb_subject_check("", true, why, sizeof(why)), -EINVAL);
	ck_assert_int_eq(sb_subject_origin_check("host-1_a", why, sizeof(why)),
			 0);
	ck_assert_int_eq(sb_subject_origin_check("a.b", why, sizeof(why)),
			 -EINVAL);
	ck_assert_str_eq(why, "has a character other than letters, digits, "
			      "'-' and '_' (byte 0x2e at position 1)");
	memset(origin, 'o', sizeof(origin) - 1);
	origin[sizeof(origin) - 1] = '\0';
	ck_assert_int_eq(sb_subject_origin_check(origin, why, sizeof(why)),
			 -EINVAL);
	ck_assert_int_eq(sb_subject_origin_check("", why, sizeof(why)),
			 -EINVAL);
}
END_TEST

START_TEST(too_small_a_buffer_is_said)
{
	char small[20];

	ck_assert_int_eq(
	    sb_subject_from_topic("h", "abcdefghijklmn", small, sizeof(small)),
	    -ENAMETOOLONG);
	ck_assert_int_eq(
	    sb_subject_from_topic("h", "a.b.c", small, sizeof(small)), 0);
	ck_assert_str_eq(small, "shmbus.h.a%2Eb%2Ec");
	ck_assert_int_eq(
	    sb_subject_from_topic("h", "a.b.cde", small, sizeof(small)),
	    -ENAMETOOLONG);
}
END_TEST

Suite *subject_suite(void)
{
	Suite *s = suite_create("subject");
	TCase *tc = tcase_create("mapping");

	tcase_add_test(tc, topics_map_to_subjects_and_back);
	tcase_add_test(tc, subjects_map_to_topics);
	tcase_add_test(tc, subjects_and_origins_checked);
	tcase_add_test(tc, too_small_a_buffer_is_said);
	suite_add_tcase(s, tc);
	return s;
}
