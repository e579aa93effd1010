/*
 * The one test runner: adds every suite and runs them.  CK_FORK=no runs
 * in one process (for valgrind and gdb); CK_RUN_SUITE and CK_RUN_CASE
 * pick a subset, as Check provides.
 */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
	SRunner *sr = srunner_create(suite_context());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
