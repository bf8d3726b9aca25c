/*
 * check_sockpath.c - the default socket path follows $SHMBUS_SOCKET, then
 * $XDG_RUNTIME_DIR, then /tmp/shmbus-$UID, and refuses what cannot fit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/suites.h"
#include "wire/sockpath.h"

START_TEST(precedence_of_the_three_sources)
{
	char buf[256], want[64];

	setenv("SHMBUS_SOCKET", "/run/x/bus.sock", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	ck_assert_int_eq(sb_socket_default_path(buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/run/x/bus.sock");
	unsetenv("SHMBUS_SOCKET");
	ck_assert_int_eq(sb_socket_default_path(buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/run/user/1000/shmbus/shmbusd.sock");
	unsetenv("XDG_RUNTIME_DIR");
	ck_assert_int_eq(sb_socket_default_path(buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "/tmp/shmbus-%lu/shmbusd.sock",
		 (unsigned long)getuid());
	ck_assert_str_eq(buf, want);
}
END_TEST

START_TEST(too_long_or_bad_arguments)
{
	char buf[256], longdir[200];

	memset(longdir, 'a', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	unsetenv("SHMBUS_SOCKET");
	setenv("XDG_RUNTIME_DIR", longdir, 1);
	ck_assert_int_eq(sb_socket_default_path(buf, sizeof(buf)),
			 -ENAMETOOLONG);
	unsetenv("XDG_RUNTIME_DIR");
	ck_assert_int_eq(sb_socket_default_path(buf, 5), -ENAMETOOLONG);
	ck_assert_int_eq(sb_socket_default_path(NULL, 5), -EINVAL);
}
END_TEST

Suite *sockpath_suite(void)
{
	Suite *s = suite_create("sockpath");
	TCase *tc = tcase_create("default_path");

	tcase_add_test(tc, precedence_of_the_three_sources);
	tcase_add_test(tc, too_long_or_bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}
