/*
 * The glue test runners' suites, run in one Check runner on both
 * backends (testing.h: tg_run_backends).  Not installed.  Apart from
 * testing.h because the benchmarks that share testing.c do not link
 * Check.
 */
#ifndef CTX_GLUE_RUNNER_H
#define CTX_GLUE_RUNNER_H

#include <check.h>

#include "testing.h"

typedef Suite *tg_suite_fn(void);

/* Every suite that the NULL-terminated list makes, in one runner: the
 * number of tests that failed.  tg_run_backends's `run`. */
static inline int tg_run_suites(const void *list)
{
	tg_suite_fn *const *make = list;
	SRunner *sr = srunner_create(make[0]());
	for (int i = 1; make[i]; i++)
		srunner_add_suite(sr, make[i]());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

#endif
