# ---- libctx-ssl (issue 15): OpenSSL with contexts ---------------------
# Everything of the library is in glue/ssl: ssl.c, its header ctx/ssl.h
# (installed as <ctx/ssl.h>), libctx-ssl.pc, the manual pages in man/,
# and the test runner check_ssl (tests.c), which runs its suite on both
# backends (glue/testing.h).
EXTRA_DIST += glue/ssl/libctx-ssl.pc.in
dist_man3_MANS += \
	glue/ssl/man/ctx_ssl_connect.3 \
	glue/ssl/man/ctx_ssl_accept.3 \
	glue/ssl/man/ctx_ssl_read.3 \
	glue/ssl/man/ctx_ssl_write.3 \
	glue/ssl/man/ctx_ssl_shutdown.3 \
	glue/ssl/man/ctx_ssl_dial.3 \
	glue/ssl/man/ctx_ssl_conn_new.3
if HAVE_OPENSSL
lib_LTLIBRARIES += glue/ssl/libctx-ssl.la
ctxinclude_HEADERS += glue/ssl/ctx/ssl.h
pkgconfig_DATA += glue/ssl/libctx-ssl.pc
glue_ssl_libctx_ssl_la_SOURCES = glue/ssl/ssl.c glue/ssl/conn.c \
	glue/ssl/ctx/ssl.h
glue_ssl_libctx_ssl_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/ssl \
	-DCTX_BUILDING_LIBRARY
glue_ssl_libctx_ssl_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden \
	$(OPENSSL_CFLAGS)
glue_ssl_libctx_ssl_la_LIBADD = libctx.la $(OPENSSL_LIBS)
glue_ssl_libctx_ssl_la_LDFLAGS = -version-info 0:0:0

if HAVE_CHECK
check_PROGRAMS += glue/ssl/check_ssl
TESTS += glue/ssl/check_ssl
glue_ssl_check_ssl_SOURCES = glue/ssl/tests.c glue/ssl/conn_tests.c \
	glue/testing.c \
	glue/testing.h
glue_ssl_check_ssl_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/ssl \
	-I$(srcdir)/glue -I$(srcdir)/tests
glue_ssl_check_ssl_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(OPENSSL_CFLAGS)
glue_ssl_check_ssl_LDADD = glue/ssl/libctx-ssl.la libctx.la \
	$(OPENSSL_LIBS) $(CHECK_LIBS)
endif
endif
