/*
 * Descriptors and threads in words, for ctx_dump and CTX_DEBUG=stuck:
 * what a descriptor is (from /proc/self/fd, and a socket's addresses
 * from the socket itself), and what a thread of this process is doing
 * (from /proc/self/task/TID/syscall: the system call it sits in, named,
 * with its descriptor described, or "running").
 *
 * Everything here reads the kernel's view at the moment of the call: a
 * descriptor may be closed, or a thread return, an instant later, so
 * every answer is a snapshot, and a failure to read is said in words,
 * never an error.  The memory of another thread (the array of a poll it
 * sits in) is read with process_vm_readv, which answers EFAULT where a
 * plain read could crash, should the thread have returned and its stack
 * gone.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/base.h"

/* ---- descriptors ----------------------------------------------------- */

/* An address in words: "127.0.0.1:80", "[::1]:80", "/run/x.sock",
 * "@abstract", "(unnamed)". */
static void addr_text(const struct sockaddr_storage *ss, socklen_t sl,
		      char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr_in *in = (const void *)ss;
	const struct sockaddr_in6 *in6 = (const void *)ss;
	const struct sockaddr_un *un = (const void *)ss;
	size_t path = sl > offsetof(struct sockaddr_un, sun_path) ?
			      sl - offsetof(struct sockaddr_un, sun_path) : 0;
	if (ss->ss_family == AF_INET &&
	    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
		snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
	else if (ss->ss_family == AF_INET6 &&
		 inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	else if (ss->ss_family == AF_UNIX && path > 1 && !un->sun_path[0])
		snprintf(buf, len, "@%.*s", (int)(path - 1), un->sun_path + 1);
	else if (ss->ss_family == AF_UNIX && path > 0 && un->sun_path[0])
		snprintf(buf, len, "%.*s", (int)strnlen(un->sun_path, path),
			 un->sun_path);
	else
		snprintf(buf, len, "(unnamed)");
}

/* "TCP", "UDP", "UNIX stream", ... */
static const char *sock_kind(int fd, int family)
{
	int type = 0, proto = 0;
	socklen_t sl = sizeof(type);
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl);
	sl = sizeof(proto);
	getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &sl);
	if (family == AF_UNIX)
		return type == SOCK_STREAM ? "UNIX stream" :
		       type == SOCK_DGRAM ? "UNIX datagram" : "UNIX seqpacket";
	if (family != AF_INET && family != AF_INET6)
		return "other";
	return proto == IPPROTO_TCP ? "TCP" : proto == IPPROTO_UDP ? "UDP" :
	       "IP";
}

static void describe_socket(int fd, char *buf, size_t len)
{
	struct sockaddr_storage me = { 0 }, peer = { 0 };
	socklen_t ml = sizeof(me), pl = sizeof(peer);
	char a[128], b[128];
	int listening = 0;
	socklen_t sl = sizeof(listening);
	if (getsockname(fd, (struct sockaddr *)&me, &ml) < 0) {
		snprintf(buf, len, "socket (its address: %s)", strerror(errno));
		return;
	}
	addr_text(&me, ml, a, sizeof(a));
	const char *kind = sock_kind(fd, me.ss_family);
	getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &sl);
	if (listening)
		snprintf(buf, len, "%s socket listening on %s", kind, a);
	else if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0) {
		addr_text(&peer, pl, b, sizeof(b));
		snprintf(buf, len, "%s socket %s, peer %s", kind, a, b);
	} else
		snprintf(buf, len, "%s socket %s, no peer", kind, a);
}

char *ctx__describe_fd(int fd, char *buf, size_t len)
{
	char path[64], target[256];
	if (!len)
		return buf;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = fd < 0 ? -1 : readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		snprintf(buf, len, fd < 0 ? "no descriptor" : "not open");
		return buf;
	}
	target[n] = '\0';
	if (strncmp(target, "socket:", 7) == 0)
		describe_socket(fd, buf, len);
	else
		snprintf(buf, len, "%s", target);
	return buf;
}

/* ---- threads ---------------------------------------------------------- */

/* The system calls a thread is likely to sit in, and whether the first
 * argument is a descriptor. */
struct sysname {
	long nr;
	const char *name;
	bool fd;
};

#define FD(n) { SYS_##n, #n, true }
#define NOFD(n) { SYS_##n, #n, false }
static const struct sysname calls[] = {
	FD(read), FD(write), FD(readv), FD(writev), FD(pread64),
	FD(pwrite64), FD(preadv), FD(pwritev), FD(preadv2), FD(pwritev2),
	FD(recvfrom), FD(sendto), FD(recvmsg), FD(sendmsg), FD(recvmmsg),
	FD(sendmmsg), FD(accept4), FD(connect), FD(epoll_pwait),
	FD(flock), FD(fcntl), FD(fsync), FD(fdatasync), FD(sendfile),
	FD(splice), FD(tee), FD(copy_file_range), FD(ioctl),
	FD(io_uring_enter), FD(close), FD(shutdown), FD(ftruncate),
	FD(fallocate), FD(getdents64), FD(sync_file_range),
	NOFD(ppoll), NOFD(pselect6), NOFD(futex), NOFD(nanosleep),
	NOFD(clock_nanosleep), NOFD(wait4), NOFD(waitid), NOFD(openat),
	NOFD(rt_sigsuspend), NOFD(rt_sigtimedwait), NOFD(sched_yield),
	NOFD(msgrcv), NOFD(semtimedop), NOFD(mq_timedreceive),
	NOFD(pidfd_open), NOFD(exit_group),
#ifdef SYS_accept
	FD(accept),
#endif
#ifdef SYS_epoll_wait
	FD(epoll_wait),
#endif
#ifdef SYS_poll
	NOFD(poll),
#endif
#ifdef SYS_select
	NOFD(select),
#endif
#ifdef SYS_pause
	NOFD(pause),
#endif
#ifdef SYS_open
	NOFD(open),
#endif
};

static const struct sysname *sys_find(long nr)
{
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		if (calls[i].nr == nr)
			return &calls[i];
	return NULL;
}

static bool is_poll(long nr)
{
#ifdef SYS_poll
	if (nr == SYS_poll)
		return true;
#endif
	return nr == SYS_ppoll;
}

/* The first descriptors of a poll's array, read from the thread's
 * memory: "on fd 3 (...) and 2 more".  Empty when it cannot be read. */
static void poll_fds(unsigned long arr, unsigned long n, char *buf,
		     size_t len)
{
	struct pollfd p;
	struct iovec here = { &p, sizeof(p) };
	struct iovec there = { (void *)arr, sizeof(p) };
	char d[256];
	buf[0] = '\0';
	if (n == 0 || process_vm_readv(getpid(), &here, 1, &there, 1, 0) !=
			      (ssize_t)sizeof(p))
		return;
	snprintf(buf, len, " on fd %d (%s)%s", p.fd,
		 ctx__describe_fd(p.fd, d, sizeof(d)),
		 n > 1 ? " and more" : "");
}

/* "read(2) on fd 3 (pipe:[99])", from the line's number and arguments. */
static void name_call(long nr, const unsigned long *a, char *buf, size_t len)
{
	const struct sysname *s = sys_find(nr);
	char d[256], more[320] = "";
	if (!s) {
		snprintf(buf, len, "system call %ld", nr);
		return;
	}
	if (s->fd)
		snprintf(more, sizeof(more), " on fd %d (%s)", (int)a[0],
			 ctx__describe_fd((int)a[0], d, sizeof(d)));
	else if (is_poll(nr))
		poll_fds(a[0], a[1], more, sizeof(more));
	snprintf(buf, len, "%s(2)%s", s->name, more);
}

/* One line of /proc/self/task/TID/FILE, without its newline; false with
 * errno when it cannot be read. */
static bool read_task_file(int tid, const char *file, char *line,
			   size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/%s", tid, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, line, len - 1);
	int e = errno;
	close(fd);
	errno = e;
	if (n < 0)
		return false;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	return true;
}

/* Why the file could not be read. */
static char *unreadable(int tid, int e, char *buf, size_t len)
{
	if (e == ENOENT || e == ESRCH)
		snprintf(buf, len, "gone (the thread ended)");
	else
		snprintf(buf, len, "unknown (/proc/self/task/%d/syscall: %s)",
			 tid, strerror(e));
	return buf;
}

char *ctx__describe_task(int tid, char *buf, size_t len)
{
	char line[256];
	long nr;
	unsigned long a[6];
	if (!read_task_file(tid, "syscall", line, sizeof(line)))
		return unreadable(tid, errno, buf, len);
	if (strcmp(line, "running") == 0)
		snprintf(buf, len, "running");
	else if (sscanf(line, "%ld %lx %lx %lx %lx %lx %lx", &nr, &a[0], &a[1],
			&a[2], &a[3], &a[4], &a[5]) == 7 && nr >= 0)
		name_call(nr, a, buf, len);
	else
		snprintf(buf, len, "stopped outside any system call");
	return buf;
}

char *ctx__task_name(int tid, char *buf, size_t len)
{
	if (!read_task_file(tid, "comm", buf, len))
		snprintf(buf, len, "?");
	return buf;
}
