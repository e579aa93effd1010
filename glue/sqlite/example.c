/*
 * example: run one SQL statement on an SQLite database with a time limit,
 * printing the rows; a statement that takes longer is interrupted, and a
 * locked database is waited for until then.
 *
 *   glue/sqlite/example DATABASE SQL [MILLISECONDS]   (default 1000)
 *
 *   $ glue/sqlite/example :memory: "WITH RECURSIVE c(x) AS (SELECT 1
 *       UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c" 200
 *   example: interrupted after 200 ms: context deadline exceeded
 */
#include <stdio.h>
#include <stdlib.h>

#include <ctx/sqlite.h>

static int print_row(void *arg, int n, char **vals, char **names)
{
	(void)arg, (void)names;
	for (int i = 0; i < n; i++)
		printf("%s%s", i ? "|" : "", vals[i] ? vals[i] : "NULL");
	printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s DATABASE SQL [MILLISECONDS]\n",
			argv[0]);
		return 2;
	}
	long ms = argc == 4 ? atol(argv[3]) : 1000;
	sqlite3 *db;
	if (sqlite3_open(argv[1], &db) != SQLITE_OK) {
		fprintf(stderr, "example: %s: %s\n", argv[1],
			sqlite3_errmsg(db));
		return 1;
	}
	CTX_AUTO ctx_t *ctx = ctx_with_timeout(ctx_background(), ms * CTX_MSEC);
	char *msg = NULL;
	int rc = ctx_sqlite3_exec(ctx, db, argv[2], print_row, NULL, &msg);
	const char *what = rc == SQLITE_BUSY ? "gave up waiting for a lock"
					     : "interrupted";
	if ((rc == SQLITE_INTERRUPT || rc == SQLITE_BUSY) && errno)
		fprintf(stderr, "example: %s after %ld ms: %s\n", what, ms,
			ctx_strerror(errno));
	else if (rc != SQLITE_OK)
		fprintf(stderr, "example: %s\n",
			msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : 1;
}
