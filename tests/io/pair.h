/*
 * Connected descriptors of every kind the I/O contract names, each both
 * blocking and non-blocking, and the test's own side of them: plain
 * calls that never block (tests/io/pair.c).  Used by the io suite and by
 * the contract rows of the transfers.
 */
#ifndef CTX_TEST_PAIR_H
#define CTX_TEST_PAIR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

#include "testutil.h"

/* Eight bytes, so that it is also one eventfd value (the NUL included). */
static const char msg[] = "1234567";
#define MSG_LEN sizeof(msg)

#define PAIR_LATE_MS 2000 /* "promptly", on a shared and noisy machine */
#define PAIR_QUIET_MS 20  /* this long without data: nothing came (too
			     short can only miss a failure) */

/* Odd kinds are the non-blocking twins of the even ones.  Sockets come
 * first and eventfds (counters, not streams) last, so that loop tests
 * can take a prefix.  A terminal is tested from both sides: its master
 * (an open of /dev/ptmx) is a different file from the terminal itself. */
enum {
	K_UNIX, K_UNIX_NB,
	K_TCP, K_TCP_NB,
	N_SOCK_KINDS,
	K_PIPE = N_SOCK_KINDS, K_PIPE_NB,
	K_FIFO, K_FIFO_NB,
	K_PTY, K_PTY_NB,
	K_PTM, K_PTM_NB,
	N_STREAM_KINDS,
	K_EVENTFD = N_STREAM_KINDS, K_EVENTFD_NB,
	N_KINDS,
};

/* For messages: "... on %s". */
extern const char *const kind_name[N_KINDS];

static inline bool is_nonblocking(int kind) { return kind & 1; }
static inline bool is_eventfd(int kind) { return kind >= K_EVENTFD; }

/*
 * Two connected descriptors.  The library is tested on rd (ctx_read) and
 * wr (ctx_write); the test makes rd readable by writing feed, and reads
 * what wr wrote from drain.  For a pipe rd and wr are its two ends; for
 * the others rd == wr and feed == drain is the far end (an eventfd is
 * its own far end).
 */
struct pair {
	int kind;
	int rd, wr, feed, drain;
	int fd[2];
};

void open_pair(struct pair *p, int kind);
void close_pair(struct pair *p);

/* Fill wr until a write would block, and return how much went in. */
size_t fill(struct pair *p);
/* After fill(): everything that reached the far end is exactly what fill
 * put there; nothing of a refused write followed it. */
void assert_drained(struct pair *p, size_t filled);

/* Descriptor flags, asserted to be readable. */
void set_nonblock(int fd, bool on);
bool nonblock_flag(int fd);
bool cloexec_flag(int fd);

/* TCP on 127.0.0.1, with small buffers (SOCKBUF) that fill fast. */
#define SOCKBUF 16384
void small_buffers(int fd);
struct sockaddr_in loopback(in_port_t port);
in_port_t local_port(int fd);
int tcp_listener(int backlog, struct sockaddr_in *addr);
int tcp_socket(bool nonblock);
int tcp_client(const struct sockaddr_in *a);
struct sockaddr_in closed_port(void); /* nobody listens there */

/* An AF_UNIX listener with backlog 0 whose queue is full: connect(2) on
 * a blocking socket waits for room (an accept makes it), on a
 * non-blocking one fails with EAGAIN. */
struct unix_listener {
	struct sockaddr_un addr;
	char dir[32];
	int l, queued[8], nqueued;
};
int unix_socket(bool nonblock);
void unix_full_open(struct unix_listener *u);
void unix_full_close(struct unix_listener *u);

/* A regular file holding content, unlinked, its offset at 0. */
int temp_file(const char *content, bool nonblock);

/* The test's side, asserting. */
bool ready_for(int fd, short events, int ms);
bool readable(int fd, int ms);
void put(int fd, const void *buf, size_t len);
ssize_t get(int fd, void *buf, size_t len, int ms);
size_t drain_upto(int fd, char *buf, size_t want, int ms);
/* One message from a stream, which may come in pieces (a terminal
 * written a byte at a time): the count of its bytes that came. */
#define get_msg(fd, buf) ((ssize_t)drain_upto((fd), (buf), MSG_LEN, PAIR_LATE_MS))

/* The same without assertions, for helper threads: 0 or an errno; the
 * count read. */
int put_quiet(int fd, const void *buf, size_t len);
size_t drain_quiet(int fd, char *buf, size_t want, int ms);

/* A transfer of want bytes on a kind of descriptor, with errno if not. */
#define assert_moved(n, want, kind)                                         \
	do {                                                                \
		ssize_t n__ = (n);                                          \
		int errno__ = errno;                                        \
		ck_assert_msg(n__ == (ssize_t)(want), "%zd bytes (errno %d, " \
			      "%s) on %s, expected %zd", n__, errno__,    \
			      n__ < 0 ? strerror(errno__) : "-",            \
			      kind_name[kind], (ssize_t)(want));            \
	} while (0)

#endif
