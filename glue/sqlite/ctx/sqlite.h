/*
 * libctx-sqlite: SQLite statements that a context ends.
 * Link with `pkg-config --cflags --libs libctx-sqlite`.
 *
 * ctx_sqlite3_step is sqlite3_step and ctx_sqlite3_exec is sqlite3_exec
 * with a context.  For the duration of the call the connection has a
 * progress handler that interrupts the statement once ctx is done (it
 * looks every 1000 virtual machine steps), and a busy handler that waits
 * for a locked database, backing off from 1 to 100 ms, until ctx ends
 * (with a context that never ends, until the lock is free).
 *
 * Results are SQLite's.  A call that ctx ended returns SQLITE_INTERRUPT,
 * or SQLITE_BUSY when it ended a wait for a lock, with errno = the
 * context's error (CTX_CANCELED or CTX_DEADLINE_EXCEEDED); after those
 * two results errno is 0 when the context had not ended.  A context
 * already done refuses at once with SQLITE_INTERRUPT, running nothing.
 * NULL arguments: SQLITE_MISUSE with errno EINVAL.
 *
 * SQLite cannot hand back a handler it holds, so afterwards the
 * connection has the progress handler set with
 * ctx_sqlite3_progress_handler (which the calls also run, at its own
 * period) and no busy handler: one set with sqlite3_busy_handler or
 * sqlite3_busy_timeout, or a progress handler set with plain
 * sqlite3_progress_handler, is gone after a call.  Calls nest (a
 * callback of ctx_sqlite3_exec may step another statement).  Use a
 * connection from one thread at a time, as Go's database/sql does.
 *
 * ctx_sqlite3_progress_handler is sqlite3_progress_handler for a
 * connection used with these calls: the handler is kept across them.  It
 * returns SQLITE_OK, SQLITE_NOMEM, or SQLITE_MISUSE for a NULL db.
 */
#ifndef CTX_SQLITE_H
#define CTX_SQLITE_H

#include <sqlite3.h>

#include <ctx.h>

#ifdef __cplusplus
extern "C" {
#endif

CTX_API int ctx_sqlite3_step(ctx_t *ctx, sqlite3_stmt *stmt) CTX_NOEXCEPT;
CTX_API int ctx_sqlite3_exec(ctx_t *ctx, sqlite3 *db, const char *sql,
			     int (*cb)(void *, int, char **, char **),
			     void *arg, char **errmsg) CTX_NOEXCEPT;
CTX_API int ctx_sqlite3_progress_handler(sqlite3 *db, int n,
					 int (*fn)(void *), void *arg) CTX_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
