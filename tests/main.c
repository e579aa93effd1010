/*
 * The one test runner: adds every suite and runs them.  CK_FORK=no runs
 * in one process (for valgrind and gdb); CK_RUN_SUITE and CK_RUN_CASE
 * pick a subset, as Check provides.  The suites come by folder, in the
 * order of runtime/'s layers, after the contract test.
 */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
	Suite *(*const suites[])(void) = {
		suite_contract,
		suite_context, suite_compose, suite_set_deadline, suite_origin,
		suite_after, suite_after_inline, suite_debug, suite_checks,
		suite_asserts,
		suite_reactor, suite_kill,
		suite_wait, suite_io, suite_xfer, suite_syscalls,
		suite_thread, suite_wg, suite_group, suite_errgroup,
		suite_chan, suite_select, suite_cond, suite_sem,
		suite_proc, suite_waitpid, suite_signals, suite_pidfd,
		suite_passctx, suite_notify,
		suite_resolve, suite_dial, suite_listen,
		suite_copy, suite_proxy, suite_conn,
		suite_server, suite_timeout_header,
		suite_stress, suite_sequence, suite_faults,
		/* Last: it fills the process with a thousand blocked
		 * threads (in a child of its own). */
		suite_fdcount,
	};
	SRunner *sr = srunner_create(NULL);

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
