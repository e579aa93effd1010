/*
 * libctx-sqlite against SQLite itself, on both backends (check_sqlite;
 * see glue/testing.h): statements that never end on their own (a
 * recursive query without a bound) ended by a deadline and by a cancel
 * from another thread; lock waits on a database file that another
 * connection holds, ended by the deadline or won when the holder
 * commits; the handlers during and after a call, nested calls; a done
 * context and NULL arguments; 100 cancelled statements leave descriptors
 * and threads as they were.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ctx/sqlite.h"
#include "runner.h"
#include "testutil.h"

/* Counts to infinity: only an interrupt ends it. */
#define FOREVER                                                            \
	"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) " \
	"SELECT count(*) FROM c"
#define ROWS_FOREVER                                                       \
	"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) " \
	"SELECT x FROM c"
#define BOUNDED                                                            \
	"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "  \
	"WHERE x < 100000) SELECT count(*) FROM c"

static sqlite3 *open_db(const char *path)
{
	sqlite3 *db = NULL;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	return db;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	return st;
}

START_TEST(step_deadline)
{
	sqlite3 *db = open_db(":memory:");
	sqlite3_stmt *st = prepare(db, FOREVER);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), 50 * CTX_MSEC);
	int rc = ctx_sqlite3_step(c, st);
	int e = errno;
	ck_assert_int_eq(rc, SQLITE_INTERRUPT);
	ck_assert_int_eq(e, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 45, 2000);
	/* The statement can run again once reset, under a live context. */
	sqlite3_finalize(st);
	st = prepare(db, BOUNDED);
	ck_assert_int_eq(ctx_sqlite3_step(ctx_background(), st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 100000);
	sqlite3_finalize(st);
	ctx_release(c);
	sqlite3_close(db);
}
END_TEST

START_TEST(exec_cancel)
{
	sqlite3 *db = open_db(":memory:");
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct tu_canceller k;
	char *msg = NULL;
	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, 30 * CTX_MSEC);
	int rc = ctx_sqlite3_exec(c, db, FOREVER, NULL, NULL, &msg);
	tu_canceller_join(&k);
	ck_assert_int_eq(rc, SQLITE_INTERRUPT);
	ck_assert_int_eq(errno, CTX_CANCELED);
	ck_assert_ptr_nonnull(msg);
	tu_assert_ms(tu_ms_since(t0), 25, 2000);
	sqlite3_free(msg);
	ctx_release(c);
	sqlite3_close(db);
}
END_TEST

/* ---- lock waits ------------------------------------------------------- */

struct files {
	char dir[256], path[300];
	sqlite3 *holder, *waiter;
};

/* Two connections to one database file; holder has it locked. */
static void lock_setup(struct files *f)
{
	snprintf(f->dir, sizeof f->dir, "/tmp/ctx-sqlite-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/db", f->dir);
	f->holder = open_db(f->path);
	f->waiter = open_db(f->path);
	ck_assert_int_eq(sqlite3_exec(f->holder, "CREATE TABLE t(x)", NULL,
				      NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(f->holder, "BEGIN EXCLUSIVE", NULL,
				      NULL, NULL), SQLITE_OK);
}

static void lock_teardown(struct files *f)
{
	sqlite3_close(f->holder);
	sqlite3_close(f->waiter);
	unlink(f->path);
	rmdir(f->dir);
}

START_TEST(lock_wait_deadline)
{
	struct files f;
	lock_setup(&f);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), 100 * CTX_MSEC);
	int rc = ctx_sqlite3_exec(c, f.waiter, "INSERT INTO t VALUES (1)",
				  NULL, NULL, NULL);
	ck_assert_int_eq(rc, SQLITE_BUSY);
	ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
	/* It waited for the lock until the deadline, not less. */
	tu_assert_ms(tu_ms_since(t0), 95, 2000);
	ctx_release(c);
	lock_teardown(&f);
}
END_TEST

static void *commit_later(void *arg)
{
	tu_sleep_ns(50 * CTX_MSEC);
	sqlite3_exec(arg, "COMMIT", NULL, NULL, NULL);
	return NULL;
}

START_TEST(lock_wait_won)
{
	struct files f;
	pthread_t t;
	lock_setup(&f);
	ctx_t *c = ctx_with_timeout(ctx_background(), 20 * CTX_SEC);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(pthread_create(&t, NULL, commit_later, f.holder), 0);
	int rc = ctx_sqlite3_exec(c, f.waiter, "INSERT INTO t VALUES (1)",
				  NULL, NULL, NULL);
	pthread_join(t, NULL);
	ck_assert_int_eq(rc, SQLITE_OK);
	tu_assert_ms(tu_ms_since(t0), 45, 10000);
	ctx_release(c);
	lock_teardown(&f);
}
END_TEST

/* No busy handler is left after a call (as the page says): a plain call
 * then meets the lock at once, whatever sqlite3_busy_timeout said. */
START_TEST(no_busy_handler_after)
{
	struct files f;
	lock_setup(&f);
	sqlite3_busy_timeout(f.waiter, 10000);
	ck_assert_int_eq(ctx_sqlite3_exec(ctx_background(), f.waiter,
					  "SELECT 1", NULL, NULL, NULL),
			 SQLITE_OK);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(sqlite3_exec(f.waiter, "INSERT INTO t VALUES (1)",
				      NULL, NULL, NULL), SQLITE_BUSY);
	tu_assert_ms(tu_ms_since(t0), 0, 1000);
	lock_teardown(&f);
}
END_TEST

/* ---- the caller's progress handler, nesting ---------------------------- */

static int count_calls(void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int stop_now(void *arg)
{
	(void)arg;
	return 1;
}

START_TEST(progress_handler_kept)
{
	sqlite3 *db = open_db(":memory:");
	sqlite3_stmt *st = prepare(db, BOUNDED);
	int n = 0;
	ck_assert_int_eq(ctx_sqlite3_progress_handler(db, 100, count_calls,
						      &n), SQLITE_OK);
	ck_assert_int_eq(ctx_sqlite3_step(ctx_background(), st), SQLITE_ROW);
	int during = n;
	ck_assert_int_gt(during, 0);
	/* After the call, a plain step runs it too: it was put back. */
	sqlite3_reset(st);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_gt(n, during);
	/* A handler that interrupts: SQLITE_INTERRUPT, errno 0. */
	ck_assert_int_eq(ctx_sqlite3_progress_handler(db, 100, stop_now, NULL),
			 SQLITE_OK);
	sqlite3_reset(st);
	errno = EBADF;
	ck_assert_int_eq(ctx_sqlite3_step(ctx_background(), st),
			 SQLITE_INTERRUPT);
	ck_assert_int_eq(errno, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
}
END_TEST

struct nested {
	sqlite3_stmt *inner;
	int rows;
};

static int step_inner(void *arg, int n, char **vals, char **names)
{
	struct nested *x = arg;
	(void)n, (void)vals, (void)names;
	if (x->rows++ == 0) {
		ck_assert_int_eq(ctx_sqlite3_step(ctx_background(), x->inner),
				 SQLITE_ROW);
		sqlite3_reset(x->inner);
	}
	return 0;
}

/* An inner call gives the connection back to the outer one: the outer
 * deadline still ends the outer statement. */
START_TEST(nested_calls)
{
	sqlite3 *db = open_db(":memory:");
	struct nested x = { .inner = prepare(db, BOUNDED) };
	ctx_t *c = ctx_with_timeout(ctx_background(), 100 * CTX_MSEC);
	int rc = ctx_sqlite3_exec(c, db, ROWS_FOREVER, step_inner, &x, NULL);
	ck_assert_int_eq(rc, SQLITE_INTERRUPT);
	ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
	ck_assert_int_gt(x.rows, 1);
	sqlite3_finalize(x.inner);
	ctx_release(c);
	sqlite3_close(db);
}
END_TEST

/* ---- refusals, resources ---------------------------------------------- */

START_TEST(done_and_bad_input)
{
	sqlite3 *db = open_db(":memory:");
	sqlite3_stmt *st = prepare(db, FOREVER);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_cancel(c);
	ck_assert_int_eq(ctx_sqlite3_step(c, st), SQLITE_INTERRUPT);
	ck_assert_int_eq(errno, CTX_CANCELED);
	char *msg = NULL;
	ck_assert_int_eq(ctx_sqlite3_exec(c, db, "SELECT 1", NULL, NULL, &msg),
			 SQLITE_INTERRUPT);
	ck_assert_ptr_nonnull(msg);
	sqlite3_free(msg);
	ck_assert_int_eq(ctx_sqlite3_step(NULL, st), SQLITE_MISUSE);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(ctx_sqlite3_step(ctx_background(), NULL),
			 SQLITE_MISUSE);
	ck_assert_int_eq(ctx_sqlite3_exec(ctx_background(), NULL, "SELECT 1",
					  NULL, NULL, NULL), SQLITE_MISUSE);
	ck_assert_int_eq(ctx_sqlite3_progress_handler(NULL, 1, stop_now, NULL),
			 SQLITE_MISUSE);
	sqlite3_finalize(st);
	ctx_release(c);
	sqlite3_close(db);
}
END_TEST

START_TEST(hundred_cancelled)
{
	sqlite3 *db = open_db(":memory:");
	sqlite3_stmt *st = prepare(db, FOREVER);
	int fds = -1, threads = -1;
	for (int i = 0; i <= 100; i++) {
		if (i == 1) { /* after one, to count what stays */
			fds = tu_count_fds();
			threads = tu_count_threads();
		}
		ctx_t *c = ctx_with_timeout(ctx_background(), CTX_MSEC);
		ck_assert_int_eq(ctx_sqlite3_step(c, st), SQLITE_INTERRUPT);
		ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
		sqlite3_reset(st);
		ctx_release(c);
	}
	ck_assert_int_eq(tu_settle_fds(fds, CTX_SEC), fds);
	ck_assert_int_eq(tu_settle_threads(threads, CTX_SEC), threads);
	sqlite3_finalize(st);
	sqlite3_close(db);
}
END_TEST

static Suite *suite_sqlite(void)
{
	Suite *s = suite_create("sqlite");
	TCase *tc = tu_tcase(s, "interrupt", 30);
	tcase_add_test(tc, step_deadline);
	tcase_add_test(tc, exec_cancel);
	tcase_add_test(tc, nested_calls);
	tcase_add_test(tc, hundred_cancelled);
	tc = tu_tcase(s, "lock", 30);
	tcase_add_test(tc, lock_wait_deadline);
	tcase_add_test(tc, lock_wait_won);
	tcase_add_test(tc, no_busy_handler_after);
	tc = tu_tcase(s, "handlers", 30);
	tcase_add_test(tc, progress_handler_kept);
	tcase_add_test(tc, done_and_bad_input);
	return s;
}

static tg_suite_fn *const suites[] = { suite_sqlite, NULL };

int main(int argc, char **argv)
{
	(void)argc;
	return tg_run_backends(tg_run_suites, suites, argv);
}
