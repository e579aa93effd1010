# Examples: built by make, checked by make check (see examples/README).
# They link against libctx.la, the installed library's shape, and use only
# the public header <ctx.h>.

noinst_PROGRAMS += \
	examples/workers \
	examples/timeout \
	examples/propagation \
	examples/waitgroup \
	examples/foreign_loop \
	examples/slowloris \
	examples/workqueue \
	examples/runjobs

examples_workers_SOURCES = examples/workers.c
examples_workers_LDADD = libctx.la
examples_timeout_SOURCES = examples/timeout.c
examples_timeout_LDADD = libctx.la
examples_propagation_SOURCES = examples/propagation.c
examples_propagation_LDADD = libctx.la
examples_waitgroup_SOURCES = examples/waitgroup.c
examples_waitgroup_LDADD = libctx.la
examples_foreign_loop_SOURCES = examples/foreign_loop.c
examples_foreign_loop_LDADD = libctx.la
# A bounded work queue on ctx_cond_t with a select loop (issue 13).
examples_workqueue_SOURCES = examples/workqueue.c
examples_workqueue_LDADD = libctx.la
# A test client for httpd's header deadline.
examples_slowloris_SOURCES = examples/slowloris.c
examples_slowloris_LDADD = libctx.la
examples_runjobs_SOURCES = examples/runjobs.c
examples_runjobs_LDADD = libctx.la
# A TCP proxy on ctx_listen, ctx_dial and ctx_proxy (issue 24).
noinst_PROGRAMS += examples/tcpproxy
examples_tcpproxy_SOURCES = examples/tcpproxy.c
examples_tcpproxy_LDADD = libctx.la

if HAVE_LIBUV
noinst_PROGRAMS += examples/foreign_loop_uv
examples_foreign_loop_uv_SOURCES = examples/foreign_loop_uv.c
examples_foreign_loop_uv_CFLAGS = $(AM_CFLAGS) $(LIBUV_CFLAGS)
examples_foreign_loop_uv_LDADD = libctx.la $(LIBUV_LIBS)
endif

if HAVE_HTTP_PARSER
noinst_PROGRAMS += examples/httpd
# The files and what each is for: examples/httpd-src/httpd.h.
examples_httpd_SOURCES = examples/httpd-src/httpd.h \
	examples/httpd-src/main.c examples/httpd-src/shutdown.c \
	examples/httpd-src/accept.c examples/httpd-src/conn.c \
	examples/httpd-src/request.c examples/httpd-src/handlers.c \
	examples/httpd-src/parse.c examples/httpd-src/transport.c \
	examples/httpd-src/tls.c examples/httpd-src/log.c \
	examples/httpd-src/upstream.c
examples_httpd_LDADD = $(HTTPD_TLS_LIBS) $(HTTPD_CURL_LIBS) libctx.la \
	$(HTTP_PARSER_LIBS)
examples_httpd_CFLAGS = $(AM_CFLAGS) $(HTTPD_TLS_CFLAGS) $(HTTPD_CURL_CFLAGS)
endif
# httpd --upstream URL: through libctx-curl, when libcurl is there.
if HAVE_LIBCURL
HTTPD_CURL_LIBS = glue/curl/libctx-curl.la $(LIBCURL_LIBS)
HTTPD_CURL_CFLAGS = -I$(srcdir)/glue/curl $(LIBCURL_CFLAGS)
else
HTTPD_CURL_LIBS =
HTTPD_CURL_CFLAGS =
endif
# httpd --tls CERT KEY: through libctx-ssl, when OpenSSL is there.
if HAVE_OPENSSL
HTTPD_TLS_LIBS = glue/ssl/libctx-ssl.la $(OPENSSL_LIBS)
HTTPD_TLS_CFLAGS = -I$(srcdir)/glue/ssl $(OPENSSL_CFLAGS)
else
HTTPD_TLS_LIBS =
HTTPD_TLS_CFLAGS =
endif

# The tests run the programs with real clients; each skips (exit 77) when
# what it needs was not built or is not installed.
EXAMPLE_TESTS = tests/examples.sh tests/httpd.sh tests/fetch.sh tests/tcpproxy.sh \
	tests/chain.sh tests/httpd_dump.sh
TESTS += $(EXAMPLE_TESTS)
EXTRA_DIST += $(EXAMPLE_TESTS) tests/tap.sh \
	examples/README examples/bench-httpd.sh examples/bench-httpd.lua \
	examples/inherit.sh

# Load: wrk against httpd's /fast (`make bench-httpd`; needs wrk).
.PHONY: bench-httpd
if HAVE_HTTP_PARSER
bench-httpd: examples/httpd$(EXEEXT)
	@bash $(srcdir)/examples/bench-httpd.sh ./examples/httpd$(EXEEXT) \
		$(srcdir)/examples/bench-httpd.lua '$(WRK)'
else
bench-httpd:
	@echo "bench-httpd: skipped: httpd was not built (no http-parser)"
endif

# fetch: parallel downloads through libctx-curl (issue 15).
if HAVE_LIBCURL
noinst_PROGRAMS += examples/fetch
examples_fetch_SOURCES = examples/fetch.c
examples_fetch_CFLAGS = $(AM_CFLAGS) -I$(srcdir)/glue/curl $(LIBCURL_CFLAGS)
examples_fetch_LDADD = glue/curl/libctx-curl.la libctx.la $(LIBCURL_LIBS)
# fetch -r over https: ctx_ssl_dial.
if HAVE_OPENSSL
examples_fetch_CFLAGS += -I$(srcdir)/glue/ssl $(OPENSSL_CFLAGS)
examples_fetch_LDADD += glue/ssl/libctx-ssl.la $(OPENSSL_LIBS)
endif
endif

# A std::jthread whose request_stop ends a ctx_read it is blocked in,
# through <ctx.hpp> (issue 26); it checks itself, and make check runs it.
if HAVE_CXX20
noinst_PROGRAMS += examples/jthread_read
examples_jthread_read_SOURCES = examples/jthread_read.cc
examples_jthread_read_CPPFLAGS = -I$(top_srcdir)/include
examples_jthread_read_CXXFLAGS = -std=c++20 $(CPP_TEST_WARN) -pthread
examples_jthread_read_LDADD = libctx.la
TESTS += examples/jthread_read
endif
