/*
 * Throwaway servers for the glue libraries' tests and benchmarks, and a
 * runner for both backends (testing.h).
 *
 * PostgreSQL refuses to run as root, and a test run as root should not
 * run servers as root anyway: then the server programs run as nobody
 * (its uid and gid from the password file), in a directory made for them
 * and handed to that user.  Started as the calling user otherwise.  A
 * server is a child of the runner with PR_SET_PDEATHSIG, so a runner
 * killed by a timeout takes its server with it; the signal is set after
 * the change of user, which clears it.  No network and no service
 * manager: the servers listen on UNIX sockets in their directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ctx.h>

#include "testing.h"

static bool executable(const char *dir, const char *name, char *out,
		       size_t len)
{
	int n = snprintf(out, len, "%s/%s", dir, name);
	return n > 0 && (size_t)n < len && access(out, X_OK) == 0;
}

static bool find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path ? path : "/usr/bin:/bin"), *save = NULL;
	bool found = false;
	for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
	     d = strtok_r(NULL, ":", &save))
		found = executable(d, name, out, len);
	free(copy);
	return found;
}

bool tg_find_program(const char *name, const char *const *dirs, char *out,
		     size_t len)
{
	if (find_in_path(name, out, len))
		return true;
	for (; dirs && *dirs; dirs++) {
		glob_t g;
		bool found = false;
		if (glob(*dirs, 0, NULL, &g) == 0)
			for (size_t i = g.gl_pathc; i-- > 0 && !found;)
				found = executable(g.gl_pathv[i], name, out,
						   len);
		globfree(&g);
		if (found)
			return true;
	}
	return false;
}

/* The user the servers run as: nobody when we are root, else ourselves
 * (uid -1: no change). */
static void server_user(uid_t *uid, gid_t *gid)
{
	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (geteuid() != 0)
		return;
	struct passwd *pw = getpwnam("nobody");
	*uid = pw ? pw->pw_uid : 65534;
	*gid = pw ? pw->pw_gid : 65534;
}

/* A child that removes dir once this process is gone, however it went
 * (a runner killed by a timeout leaves some 40 MB of database behind):
 * it waits for the end of a pipe whose other end only this process and
 * its forks hold (close-on-exec: the servers do not).  In a session of
 * its own, so that a Ctrl-C meant for the runner does not stop it. */
static void janitor(const char *dir)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		return;
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		close(p[1]);
		setsid();
		if (null >= 0)
			dup2(null, 0), dup2(null, 1), dup2(null, 2);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			continue;
		tg_dir_remove(dir);
		_exit(0);
	}
	close(p[0]); /* p[1] stays open for the life of the process */
	if (pid < 0)
		close(p[1]);
}

int tg_dir_make(char *dir, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(dir, len, "%s/libctx-glue-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= len || !mkdtemp(dir)) {
		fprintf(stderr, "testing: cannot make a directory in %s: %s\n",
			tmp && *tmp ? tmp : "/tmp", strerror(errno));
		return -1;
	}
	uid_t uid;
	gid_t gid;
	server_user(&uid, &gid);
	if (uid != (uid_t)-1 && chown(dir, uid, gid)) {
		fprintf(stderr, "testing: chown %s: %s\n", dir,
			strerror(errno));
		rmdir(dir);
		return -1;
	}
	janitor(dir);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	remove(path);
	return 0;
}

void tg_dir_remove(const char *dir)
{
	if (dir && *dir)
		nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* In the child: become the servers' user, die with the parent, run. */
static void child(const char *dir, int logfd, char *const argv[],
		  uid_t uid, gid_t gid, pid_t parent)
{
	if (dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0 || chdir(dir))
		_exit(126);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, 0) < 0)
		_exit(126);
	if (uid != (uid_t)-1 &&
	    (setgroups(0, NULL) || setgid(gid) || setuid(uid)))
		_exit(126);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(126);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], argv);
	_exit(127);
}

pid_t tg_spawn(const char *dir, const char *log, char *const argv[])
{
	uid_t uid;
	gid_t gid;
	server_user(&uid, &gid);
	int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0 || (uid != (uid_t)-1 && fchown(logfd, uid, gid))) {
		fprintf(stderr, "testing: %s: %s\n", log, strerror(errno));
		if (logfd >= 0)
			close(logfd);
		return -1;
	}
	pid_t parent = getpid(), pid = fork();
	if (pid == 0)
		child(dir, logfd, argv, uid, gid, parent);
	close(logfd);
	if (pid < 0)
		fprintf(stderr, "testing: fork: %s\n", strerror(errno));
	return pid;
}

int tg_run(const char *dir, const char *log, char *const argv[])
{
	pid_t pid = tg_spawn(dir, log, argv);
	int status;
	if (pid < 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void tg_stop(pid_t pid, int sig)
{
	if (pid <= 0)
		return;
	kill(pid, sig);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

void tg_show_log(const char *log)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "tail -n 20 '%s' >&2", log);
	if (system(cmd) != 0)
		fprintf(stderr, "testing: cannot show %s\n", log);
}

/* The io_uring half: this program again, in a child process. */
static int rerun_on_uring(char **argv)
{
	if (getenv("CTX_SKIP_URING")) {
		printf("io_uring: skipped: CTX_SKIP_URING is set\n");
		return 77;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		setenv("CTX_BACKEND", "io_uring", 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int tg_run_backends(int (*run)(const void *arg), const void *arg,
		    char **argv)
{
	const char *asked = getenv("CTX_BACKEND");
	if (asked && strcmp(asked, "io_uring") == 0 &&
	    strcmp(ctx_backend(), "io_uring") != 0) {
		printf("io_uring: skipped: the backend is not available (%s)\n",
		       ctx_backend());
		return 77;
	}
	printf("backend: %s\n", ctx_backend());
	int failed = run(arg);
	if (asked)
		return failed ? 1 : 0;
	int uring = rerun_on_uring(argv);
	return failed || (uring != 0 && uring != 77) ? 1 : 0;
}
