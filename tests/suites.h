/*
 * Every suite of the runner, by the folder of tests/ that holds it (the
 * folders mirror runtime/'s layers).  A suite's cases may be spread over
 * several files of its folder; the add_ functions below are those
 * parts, which the suite's own file adds.
 */
#ifndef CTX_TEST_SUITES_H
#define CTX_TEST_SUITES_H

#include <check.h>

/* tests/contract.c: every blocking call through every situation. */
Suite *suite_contract(void);

/* core/: the context tree, after-funcs, debugging and misuse checks. */
Suite *suite_context(void);
void add_context_done_fd(Suite *s); /* core/done_fd.c */
void add_context_values(Suite *s);  /* core/values.c */
void add_context_races(Suite *s);   /* core/races.c */
Suite *suite_compose(void);      /* core/compose.c */
Suite *suite_set_deadline(void); /* core/deadline.c */
Suite *suite_origin(void);       /* core/origin.c */
Suite *suite_after(void);
Suite *suite_after_inline(void); /* core/inline.c */
Suite *suite_debug(void);
Suite *suite_checks(void);
Suite *suite_asserts(void);

/* wait/: the per-thread reactor and the backends. */
Suite *suite_reactor(void);
void add_reactor_storm(Suite *s);   /* wait/storm.c */
Suite *suite_kill(void);
Suite *suite_fdcount(void);

/* io/: waits and transfers on descriptors. */
Suite *suite_wait(void);
Suite *suite_io(void);
void add_io_accept(Suite *s);       /* io/accept.c */
void add_io_shared(Suite *s);       /* io/shared.c */
Suite *suite_xfer(void);
Suite *suite_syscalls(void);

/* sync/: threads, wait groups, groups, channels, select, cond, sem. */
Suite *suite_thread(void);
Suite *suite_wg(void);
Suite *suite_group(void);
Suite *suite_errgroup(void);
Suite *suite_chan(void);
Suite *suite_select(void);
Suite *suite_cond(void);
Suite *suite_sem(void);

/* proc/: child processes, waitpid and friends, signal contexts. */
Suite *suite_proc(void);
Suite *suite_waitpid(void);
Suite *suite_signals(void);
Suite *suite_pidfd(void);
Suite *suite_passctx(void);
Suite *suite_notify(void);       /* proc/notify.c */

/* net/: names, dialing, listening, copying and connections. */
Suite *suite_resolve(void);
Suite *suite_dial(void);
Suite *suite_listen(void);
Suite *suite_copy(void);
Suite *suite_proxy(void);
Suite *suite_conn(void);

/* server/: hang-ups, idle deadlines, causes. */
Suite *suite_server(void);
Suite *suite_timeout_header(void);

/* soak/ and faults/: everything at once, at random; the world saying no. */
Suite *suite_stress(void);
Suite *suite_sequence(void);
Suite *suite_faults(void);

#endif
