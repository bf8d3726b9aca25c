/*
 * check_size.c - sizes written for people (wire/size.c): the syntax that
 * sb_size_parse() accepts and refuses, overflow, and sb_size_format()
 * printing what the parser reads back.
 */
#include <errno.h>
#include <stdint.h>

#include "tests/suites.h"
#include "wire/size.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

START_TEST(size_syntax)
{
	static const struct {
		const char *text;
		int ret;
		uint64_t value;
	} cases[] = {
	    {"0", 0, 0},
	    {"4096", 0, 4096},
	    {"0064KiB", 0, 64 * 1024},
	    {"1B", 0, 1},
	    {"1MiB", 0, MIB},
	    {"2GiB", 0, 2 * GIB},
	    {"18446744073709551615", 0, UINT64_MAX},
	    {"17179869183GiB", 0, UINT64_C(17179869183) << 30},
	    {"18446744073709551616", -EOVERFLOW, 0},
	    {"17179869184GiB", -EOVERFLOW, 0},
	    {"18014398509481984KiB", -EOVERFLOW, 0},
	    {"", -EINVAL, 0},
	    {"KiB", -EINVAL, 0},
	    {"1.5MiB", -EINVAL, 0},
	    {"-1", -EINVAL, 0},
	    {"+1", -EINVAL, 0},
	    {" 1", -EINVAL, 0},
	    {"1 KiB", -EINVAL, 0},
	    {"1kib", -EINVAL, 0},
	    {"1KiBx", -EINVAL, 0},
	    {"1TiB", -EINVAL, 0},
	    {"0x10", -EINVAL, 0},
	    {"1KB", -EINVAL, 0},
	    {"1kB", -EINVAL, 0},
	    {"1MB", -EINVAL, 0},
	    {"1GB", -EINVAL, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		const char *why = NULL;
		int r = sb_size_parse(cases[i].text, &v, &why);

		ck_assert_msg(r == cases[i].ret, "\"%s\": %d", cases[i].text,
			      r);
		if (r == 0) {
			ck_assert_uint_eq(v, cases[i].value);
		} else {
			ck_assert_uint_eq(v, 12345);
			ck_assert_ptr_nonnull(why);
		}
	}
}
END_TEST

START_TEST(size_formatting)
{
	char buf[32];

	ck_assert_str_eq(sb_size_format(0, buf, sizeof(buf)), "0");
	ck_assert_str_eq(sb_size_format(1023, buf, sizeof(buf)), "1023");
	ck_assert_str_eq(sb_size_format(1024, buf, sizeof(buf)), "1KiB");
	ck_assert_str_eq(sb_size_format(1536 * KIB, buf, sizeof(buf)),
			 "1536KiB");
	ck_assert_str_eq(sb_size_format(3 * GIB, buf, sizeof(buf)), "3GiB");
	ck_assert_str_eq(sb_size_format(1024 * GIB, buf, sizeof(buf)),
			 "1024GiB");
}
END_TEST

Suite *size_suite(void)
{
	Suite *s = suite_create("size");
	TCase *tc = tcase_create("size");

	tcase_add_test(tc, size_syntax);
	tcase_add_test(tc, size_formatting);
	suite_add_tcase(s, tc);
	return s;
}
