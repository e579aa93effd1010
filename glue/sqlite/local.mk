# ---- libctx-sqlite (issue 25): SQLite with contexts -------------------
# Everything of the library is in glue/sqlite: sqlite.c, its header
# ctx/sqlite.h (installed as <ctx/sqlite.h>), libctx-sqlite.pc, the
# manual pages in man/, an example, and the test runner check_sqlite
# (tests.c), which runs its suite on both backends.
EXTRA_DIST += glue/sqlite/libctx-sqlite.pc.in
dist_man3_MANS += \
	glue/sqlite/man/ctx_sqlite3_step.3 \
	glue/sqlite/man/ctx_sqlite3_exec.3 \
	glue/sqlite/man/ctx_sqlite3_progress_handler.3
if HAVE_SQLITE3
lib_LTLIBRARIES += glue/sqlite/libctx-sqlite.la
ctxinclude_HEADERS += glue/sqlite/ctx/sqlite.h
pkgconfig_DATA += glue/sqlite/libctx-sqlite.pc
glue_sqlite_libctx_sqlite_la_SOURCES = glue/sqlite/sqlite.c \
	glue/sqlite/ctx/sqlite.h
glue_sqlite_libctx_sqlite_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(srcdir)/glue/sqlite -DCTX_BUILDING_LIBRARY
glue_sqlite_libctx_sqlite_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden \
	$(SQLITE3_CFLAGS)
glue_sqlite_libctx_sqlite_la_LIBADD = libctx.la $(SQLITE3_LIBS)
glue_sqlite_libctx_sqlite_la_LDFLAGS = -version-info 0:0:0

noinst_PROGRAMS += glue/sqlite/example
glue_sqlite_example_SOURCES = glue/sqlite/example.c
glue_sqlite_example_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/sqlite
glue_sqlite_example_CFLAGS = $(AM_CFLAGS) $(SQLITE3_CFLAGS)
glue_sqlite_example_LDADD = glue/sqlite/libctx-sqlite.la libctx.la \
	$(SQLITE3_LIBS)

if HAVE_CHECK
check_PROGRAMS += glue/sqlite/check_sqlite
TESTS += glue/sqlite/check_sqlite
glue_sqlite_check_sqlite_SOURCES = glue/sqlite/tests.c glue/testing.c \
	glue/testing.h
glue_sqlite_check_sqlite_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/sqlite \
	-I$(srcdir)/glue -I$(srcdir)/tests
glue_sqlite_check_sqlite_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) \
	$(SQLITE3_CFLAGS)
glue_sqlite_check_sqlite_LDADD = glue/sqlite/libctx-sqlite.la libctx.la \
	$(SQLITE3_LIBS) $(CHECK_LIBS)
endif
endif
