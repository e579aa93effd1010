# ---- libctx-redis (issue 25): hiredis with contexts -------------------
# Everything of the library is in glue/redis: redis.c, its header
# ctx/redis.h (installed as <ctx/redis.h>), libctx-redis.pc, the manual
# pages in man/, an example, and the test runner check_redis (tests.c),
# which starts a throwaway Redis (testserver.c, with glue/testing.c) and
# runs its suite on both backends.
EXTRA_DIST += glue/redis/libctx-redis.pc.in
dist_man3_MANS += \
	glue/redis/man/ctx_redis_connect.3 \
	glue/redis/man/ctx_redis_command.3 \
	glue/redis/man/ctx_redis_vcommand.3 \
	glue/redis/man/ctx_redis_get_reply.3
if HAVE_HIREDIS
lib_LTLIBRARIES += glue/redis/libctx-redis.la
ctxinclude_HEADERS += glue/redis/ctx/redis.h
pkgconfig_DATA += glue/redis/libctx-redis.pc
glue_redis_libctx_redis_la_SOURCES = glue/redis/redis.c glue/redis/ctx/redis.h
glue_redis_libctx_redis_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/redis \
	-DCTX_BUILDING_LIBRARY
glue_redis_libctx_redis_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden \
	$(HIREDIS_CFLAGS)
glue_redis_libctx_redis_la_LIBADD = libctx.la $(HIREDIS_LIBS)
glue_redis_libctx_redis_la_LDFLAGS = -version-info 0:0:0

noinst_PROGRAMS += glue/redis/example
glue_redis_example_SOURCES = glue/redis/example.c
glue_redis_example_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/redis
glue_redis_example_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS)
glue_redis_example_LDADD = glue/redis/libctx-redis.la libctx.la \
	$(HIREDIS_LIBS)

if HAVE_CHECK
check_PROGRAMS += glue/redis/check_redis
TESTS += glue/redis/check_redis
glue_redis_check_redis_SOURCES = glue/redis/tests.c glue/redis/testserver.c \
	glue/testing.c glue/testing.h
glue_redis_check_redis_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/redis \
	-I$(srcdir)/glue -I$(srcdir)/tests
glue_redis_check_redis_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) \
	$(HIREDIS_CFLAGS)
glue_redis_check_redis_LDADD = glue/redis/libctx-redis.la libctx.la \
	$(HIREDIS_LIBS) $(CHECK_LIBS)
endif
endif
