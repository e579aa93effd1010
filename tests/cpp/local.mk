# ---- C++: <ctx.hpp> and <ctx.h> as C++ (issue 26) ------------------------
#
# One Check suite (tests/cpp/*.cc), built from the same sources several
# times: with $(CXX) at -std=c++17 and -std=c++20 (automake programs
# with per-target flags), and with clang++ at both where configure found
# it (explicit rules: automake gives one C++ compiler per Makefile).
# Each is compiled as a user would compile it: only include/ on the
# include path, -Wall -Wextra -pedantic -Werror (and -Wshadow and
# -Wold-style-cast, which careful C++ projects turn on); the sanitizer
# builds add their flags through CXXFLAGS.  Each runs as a test on the
# default backend, and tests/cpp/uring.sh runs them all again on
# io_uring.  tests/cpp/headers.sh compiles <ctx.h> and the glue headers
# at every standard from C++11.

include_HEADERS += include/ctx.hpp
TESTS += tests/cpp/headers.sh
EXTRA_DIST += tests/cpp/headers.sh tests/cpp/plain.cc tests/cpp/uring.sh

CPP_TEST_SOURCES = tests/cpp/cpptest.h tests/cpp/main.cc \
	tests/cpp/context.cc tests/cpp/thread.cc tests/cpp/after.cc \
	tests/cpp/stop.cc tests/cpp/constructs.cc tests/cpp/sites.cc
CPP_TEST_CPPFLAGS = -I$(top_srcdir)/include $(CHECK_CFLAGS)
CPP_TEST_WARN = -Wall -Wextra -pedantic -Werror -Wshadow -Wold-style-cast
CPP_TEST_LDADD = libctx.la $(CHECK_LIBS)
# The programs built here, for tests/cpp/uring.sh.
CPP_SUITES =

if HAVE_CHECK
if HAVE_CXX17
check_PROGRAMS += tests/cpp/check_cpp17
tests_cpp_check_cpp17_SOURCES = $(CPP_TEST_SOURCES)
tests_cpp_check_cpp17_CPPFLAGS = $(CPP_TEST_CPPFLAGS)
tests_cpp_check_cpp17_CXXFLAGS = -std=c++17 $(CPP_TEST_WARN) -pthread
tests_cpp_check_cpp17_LDADD = $(CPP_TEST_LDADD)
CPP_SUITES += tests/cpp/check_cpp17
endif
if HAVE_CXX20
check_PROGRAMS += tests/cpp/check_cpp20
tests_cpp_check_cpp20_SOURCES = $(CPP_TEST_SOURCES)
tests_cpp_check_cpp20_CPPFLAGS = $(CPP_TEST_CPPFLAGS)
tests_cpp_check_cpp20_CXXFLAGS = -std=c++20 $(CPP_TEST_WARN) -pthread
tests_cpp_check_cpp20_LDADD = $(CPP_TEST_LDADD)
CPP_SUITES += tests/cpp/check_cpp20
endif

# clang++: compiled and linked in one step through libtool, as automake
# links its own programs.
CPP_TEST_SRC_PATHS = $(srcdir)/tests/cpp/main.cc \
	$(srcdir)/tests/cpp/context.cc $(srcdir)/tests/cpp/thread.cc \
	$(srcdir)/tests/cpp/after.cc $(srcdir)/tests/cpp/stop.cc $(srcdir)/tests/cpp/constructs.cc \
	$(srcdir)/tests/cpp/sites.cc
CPP_TEST_DEPS = $(CPP_TEST_SRC_PATHS) $(srcdir)/tests/cpp/cpptest.h \
	$(srcdir)/include/ctx.hpp $(srcdir)/include/ctx.h libctx.la
CLANG_CPP_LINK = $(LIBTOOL) $(AM_V_lt) --tag=CXX $(AM_LIBTOOLFLAGS) \
	$(LIBTOOLFLAGS) --mode=link $(CLANGXX) $(CPP_TEST_WARN) -pthread \
	$(CPP_TEST_CPPFLAGS) $(CXXFLAGS) $(LDFLAGS)
if HAVE_CLANG17
check_SCRIPTS += tests/cpp/check_cpp_clang17
CPP_SUITES += tests/cpp/check_cpp_clang17
tests/cpp/check_cpp_clang17: $(CPP_TEST_DEPS)
	@$(MKDIR_P) tests/cpp
	$(AM_V_CXXLD)$(CLANG_CPP_LINK) -std=c++17 -o $@ \
		$(CPP_TEST_SRC_PATHS) $(CPP_TEST_LDADD)
endif
if HAVE_CLANG20
check_SCRIPTS += tests/cpp/check_cpp_clang20
CPP_SUITES += tests/cpp/check_cpp_clang20
tests/cpp/check_cpp_clang20: $(CPP_TEST_DEPS)
	@$(MKDIR_P) tests/cpp
	$(AM_V_CXXLD)$(CLANG_CPP_LINK) -std=c++20 -o $@ \
		$(CPP_TEST_SRC_PATHS) $(CPP_TEST_LDADD)
endif
TESTS += $(CPP_SUITES) tests/cpp/uring.sh
endif

# tests/cpp/uring.sh's list of the suites built.
check_SCRIPTS += tests/cpp/suites.list
tests/cpp/suites.list: Makefile
	@$(MKDIR_P) tests/cpp
	$(AM_V_GEN)echo $(CPP_SUITES) > $@
CLEANFILES += tests/cpp/suites.list tests/cpp/check_cpp_clang17 \
	tests/cpp/check_cpp_clang20
