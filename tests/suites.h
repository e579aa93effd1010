/* Every suite of the runner; one per concern, each in tests/<concern>.c. */
#ifndef CTX_TEST_SUITES_H
#define CTX_TEST_SUITES_H

#include <check.h>

Suite *suite_contract(void);
Suite *suite_context(void);
Suite *suite_io(void);
Suite *suite_reactor(void);
Suite *suite_wait(void);
Suite *suite_waitpid(void);
Suite *suite_thread(void);
Suite *suite_wg(void);
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
Suite *suite_ssl(void); /* only when libctx-ssl is built */
Suite *suite_curl(void); /* only when libctx-curl is built */
Suite *suite_asserts(void);
Suite *suite_sequence(void);
Suite *suite_fdcount(void); /* not run yet: see tests/fdcount.c */

/* Parts of a suite in files of their own, which its suite adds. */
void add_io_accept(Suite *s); /* io/accept.c */
void add_io_shared(Suite *s); /* io/shared.c */
void add_reactor_storm(Suite *s); /* wait/storm.c */
void add_context_done_fd(Suite *s); /* core/done_fd.c */
void add_context_values(Suite *s); /* core/values.c */
void add_context_races(Suite *s); /* core/races.c */

#endif
