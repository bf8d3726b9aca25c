/*
 * check_error.c - shmbus_strerror(): every code the library returns has its
 * own name, and nonsense codes are handled without crashing.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "shmbus/map.h"
#include "tests/suites.h"

START_TEST(every_library_code_has_a_distinct_name)
{
	static const int codes[] = {
		EINVAL,    ENOENT,     EEXIST,       EACCES,   EPERM,
		ENOMEM,    ENOSPC,     ERANGE,       ETIMEDOUT, EAGAIN,
		EMSGSIZE,  EPROTO,     ECONNRESET,   ECONNREFUSED, EBADF,
		EDEADLK,   EBADMSG,    EOWNERDEAD,   ENOTRECOVERABLE, EBUSY,
		EMFILE,    ENAMETOOLONG, EISDIR,     EOVERFLOW, ENOTCONN,
		EPIPE,     ENODEV,     EUSERS,       ENOTSUP,  EIO,
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);

	for (size_t i = 0; i < n; i++) {
		const char *name = shmbus_strerror(-codes[i]);

		ck_assert_ptr_nonnull(name);
		ck_assert_str_ne(name, "unknown error code");
		ck_assert_str_eq(name, shmbus_strerror(codes[i]));
		for (size_t j = 0; j < i; j++) {
			ck_assert_str_ne(name, shmbus_strerror(-codes[j]));
		}
	}
}
END_TEST

START_TEST(zero_and_nonsense_codes)
{
	ck_assert_str_eq(shmbus_strerror(0), "success");
	ck_assert_str_eq(shmbus_strerror(INT_MIN), "unknown error code");
	ck_assert_str_eq(shmbus_strerror(-99999), "unknown error code");
	/* A passed-through errno outside the table still gets glibc's name. */
	ck_assert_str_eq(shmbus_strerror(-EXDEV), strerrordesc_np(EXDEV));
}
END_TEST

Suite *error_suite(void)
{
	Suite *s = suite_create("error");
	TCase *tc = tcase_create("strerror");

	tcase_add_test(tc, every_library_code_has_a_distinct_name);
	tcase_add_test(tc, zero_and_nonsense_codes);
	suite_add_tcase(s, tc);
	return s;
}
