/*
 * check_error.c - shmbus_strerror(): every code the library returns has its
 * own name, every code the broker can send has a text of the library's,
 * and nonsense codes are handled without crashing.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "shmbus/map.h"
#include "tests/suites.h"
#include "wire/message.h"

START_TEST(every_library_code_has_a_distinct_name)
{
	static const int codes[] = {
	    EINVAL,   ENOENT,	    EEXIST,	EACCES,		 EPERM,
	    ENOMEM,   ENOSPC,	    ERANGE,	ETIMEDOUT,	 EAGAIN,
	    EMSGSIZE, EPROTO,	    ECONNRESET, ECONNREFUSED,	 EBADF,
	    EDEADLK,  EBADMSG,	    EOWNERDEAD, ENOTRECOVERABLE, EBUSY,
	    EMFILE,   ENAMETOOLONG, EISDIR,	EOVERFLOW,	 ENOTCONN,
	    EPIPE,    ENODEV,	    EUSERS,	ENOTSUP,	 EIO,
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

/* Every code that travels in the control protocol (it has a wire name)
 * reads as the library's own text, not glibc's fallback: a client can
 * always say what the broker meant. The two came from two lists once, and
 * EDQUOT and ENOTDIR went over the socket without a text. */
START_TEST(every_code_on_the_wire_has_a_text)
{
	int on_wire = 0;

	for (int code = 1; code < 200; code++) {
		const char *name = sb_msg_errno_name(-code);

		if (name == NULL) {
			continue;
		}
		on_wire++;
		ck_assert_int_eq(sb_msg_errno_from_name(name), -code);
		ck_assert_msg(strerrordesc_np(code) == NULL ||
				  strcmp(shmbus_strerror(-code),
					 strerrordesc_np(code)) != 0,
			      "%s has no text of the library's", name);
	}
	ck_assert_int_ge(on_wire, 30);
	/* What the library returns but the broker never sends. */
	ck_assert_ptr_null(sb_msg_errno_name(-EIDRM));
	ck_assert_str_ne(shmbus_strerror(-EIDRM), strerrordesc_np(EIDRM));
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
	tcase_add_test(tc, every_code_on_the_wire_has_a_text);
	tcase_add_test(tc, zero_and_nonsense_codes);
	suite_add_tcase(s, tc);
	return s;
}
