/*
 * check_topic_name.c - the topic name rule that client, broker and config
 * share: what is accepted, and the reason given for each refusal.
 */
#include <errno.h>
#include <string.h>

#include "tests/suites.h"
#include "wire/topic_name.h"

static void assert_refused(const char *name, const char *why_expected)
{
	char why[128] = "";

	ck_assert_int_eq(sb_topic_name_check(name, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, why_expected);
	ck_assert(!sb_topic_name_valid(name));
}

START_TEST(valid_names)
{
	static const char *const names[] = {
	    "imu",     "sensors/imu.raw", "a",	   "A-Z_0-9",
	    ".hidden", "a/..b/c..",	  "x/y/z", "...",
	};
	char longest[SB_TOPIC_NAME_MAX + 1];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ck_assert_msg(sb_topic_name_valid(names[i]), "%s", names[i]);
		ck_assert_int_eq(sb_topic_name_check(names[i], NULL, 0), 0);
	}
	memset(longest, 'n', SB_TOPIC_NAME_MAX);
	longest[SB_TOPIC_NAME_MAX] = '\0';
	ck_assert(sb_topic_name_valid(longest));
}
END_TEST

START_TEST(invalid_names_with_reasons)
{
	char too_long[SB_TOPIC_NAME_MAX + 2];

	memset(too_long, 'n', SB_TOPIC_NAME_MAX + 1);
	too_long[SB_TOPIC_NAME_MAX + 1] = '\0';
	assert_refused(NULL, "must not be empty");
	assert_refused("", "must not be empty");
	assert_refused(too_long, "is longer than 200 characters");
	assert_refused("a b", "has a character other than letters, digits, "
			      "'.', '_', '-', '/' (byte 0x20 at position 1)");
	assert_refused("a\nb", "has a character other than letters, digits, "
			       "'.', '_', '-', '/' (byte 0x0a at position 1)");
	assert_refused("caf\xc3\xa9", "has a character other than letters, "
				      "digits, '.', '_', '-', '/' (byte 0xc3 "
				      "at position 3)");
	assert_refused("/imu", "has an empty segment");
	assert_refused("imu/", "has an empty segment");
	assert_refused("a//b", "has an empty segment");
	assert_refused("a/../b", "has a \"..\" segment");
	assert_refused("..", "has a \"..\" segment");
	assert_refused("a/./b", "has a \".\" segment");
	assert_refused(".", "has a \".\" segment");
}
END_TEST

/* Patterns: NATS's * and >, MQTT's + and # as the same, each level
 * whole; everything else judged as a name is. */
START_TEST(patterns_check_and_match)
{
	static const struct {
		const char *pattern, *name;
		bool match;
	} cases[] = {
	    {"a/*/c", "a/b/c", true}, {"a/*/c", "a/b/x/c", false},
	    {"a/+/c", "a/b/c", true}, {"a/>", "a/b", true},
	    {"a/>", "a/b/c/d", true}, {"a/>", "a", false},
	    {"a/#", "a/b/c", true},   {"a/#", "a", false},
	    {">", "x", true},	      {"*", "x/y", false},
	    {"*/y", "x/y", true},     {"a/b", "a/b", true},
	    {"a/b", "a/bc", false},   {"a/*", "a", false},
	    {"a/*/>", "a/b/c", true}, {"a/*/>", "a/b", false},
	};
	static const struct {
		const char *pattern, *why;
	} bad[] = {
	    {"a/>/b", "before its last level"},
	    {"a/#/b", "before its last level"},
	    {"a//*", "empty segment"},
	    {"a/*x", "a character other than"},
	    {"", "must not be empty"},
	    {"a/../*", "\"..\" segment"},
	};
	char why[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(
		    sb_topic_pattern_check(cases[i].pattern, why, sizeof(why)),
		    0);
		ck_assert_msg(
		    sb_topic_pattern_match(cases[i].pattern, cases[i].name) ==
			cases[i].match,
		    "%s vs %s", cases[i].pattern, cases[i].name);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(
		    sb_topic_pattern_check(bad[i].pattern, why, sizeof(why)),
		    -EINVAL);
		ck_assert_msg(strstr(why, bad[i].why) != NULL, "%s: %s",
			      bad[i].pattern, why);
	}
	ck_assert(sb_topic_is_pattern("a/*"));
	ck_assert(sb_topic_is_pattern("#"));
	ck_assert(!sb_topic_is_pattern("a/b"));
	ck_assert(!sb_topic_is_pattern("a/b*")); /* invalid, not a pattern */
	/* A plain name is a pattern that matches itself alone. */
	ck_assert_int_eq(sb_topic_pattern_check("a/b", NULL, 0), 0);
}
END_TEST

Suite *topic_name_suite(void)
{
	Suite *s = suite_create("topic_name");
	TCase *tc = tcase_create("rule");

	tcase_add_test(tc, valid_names);
	tcase_add_test(tc, invalid_names_with_reasons);
	tcase_add_test(tc, patterns_check_and_match);
	suite_add_tcase(s, tc);
	return s;
}
