# ---- libctx-curl (issue 15; the pool, issue 21): libcurl with contexts
# Everything of the library is in glue/curl: curl.c, its header
# ctx/curl.h (installed as <ctx/curl.h>), libctx-curl.pc, the manual
# pages in man/, and the test runner check_curl (tests.c), which runs its
# suite on both backends (glue/testing.h).
EXTRA_DIST += glue/curl/libctx-curl.pc.in glue/curl/grpc_server.go
dist_man3_MANS += \
	glue/curl/man/ctx_curl_perform.3 \
	glue/curl/man/ctx_curl_set_idle_limit.3 \
	glue/curl/man/ctx_curl_set_idle_timeout.3 \
	glue/curl/man/ctx_curl_close_idle.3 \
	glue/curl/man/ctx_curl_set_deadline_header.3
if HAVE_LIBCURL
lib_LTLIBRARIES += glue/curl/libctx-curl.la
ctxinclude_HEADERS += glue/curl/ctx/curl.h
pkgconfig_DATA += glue/curl/libctx-curl.pc
glue_curl_libctx_curl_la_SOURCES = glue/curl/curl.c glue/curl/deadline.c \
	glue/curl/ctx/curl.h
glue_curl_libctx_curl_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/curl \
	-DCTX_BUILDING_LIBRARY
glue_curl_libctx_curl_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden \
	$(LIBCURL_CFLAGS)
glue_curl_libctx_curl_la_LIBADD = libctx.la $(LIBCURL_LIBS)
glue_curl_libctx_curl_la_LDFLAGS = -version-info 0:0:0

if HAVE_CHECK
check_PROGRAMS += glue/curl/check_curl
TESTS += glue/curl/check_curl
glue_curl_check_curl_SOURCES = glue/curl/tests.c glue/curl/deadline_tests.c \
	glue/testing.c \
	glue/testing.h
glue_curl_check_curl_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/curl \
	-I$(srcdir)/glue -I$(srcdir)/tests
glue_curl_check_curl_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBCURL_CFLAGS)
glue_curl_check_curl_LDADD = glue/curl/libctx-curl.la libctx.la \
	$(LIBCURL_LIBS) $(CHECK_LIBS)

# check_grpc (issue 27): calls over HTTP/2 to a real gRPC server, the Go
# program grpc_server.go that grpcserver.c builds offline with Debian's
# golang-google-grpc-dev; skips (77) without them.
check_PROGRAMS += glue/curl/check_grpc
TESTS += glue/curl/check_grpc
glue_curl_check_grpc_SOURCES = glue/curl/grpc_tests.c glue/curl/grpcserver.c \
	glue/testing.c glue/testing.h
glue_curl_check_grpc_CPPFLAGS = $(glue_curl_check_curl_CPPFLAGS) \
	-DGRPC_SERVER_GO='"$(abs_top_srcdir)/glue/curl/grpc_server.go"'
glue_curl_check_grpc_CFLAGS = $(glue_curl_check_curl_CFLAGS)
glue_curl_check_grpc_LDADD = $(glue_curl_check_curl_LDADD)
endif
endif
