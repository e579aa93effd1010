/* Every suite of the runner; one per concern, each in tests/<concern>.c. */
#ifndef CTX_TEST_SUITES_H
#define CTX_TEST_SUITES_H

#include <check.h>

Suite *suite_context(void);

#endif
