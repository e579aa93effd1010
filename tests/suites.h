/* Every suite of the runner; one per concern, each in tests/<concern>.c. */
#ifndef CTX_TEST_SUITES_H
#define CTX_TEST_SUITES_H

#include <check.h>

Suite *suite_context(void);
Suite *suite_io(void);
Suite *suite_reactor(void);
Suite *suite_wait(void);
Suite *suite_thread(void);
Suite *suite_chan(void);
Suite *suite_group(void);
Suite *suite_after(void);
Suite *suite_signals(void);
Suite *suite_stress(void);
Suite *suite_faults(void);
Suite *suite_debug(void);
Suite *suite_syscalls(void);
Suite *suite_xfer(void);
Suite *suite_cond(void);
Suite *suite_sem(void);
Suite *suite_select(void);
Suite *suite_errgroup(void);
Suite *suite_proc(void);
Suite *suite_server(void);
Suite *suite_checks(void);
Suite *suite_kill(void);
Suite *suite_resolve(void);
Suite *suite_dial(void);
Suite *suite_asserts(void);
Suite *suite_sequence(void);
Suite *suite_fdcount(void); /* not run yet: see tests/fdcount.c */
Suite *suite_listen(void);
Suite *suite_copy(void);
Suite *suite_proxy(void);
Suite *suite_conn(void);
Suite *suite_compose(void);      /* tests/core/compose.c */
Suite *suite_set_deadline(void); /* tests/core/deadline.c */
Suite *suite_origin(void);       /* tests/core/origin.c */
Suite *suite_after_inline(void); /* tests/core/inline.c */
Suite *suite_notify(void);       /* tests/proc/notify.c */

#endif
