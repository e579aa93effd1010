/*
 * jthread_read: a std::jthread that reads a pipe with ctx_read under a
 * context bound to its std::stop_token (ctx::with_stop_token), so that
 * request_stop() -- or the jthread's destructor -- ends a read that
 * nothing else could interrupt.  No polling, no timeout, no self-pipe.
 *
 * It prints the two lines it is sent, then how long after request_stop
 * the blocked read returned, and exits 0 when all of that happened
 * (make check runs it).
 *
 *     $ examples/jthread_read
 *     read: hello
 *     read: world
 *     reader: context canceled (stop requested) 0.031 ms after request_stop
 */
#include <ctx.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <unistd.h>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

std::atomic<steady::rep> stop_at{ 0 }; /* when main asked for the stop */

/* Reads and prints what comes through fd until the stop request ends the
 * read; returns 0 if it was the stop that ended it. */
int reader(std::stop_token st, int fd, int &lines)
{
	ctx::context c = ctx::with_stop_token(ctx::background(), st);
	std::string text;
	char buf[256];
	ssize_t n;
	while ((n = ctx_read(c.get(), fd, buf, sizeof(buf))) > 0) {
		text.append(buf, static_cast<size_t>(n));
		for (size_t nl; (nl = text.find('\n')) != std::string::npos;
		     lines++) {
			std::printf("read: %s\n", text.substr(0, nl).c_str());
			text.erase(0, nl + 1);
		}
		std::fflush(stdout);
	}
	int err = errno;
	auto ended = steady::now().time_since_epoch().count();
	if (n != -1 || err != CTX_CANCELED) {
		std::printf("reader: unexpected end: %zd, %s\n", n,
			    ctx_strerror(err));
		return 1;
	}
	std::printf("reader: %s (%s) %.3f ms after request_stop\n",
		    ctx_strerror(err), c.cause_msg(),
		    static_cast<double>(ended - stop_at.load()) / 1e6);
	return 0;
}

} // namespace

int main()
{
	int p[2];
	if (pipe(p))
		return 1;
	int lines = 0, result = 1;
	std::jthread t([&](std::stop_token st) {
		result = reader(st, p[0], lines);
	});
	if (write(p[1], "hello\nworld\n", 12) != 12)
		return 1;
	std::this_thread::sleep_for(100ms); /* the reader is blocked again */
	stop_at = steady::now().time_since_epoch().count();
	t.request_stop();
	t.join();
	close(p[0]);
	close(p[1]);
	return result == 0 && lines == 2 ? 0 : 1;
}
