/*
 * check_crash.c - runs the crash matrix (tests/crash_matrix.c, built as
 * build/<variant>/crash-matrix) with counts CI can afford, so that every
 * `make test` SIGKILLs producers, subscribers, queue consumers and the
 * broker a few hundred times. `make soak` runs it with many more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/suites.h"
#include "tests/support/testutil.h"

START_TEST(crash_matrix_survives_every_kill)
{
	char binary[512];
	pid_t pid;

	snprintf(binary, sizeof(binary), "%s/crash-matrix", sbt_bindir());
	ck_assert_msg(access(binary, X_OK) == 0, "%s is missing", binary);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl(binary, binary, "--rounds", "100", (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(sbt_wait(pid), 0);
}
END_TEST

Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("matrix");

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, crash_matrix_survives_every_kill);
	suite_add_tcase(s, tc);
	return s;
}
