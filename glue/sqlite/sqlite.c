/*
 * libctx-sqlite: a progress handler and a busy handler that watch the
 * context, installed for the duration of each call.
 *
 * SQLite runs a statement on the calling thread and calls the progress
 * handler every N virtual machine steps; returning non-zero interrupts
 * the statement (SQLITE_INTERRUPT).  So the context is looked at from
 * inside the statement, with no other thread and nothing to undo: no
 * sqlite3_interrupt from elsewhere, which could land after the call has
 * returned and interrupt the next statement.  A lock wait goes through
 * the busy handler, which sleeps in ctx_sleep, so a cancel wakes it at
 * once.  Each handler gets the call's own frame (struct call).
 *
 * What the connection had before: SQLite has no call that returns a
 * handler, so the caller's handlers cannot be read back.  A progress
 * handler set through ctx_sqlite3_progress_handler is recorded here (the
 * registry below) and is both run by ours and put back afterwards; the
 * busy handler is left unset.  Nested calls (a callback of
 * ctx_sqlite3_exec stepping another statement) find the enclosing call on
 * the thread's stack of calls and hand the connection back to it.
 *
 * The registry holds one entry per connection, found by pointer.  An
 * entry goes when its connection closes: SQLite calls the destructor of a
 * function registered on the connection for that purpose
 * (ctx_sqlite_progress_hook, which does nothing if called from SQL), so
 * a later connection at the same address never inherits it.  A counter
 * lets calls skip the registry's lock while it is empty.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "ctx/sqlite.h"

/* Steps between looks at the context: about 10-50 us of work. */
#define PERIOD 1000

struct hook {
	sqlite3 *db;
	int n;               /* the caller's period; 0: no handler */
	int (*fn)(void *);
	void *arg;
	struct hook *next;
};

struct call {
	ctx_t *ctx;
	sqlite3 *db;
	struct hook saved;   /* the caller's progress handler (a copy) */
	unsigned since;      /* steps since the caller's handler last ran */
	int period;
	struct call *outer;  /* the thread's enclosing call, if any */
};

static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hook *hooks;
static atomic_int nhooks;
static _Thread_local struct call *calls;

/* With hooks_lock held. */
static struct hook **find(sqlite3 *db)
{
	struct hook **pp = &hooks;
	while (*pp && (*pp)->db != db)
		pp = &(*pp)->next;
	return pp;
}

static void hook_gone(void *p)
{
	struct hook *h = p;
	pthread_mutex_lock(&hooks_lock);
	struct hook **pp = find(h->db);
	if (*pp == h) {
		*pp = h->next;
		atomic_fetch_sub(&nhooks, 1);
	}
	pthread_mutex_unlock(&hooks_lock);
	free(h);
}

static void hook_sql(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	(void)argc, (void)argv;
	sqlite3_result_null(c);
}

/* A new entry for db, registered so that closing db removes it. */
static int hook_add(sqlite3 *db, int n, int (*fn)(void *), void *arg)
{
	struct hook *h = malloc(sizeof *h);
	if (!h)
		return SQLITE_NOMEM;
	*h = (struct hook){ .db = db, .n = n, .fn = fn, .arg = arg };
	int rc = sqlite3_create_function_v2(db, "ctx_sqlite_progress_hook",
					    0, SQLITE_UTF8, h, hook_sql, NULL,
					    NULL, hook_gone);
	if (rc != SQLITE_OK)
		return rc; /* SQLite has called hook_gone, which freed h */
	pthread_mutex_lock(&hooks_lock);
	h->next = hooks;
	hooks = h;
	atomic_fetch_add(&nhooks, 1);
	pthread_mutex_unlock(&hooks_lock);
	return SQLITE_OK;
}

CTX_API int ctx_sqlite3_progress_handler(sqlite3 *db, int n,
					 int (*fn)(void *), void *arg)
{
	if (!db)
		return SQLITE_MISUSE;
	if (n <= 0 || !fn)
		n = 0, fn = NULL, arg = NULL;
	pthread_mutex_lock(&hooks_lock);
	struct hook *h = *find(db);
	if (h)
		h->n = n, h->fn = fn, h->arg = arg;
	pthread_mutex_unlock(&hooks_lock);
	int rc = h || !fn ? SQLITE_OK : hook_add(db, n, fn, arg);
	if (rc == SQLITE_OK)
		sqlite3_progress_handler(db, n, fn, arg);
	return rc;
}

/* The progress handler db keeps between calls: the enclosing call's
 * copy, else the registry's, else none. */
static struct hook saved_of(sqlite3 *db, const struct call *outer)
{
	struct hook h = { .db = db };
	if (outer)
		return outer->saved;
	if (atomic_load_explicit(&nhooks, memory_order_acquire) == 0)
		return h;
	pthread_mutex_lock(&hooks_lock);
	struct hook *found = *find(db);
	if (found)
		h = *found;
	pthread_mutex_unlock(&hooks_lock);
	return h;
}

static int on_progress(void *p)
{
	struct call *c = p;
	if (ctx_err(c->ctx))
		return 1;
	if (!c->saved.fn)
		return 0;
	c->since += (unsigned)c->period;
	if (c->since < (unsigned)c->saved.n)
		return 0;
	c->since = 0;
	return c->saved.fn(c->saved.arg);
}

/* Back off as sqlite3_busy_timeout does, but in ctx_sleep: 0 (give up,
 * SQLITE_BUSY) once the context has ended. */
static int on_busy(void *p, int count)
{
	static const int ms[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 };
	struct call *c = p;
	int n = (int)(sizeof ms / sizeof ms[0]);
	int64_t wait = (count < n ? ms[count] : 100) * CTX_MSEC;
	return ctx_sleep(c->ctx, wait) == 0;
}

/* Install the call's handlers on db and push it on the thread's stack. */
static void enter(struct call *c, ctx_t *ctx, sqlite3 *db)
{
	struct call *outer = calls;
	while (outer && outer->db != db)
		outer = outer->outer;
	*c = (struct call){ .ctx = ctx, .db = db, .outer = calls,
			    .saved = saved_of(db, outer) };
	c->period = c->saved.fn && c->saved.n < PERIOD ? c->saved.n : PERIOD;
	calls = c;
	sqlite3_progress_handler(db, c->period, on_progress, c);
	sqlite3_busy_handler(db, on_busy, c);
}

/* Hand db back to the enclosing call, or to the caller; set errno. */
static int leave(struct call *c, int rc)
{
	calls = c->outer;
	struct call *outer = calls;
	while (outer && outer->db != c->db)
		outer = outer->outer;
	if (outer) {
		sqlite3_progress_handler(c->db, outer->period, on_progress,
					 outer);
		sqlite3_busy_handler(c->db, on_busy, outer);
	} else {
		sqlite3_progress_handler(c->db, c->saved.n, c->saved.fn,
					 c->saved.arg);
		sqlite3_busy_handler(c->db, NULL, NULL);
	}
	int primary = rc & 0xff;
	if (primary == SQLITE_INTERRUPT || primary == SQLITE_BUSY)
		errno = ctx_err(c->ctx);
	return rc;
}

/* SQLITE_MISUSE for NULL arguments, SQLITE_INTERRUPT for a done
 * context (errno set either way), else SQLITE_OK. */
static int refuse(ctx_t *ctx, const void *obj)
{
	if (!ctx || !obj) {
		errno = EINVAL;
		return SQLITE_MISUSE;
	}
	int e = ctx_err(ctx);
	if (e) {
		errno = e;
		return SQLITE_INTERRUPT;
	}
	return SQLITE_OK;
}

CTX_API int ctx_sqlite3_step(ctx_t *ctx, sqlite3_stmt *stmt)
{
	int rc = refuse(ctx, stmt);
	if (rc != SQLITE_OK)
		return rc;
	struct call c;
	enter(&c, ctx, sqlite3_db_handle(stmt));
	return leave(&c, sqlite3_step(stmt));
}

CTX_API int ctx_sqlite3_exec(ctx_t *ctx, sqlite3 *db, const char *sql,
			     int (*cb)(void *, int, char **, char **),
			     void *arg, char **errmsg)
{
	int rc = refuse(ctx, db);
	if (rc != SQLITE_OK) {
		if (errmsg)
			*errmsg = sqlite3_mprintf("%s", sqlite3_errstr(rc));
		return rc;
	}
	struct call c;
	enter(&c, ctx, db);
	return leave(&c, sqlite3_exec(db, sql, cb, arg, errmsg));
}
