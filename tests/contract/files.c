/*
 * Contract rows: files -- the calls on regular files, which never wait
 * (ctx_read, ctx_write, the positional and vectored ones, the syncs,
 * ctx_copy_file_range), ctx_sendfile into a full socket, ctx_splice
 * from an empty pipe, ctx_open of a FIFO from either end, and the locks
 * (ctx_flock, ctx_lock_range) while another process holds them.
 *
 * Kept means: a regular file's contents and offset are as they were, the
 * bytes are still in the pipe, no descriptor was left open, no lock is
 * held.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../contract.h"
#include "../io/pair.h"

#define SENT 100              /* what a plain sendfile sends */
#define PARTIAL_SIZE (2 << 20) /* far more than a socket buffers */

struct st {
	char dir[32], path[64];
	int f, g;                  /* a file, and a second one */
	int fd;                    /* what ctx_open returned */
	int other;                 /* the FIFO's other end */
	int fds;                   /* descriptors before the call */
	off_t in, out;             /* offsets a call moves */
	char buf[16];
	struct pair p;             /* ctx_sendfile's socket */
	size_t filled;
	size_t size;               /* the file's */
	int pipe[2], pipe2[2];     /* ctx_splice's */
	size_t len;                /* what it asks to move */
	pid_t holder;              /* the process holding the lock */
	int gate[2];               /* its end is the end of this pipe */
	int kind;                  /* of lock */
};

static void tmp_dir(struct st *s, const char *name)
{
	strcpy(s->dir, "/tmp/ctx-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/%s", s->dir, name);
}

static int noop_ready(void *v) { (void)v; return 0; }

/* A byte of the pattern the files hold. */
static char pattern(size_t i)
{
	return (char)(i * 7 % 251);
}

/* ---- regular files: never a wait ----------------------------------------- */

/* "hello", its offset at 0; O_NONBLOCK when arg says so. */
static void file_setup(void *v, int nonblock)
{
	struct st *s = v;

	tmp_dir(s, "f");
	s->f = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC |
				     (nonblock ? O_NONBLOCK : 0), 0600);
	ck_assert_int_ge(s->f, 0);
	ck_assert_int_eq(write(s->f, "hello", 5), 5);
	ck_assert_int_eq(lseek(s->f, 0, SEEK_SET), 0);
	s->g = -1;
}

/* The file holds want, and its offset is at. */
static void assert_file(int fd, const char *want, off_t at)
{
	char buf[16] = { 0 };
	struct stat st;

	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), at);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)strlen(want));
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)strlen(want));
	ck_assert_str_eq(buf, want);
}

static void file_kept(void *v)
{
	struct st *s = v;

	assert_file(s->f, "hello", 0);
}

static void file_teardown(void *v)
{
	struct st *s = v;

	char g[72];

	close(s->f);
	if (s->g >= 0)
		close(s->g);
	snprintf(g, sizeof(g), "%s/g", s->dir);
	unlink(g);
	unlink(s->path);
	rmdir(s->dir);
}

static long read_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_read(c, s->f, s->buf, sizeof(s->buf));
}

static void read_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 5);
	ck_assert_mem_eq(s->buf, "hello", 5);
	assert_file(s->f, "hello", 5);
}

static long write_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_write(c, s->f, "j", 1);
}

static void write_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 1);
	assert_file(s->f, "jello", 1);
}

static long pread_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_pread(c, s->f, s->buf, sizeof(s->buf), 1);
}

static void pread_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 4);
	ck_assert_mem_eq(s->buf, "ello", 4);
	assert_file(s->f, "hello", 0);
}

static long pwrite_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_pwrite(c, s->f, "p!", 2, 3);
}

static void pwrite_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 2);
	assert_file(s->f, "help!", 0);
}

static long preadv_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct iovec iov[2] = { { s->buf, 2 }, { s->buf + 2, 8 } };

	return ctx_preadv(c, s->f, iov, 2, 1);
}

static long pwritev_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct iovec iov[2] = { { "p", 1 }, { "!", 1 } };

	return ctx_pwritev(c, s->f, iov, 2, 3);
}

static long fsync_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_fsync(c, s->f);
}

static long fdatasync_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_fdatasync(c, s->f);
}

static void synced(void *v, long rc)
{
	ck_assert_int_eq(rc, 0);
	file_kept(v);
}

/* From the file to a second, empty one, at offsets of the caller's. */
static void copy_setup(void *v, int arg)
{
	struct st *s = v;
	char path[72];

	file_setup(v, arg);
	snprintf(path, sizeof(path), "%s/g", s->dir);
	s->g = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(s->g, 0);
}

static long copy_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_copy_file_range(c, s->f, &s->in, s->g, &s->out, 100, 0);
}

static void copy_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 5);
	ck_assert_int_eq(s->in, 5);
	ck_assert_int_eq(s->out, 5);
	assert_file(s->g, "hello", 0);
	file_kept(v);
}

static void copy_kept(void *v)
{
	struct st *s = v;

	ck_assert_int_eq(s->in, 0);
	ck_assert_int_eq(s->out, 0);
	assert_file(s->g, "", 0);
	file_kept(v);
}

/* ---- sendfile into a full socket ------------------------------------------ */

/* A file of size bytes of the pattern. */
static void pattern_file(struct st *s, size_t size)
{
	char block[4096];

	ck_assert_int_eq(ftruncate(s->f, 0), 0);
	for (size_t at = 0; at < size; at += sizeof(block)) {
		size_t n = size - at < sizeof(block) ? size - at : sizeof(block);
		for (size_t i = 0; i < n; i++)
			block[i] = pattern(at + i);
		ck_assert_int_eq(pwrite(s->f, block, n, (off_t)at), (ssize_t)n);
	}
	s->size = size;
}

static void sendfile_setup(void *v, int arg)
{
	struct st *s = v;

	file_setup(v, 0);
	pattern_file(s, SENT);
	open_pair(&s->p, arg);
	s->filled = fill(&s->p);
}

static int sendfile_ready(void *v)
{
	struct st *s = v;
	size_t n = drain_quiet(s->p.drain, NULL, s->filled, PAIR_LATE_MS);

	return n == s->filled ? 0 : EAGAIN;
}

static long sendfile_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_sendfile(c, s->p.wr, s->f, &s->in, s->size);
}

/* The far end holds exactly the file's first n bytes; the offset says n. */
static void sendfile_moved(void *v, long n)
{
	struct st *s = v;
	char buf[4096];

	ck_assert_msg((size_t)n < s->size || s->size == SENT, "all %zu bytes "
		      "went into a full socket", s->size);
	ck_assert_int_eq(s->in, n);
	for (long at = 0; at < n;) {
		size_t k = drain_upto(s->p.drain, buf, (size_t)(n - at) <
				      sizeof(buf) ? (size_t)(n - at) : sizeof(buf),
				      PAIR_LATE_MS);
		ck_assert_uint_gt(k, 0);
		for (size_t i = 0; i < k; i++)
			ck_assert_int_eq(buf[i], pattern((size_t)at + i));
		at += (long)k;
	}
	ck_assert(!readable(s->p.drain, PAIR_QUIET_MS));
}

static void sendfile_check(void *v, long rc)
{
	ck_assert_int_eq(rc, SENT);
	sendfile_moved(v, rc);
}

static void sendfile_kept(void *v)
{
	sendfile_moved(v, 0);
}

static void sendfile_partial(void *v)
{
	struct st *s = v;

	ck_assert_int_eq(sendfile_ready(v), 0);
	pattern_file(s, PARTIAL_SIZE);
}

static void sendfile_unstick(void *v)
{
	struct st *s = v;

	drain_quiet(s->p.drain, NULL, SIZE_MAX, PAIR_QUIET_MS);
}

static void sendfile_teardown(void *v)
{
	struct st *s = v;

	close_pair(&s->p);
	file_teardown(v);
}

/* ---- splice from an empty pipe --------------------------------------------- */

static void splice_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	ck_assert_int_eq(pipe2(s->pipe, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(s->pipe2, O_CLOEXEC), 0);
	s->len = MSG_LEN;
}

static int splice_ready(void *v)
{
	struct st *s = v;

	return put_quiet(s->pipe[1], msg, MSG_LEN);
}

static long splice_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_splice(c, s->pipe[0], NULL, s->pipe2[1], NULL, s->len, 0);
}

/* Half of what it asks for is there: it moves that, waits for the rest
 * until the end, and says how much it moved. */
static void splice_partial(void *v)
{
	struct st *s = v;

	put(s->pipe[1], msg, MSG_LEN);
	s->len = 2 * MSG_LEN;
}

static void splice_unstick(void *v)
{
	struct st *s = v;

	put_quiet(s->pipe[1], msg, MSG_LEN);
}

/* Exactly n bytes of the message went through, and nothing is left. */
static void splice_moved(void *v, long n)
{
	struct st *s = v;
	char buf[16] = { 0 };

	ck_assert_int_lt(n, (long)s->len);
	ck_assert_int_eq(get_msg(s->pipe2[0], buf), n);
	ck_assert_mem_eq(buf, msg, (size_t)n);
	ck_assert(!readable(s->pipe2[0], 0));
	if (n > 0)
		ck_assert(!readable(s->pipe[0], 0));
}

static void splice_check(void *v, long rc)
{
	struct st *s = v;
	char buf[16] = { 0 };

	ck_assert_int_eq(rc, MSG_LEN);
	ck_assert_int_eq(get_msg(s->pipe2[0], buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
	ck_assert(!readable(s->pipe[0], 0));
}

static void splice_kept(void *v)
{
	struct st *s = v;
	char buf[16] = { 0 };

	ck_assert_int_eq(get_msg(s->pipe[0], buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
	ck_assert(!readable(s->pipe2[0], 0));
}

static void splice_teardown(void *v)
{
	struct st *s = v;

	for (int i = 0; i < 2; i++) {
		close(s->pipe[i]);
		close(s->pipe2[i]);
	}
}

/* ---- a FIFO, opened from one end ------------------------------------------- */

/* ctx_open waits for the other end; arg is O_RDONLY or O_WRONLY. */
static void fifo_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	tmp_dir(s, "fifo");
	ck_assert_int_eq(mkfifo(s->path, 0600), 0);
	s->fd = s->other = -1;
	tu_warm_up();
	s->fds = tu_count_fds();
}

/* The other end: opened for both, it is reader and writer. */
static int fifo_ready(void *v)
{
	struct st *s = v;

	s->other = open(s->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	return s->other < 0 ? errno : 0;
}

static long fifo_rd_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return s->fd = ctx_open(c, s->path, O_RDONLY | O_CLOEXEC);
}

static long fifo_wr_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return s->fd = ctx_open(c, s->path, O_WRONLY | O_CLOEXEC);
}

/* Exactly the flags asked for; the two ends meet. */
static void fifo_check(void *v, long rc)
{
	struct st *s = v;
	int rd = (fcntl(s->fd, F_GETFL) & O_ACCMODE) == O_RDONLY;
	char c = 0;

	ck_assert_int_ge(rc, 0);
	ck_assert_int_eq(fcntl(s->fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK),
			 rd ? O_RDONLY : O_WRONLY);
	ck_assert(cloexec_flag(s->fd));
	ck_assert_int_eq(write(rd ? s->other : s->fd, "z", 1), 1);
	ck_assert_int_eq(read(rd ? s->fd : s->other, &c, 1), 1);
	ck_assert_int_eq(c, 'z');
}

/* No descriptor kept but the test's own end. */
static void fifo_kept(void *v)
{
	struct st *s = v;

	ck_assert_int_eq(s->fd, -1);
	ck_assert_int_eq(tu_settle_fds(s->fds + 1, CTX_SEC), s->fds + 1);
}

static void fifo_teardown(void *v)
{
	struct st *s = v;

	if (s->fd >= 0)
		close(s->fd);
	if (s->other >= 0)
		close(s->other);
	unlink(s->path);
	rmdir(s->dir);
}

/* ---- locks another process holds ------------------------------------------ */

enum { K_FLOCK, K_OFD };

static int lock_fd(int fd, int kind, bool wait)
{
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (kind == K_FLOCK)
		return flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
	return fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &l);
}

/* A child takes the lock and holds it until the gate's write end closes;
 * forked without exec, it makes only async-signal-safe calls. */
static void lock_setup(void *v, int kind)
{
	struct st *s = v;
	int said[2];
	char c;

	file_setup(v, 0);
	s->kind = kind;
	ck_assert_int_eq(pipe2(said, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(s->gate, O_CLOEXEC), 0);
	s->holder = fork();
	ck_assert_int_ge(s->holder, 0);
	if (s->holder == 0) {
		int fd = open(s->path, O_RDWR);
		close(s->gate[1]);
		if (fd < 0 || lock_fd(fd, kind, true) < 0 ||
		    write(said[1], "L", 1) != 1)
			_exit(1);
		_exit(read(s->gate[0], &c, 1) == 0 ? 0 : 1);
	}
	close(said[1]);
	close(s->gate[0]);
	ck_assert_int_eq(read(said[0], &c, 1), 1);
	close(said[0]);
}

/* The holder lets go and is gone. */
static int lock_ready(void *v)
{
	struct st *s = v;
	int st;

	close(s->gate[1]);
	if (waitpid(s->holder, &st, 0) != s->holder)
		return errno;
	s->holder = 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : EIO;
}

static long lock_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	return s->kind == K_FLOCK ? ctx_flock(c, s->f, LOCK_EX) :
				    ctx_lock_range(c, s->f, &l);
}

/* Whether another process could take the lock at once. */
static bool free_for_others(struct st *s)
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(s->path, O_RDWR);
		_exit(fd >= 0 && lock_fd(fd, s->kind, false) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void lock_check(void *v, long rc)
{
	ck_assert_int_eq(rc, 0);
	ck_assert(!free_for_others(v));
}

static void lock_kept(void *v)
{
	ck_assert_msg(free_for_others(v), "a lock call that failed holds "
		      "the lock");
}

static void lock_teardown(void *v)
{
	struct st *s = v;

	if (s->holder > 0) {
		close(s->gate[1]);
		waitpid(s->holder, NULL, 0);
	}
	file_teardown(v);
}

/* ---- the rows ----------------------------------------------------------- */

#define FILE_ROW .style = CT_ERRNO, .size = sizeof(struct st),              \
	.setup = file_setup, .ready = noop_ready, .kept = file_kept,        \
	.teardown = file_teardown, .flags = CT_NEVER_WAITS
#define ROW .style = CT_ERRNO, .size = sizeof(struct st)
#define FIFO .setup = fifo_setup, .ready = fifo_ready, .check = fifo_check, \
	.kept = fifo_kept, .teardown = fifo_teardown, .flags = CT_NOT_PARTIAL
#define LOCK .setup = lock_setup, .ready = lock_ready, .call = lock_call,   \
	.check = lock_check, .kept = lock_kept, .teardown = lock_teardown,  \
	.flags = CT_NOT_PARTIAL | CT_FORKS
#define SENDFILE .setup = sendfile_setup, .ready = sendfile_ready,          \
	.call = sendfile_call, .check = sendfile_check,                     \
	.kept = sendfile_kept, .teardown = sendfile_teardown,               \
	.partial = sendfile_partial, .unstick = sendfile_unstick,           \
	.moved = sendfile_moved

const struct ct_row ct_rows_files[] = {
	{ .name = "ctx_read on a regular file", FILE_ROW, .call = read_call,
	  .check = read_check },
	{ .name = "ctx_read on a regular file opened O_NONBLOCK", .arg = 1,
	  FILE_ROW, .call = read_call, .check = read_check },
	{ .name = "ctx_write on a regular file", FILE_ROW,
	  .call = write_call, .check = write_check },
	{ .name = "ctx_write on a regular file opened O_NONBLOCK", .arg = 1,
	  FILE_ROW, .call = write_call, .check = write_check },
	{ .name = "ctx_pread", FILE_ROW, .call = pread_call,
	  .check = pread_check },
	{ .name = "ctx_pwrite", FILE_ROW, .call = pwrite_call,
	  .check = pwrite_check },
	{ .name = "ctx_preadv", FILE_ROW, .call = preadv_call,
	  .check = pread_check },
	{ .name = "ctx_pwritev", FILE_ROW, .call = pwritev_call,
	  .check = pwrite_check },
	{ .name = "ctx_fsync", FILE_ROW, .call = fsync_call, .check = synced },
	{ .name = "ctx_fdatasync", FILE_ROW, .call = fdatasync_call,
	  .check = synced },
	{ .name = "ctx_copy_file_range", ROW, .setup = copy_setup,
	  .ready = noop_ready, .call = copy_call, .check = copy_check,
	  .kept = copy_kept, .teardown = file_teardown,
	  .flags = CT_NEVER_WAITS },
	{ .name = "ctx_sendfile to an AF_UNIX socketpair", .arg = K_UNIX, ROW,
	  SENDFILE },
	{ .name = "ctx_sendfile to a TCP socket", .arg = K_TCP, ROW,
	  SENDFILE },
	{ .name = "ctx_splice from a pipe", ROW, .setup = splice_setup,
	  .ready = splice_ready, .call = splice_call, .check = splice_check,
	  .kept = splice_kept, .teardown = splice_teardown,
	  .partial = splice_partial, .unstick = splice_unstick,
	  .moved = splice_moved },
	{ .name = "ctx_open of a FIFO for reading", ROW, FIFO,
	  .call = fifo_rd_call },
	{ .name = "ctx_open of a FIFO for writing", ROW, FIFO,
	  .call = fifo_wr_call },
	{ .name = "ctx_flock", .arg = K_FLOCK, ROW, LOCK },
	{ .name = "ctx_lock_range", .arg = K_OFD, ROW, LOCK },
	{ .name = NULL },
};
