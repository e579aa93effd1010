# ---- libctx-pq (issue 25): libpq with contexts ------------------------
# Everything of the library is in glue/pq: pq.c, its header ctx/pq.h
# (installed as <ctx/pq.h>), libctx-pq.pc, the manual pages in man/, an
# example, and the test runner check_pq (tests.c), which starts a
# throwaway PostgreSQL (testserver.c, with glue/testing.c) and runs its
# suite on both backends.
EXTRA_DIST += glue/pq/libctx-pq.pc.in glue/testing.h glue/testing.c \
	glue/runner.h
dist_man3_MANS += \
	glue/pq/man/ctx_pq_connect.3 \
	glue/pq/man/ctx_pq_exec.3 \
	glue/pq/man/ctx_pq_exec_params.3 \
	glue/pq/man/ctx_pq_get_result.3
if HAVE_LIBPQ
lib_LTLIBRARIES += glue/pq/libctx-pq.la
ctxinclude_HEADERS += glue/pq/ctx/pq.h
pkgconfig_DATA += glue/pq/libctx-pq.pc
glue_pq_libctx_pq_la_SOURCES = glue/pq/pq.c glue/pq/ctx/pq.h
glue_pq_libctx_pq_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/pq \
	-DCTX_BUILDING_LIBRARY
glue_pq_libctx_pq_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(LIBPQ_CFLAGS)
glue_pq_libctx_pq_la_LIBADD = libctx.la $(LIBPQ_LIBS)
glue_pq_libctx_pq_la_LDFLAGS = -version-info 0:0:0

noinst_PROGRAMS += glue/pq/example
glue_pq_example_SOURCES = glue/pq/example.c
glue_pq_example_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/pq
glue_pq_example_CFLAGS = $(AM_CFLAGS) $(LIBPQ_CFLAGS)
glue_pq_example_LDADD = glue/pq/libctx-pq.la libctx.la $(LIBPQ_LIBS)

if HAVE_CHECK
check_PROGRAMS += glue/pq/check_pq
TESTS += glue/pq/check_pq
glue_pq_check_pq_SOURCES = glue/pq/tests.c glue/pq/testserver.c \
	glue/testing.c glue/testing.h
glue_pq_check_pq_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/pq \
	-I$(srcdir)/glue -I$(srcdir)/tests
glue_pq_check_pq_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBPQ_CFLAGS)
glue_pq_check_pq_LDADD = glue/pq/libctx-pq.la libctx.la $(LIBPQ_LIBS) \
	$(CHECK_LIBS)
endif
endif
