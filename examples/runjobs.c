/*
 * runjobs: run shell commands side by side, each with its own timeout
 * (Go's exec.CommandContext with Cancel = SIGTERM and WaitDelay).
 *
 *	usage: runjobs MS:COMMAND...     e.g. runjobs 1000:'echo hi' 200:'sleep 5'
 *
 * Each command runs in its own process group, stdout captured.  At its
 * timeout the group gets SIGTERM, then SIGKILL 500 ms later; Ctrl-C
 * cancels every job.  Prints each job's output and how it ended.
 */
#include <ctx.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

struct job {
	const char *cmd;
	int64_t timeout;
	char *out; /* stdout, in a buffer of open_memstream's */
	size_t len;
	int err, status;
};

static void *run(ctx_t *all, void *arg)
{
	struct job *j = arg;
	struct ctx_proc_attr a = { .stdio[1] = CTX_STDIO_PIPE,
				   .cancel_signal = SIGTERM,
				   .wait_delay = 500 * CTX_MSEC,
				   .new_group = true };
	char *argv[] = { "sh", "-c", (char *)j->cmd, NULL };
	CTX_AUTO ctx_t *c = ctx_with_timeout(all, j->timeout);
	ctx_proc_t *p;
	if ((j->err = ctx_proc_spawn(&p, c, "sh", argv, &a)))
		return NULL;
	/* Read to EOF, not to the timeout: the group's signals end every
	 * writer, and what it prints on SIGTERM is kept. */
	FILE *f = open_memstream(&j->out, &j->len);
	char buf[4096];
	ssize_t n;
	while (f && (n = ctx_read(ctx_background(), ctx_proc_stdio(p, 1), buf,
				  sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, f);
	if (f)
		fclose(f);
	j->err = ctx_proc_wait(p, &j->status);
	ctx_proc_free(p);
	return NULL;
}

static void report(int i, const struct job *j)
{
	printf("[%d] %s\n%s", i, j->cmd, j->out ? j->out : "");
	if (WIFSIGNALED(j->status))
		printf("[%d] killed by %s", i, strsignal(WTERMSIG(j->status)));
	else
		printf("[%d] exit %d", i, WEXITSTATUS(j->status));
	printf(j->err ? " (%s)\n" : "\n", ctx_strerror(j->err));
}

int main(int argc, char **argv)
{
	sigset_t sigs; /* Ctrl-C or SIGTERM: every job is cancelled */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	CTX_AUTO ctx_t *all = ctx_with_signals(ctx_background(), &sigs);
	struct job *jobs = calloc((size_t)argc, sizeof(*jobs));
	ctx_thread_t **t = calloc((size_t)argc, sizeof(*t));
	if (!all || !jobs || !t || argc < 2) {
		fprintf(stderr, "usage: runjobs MS:COMMAND...\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		char *colon = strchr(argv[i], ':');
		jobs[i].cmd = colon ? colon + 1 : argv[i];
		jobs[i].timeout = (colon ? atoll(argv[i]) : 10000) * CTX_MSEC;
		if (ctx_thread_create(&t[i], all, run, &jobs[i]))
			return 1;
	}
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		ctx_thread_join(ctx_background(), t[i], NULL);
		report(i, &jobs[i]);
		failed |= jobs[i].err || jobs[i].status;
		free(jobs[i].out);
	}
	free(jobs);
	free(t);
	return failed;
}
