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
	srunner_add_suite(sr, suite_io());
	srunner_add_suite(sr, suite_reactor());
	srunner_add_suite(sr, suite_wait());
	srunner_add_suite(sr, suite_thread());
	srunner_add_suite(sr, suite_chan());
	srunner_add_suite(sr, suite_group());
	srunner_add_suite(sr, suite_after());
	srunner_add_suite(sr, suite_signals());
	srunner_add_suite(sr, suite_stress());
	srunner_add_suite(sr, suite_faults());
	srunner_add_suite(sr, suite_debug());
	srunner_add_suite(sr, suite_syscalls());
	srunner_add_suite(sr, suite_xfer());
	srunner_add_suite(sr, suite_cond());
	srunner_add_suite(sr, suite_sem());
	srunner_add_suite(sr, suite_select());
	srunner_add_suite(sr, suite_errgroup()); \
	srunner_add_suite(sr, suite_proc()); \
	srunner_add_suite(sr, suite_server()); \
	srunner_add_suite(sr, suite_checks());
	srunner_add_suite(sr, suite_kill()); \
	srunner_add_suite(sr, suite_resolve());
	srunner_add_suite(sr, suite_dial());
	srunner_add_suite(sr, suite_asserts());
	srunner_add_suite(sr, suite_sequence());
	srunner_add_suite(sr, suite_fdcount());
	srunner_add_suite(sr, suite_listen());
	srunner_add_suite(sr, suite_copy());
	srunner_add_suite(sr, suite_proxy());
	srunner_add_suite(sr, suite_conn());
	srunner_add_suite(sr, suite_compose());
	srunner_add_suite(sr, suite_set_deadline());
	srunner_add_suite(sr, suite_origin());
	srunner_add_suite(sr, suite_after_inline());
	srunner_add_suite(sr, suite_notify());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
