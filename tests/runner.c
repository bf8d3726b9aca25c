/*
 * runner.c - runs every Check suite listed in suites.h and exits non-zero if
 * any test failed. Set CK_RUN_SUITE / CK_RUN_CASE to run a subset (Check
 * reads them itself), CK_VERBOSITY=verbose to see each test.
 */
#include <stdlib.h>

#include "tests/suites.h"

int main(void)
{
	SRunner *runner = srunner_create(NULL);
	int failed;

#define SB_ADD_SUITE(name) srunner_add_suite(runner, name##_suite());
	SB_TEST_SUITES(SB_ADD_SUITE)
#undef SB_ADD_SUITE

	srunner_run_all(runner, CK_ENV);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
