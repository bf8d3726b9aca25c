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

Suite *topic_name_suite(void)
{
	Suite *s = suite_create("topic_name");
	TCase *tc = tcase_create("rule");

	tcase_add_test(tc, valid_names);
	tcase_add_test(tc, invalid_names_with_reasons);
	suite_add_tcase(s, tc);
	return s;
}
