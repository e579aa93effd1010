/*
 * CTX_DUMP_SIGNAL=NAME: that signal writes ctx_dump's report -- to
 * stderr, or appended to the file CTX_DUMP_FILE names -- and the program
 * goes on, as SIGQUIT makes a Go program print its goroutines (without
 * the exit).
 *
 * Read once, before main.  A report cannot be written from a signal
 * handler (it allocates, takes locks, reads /proc), so the handler only
 * posts a semaphore, which is async-signal-safe, and a library thread
 * started with the process (the one cost of the variable: a thread that
 * sleeps) waits on it and writes the report.  Signals that come while a
 * report is being written make one more report, not one each.
 *
 * A ctx_with_signals context on the same signal takes it over while it
 * lives (signals.c puts this file's handler back after it); the
 * program's own handler installed later replaces this one for good.
 *
 * The one file of the core that calls a public function of a layer
 * above (ctx_dump, wait/dump.c), as any program could: it lives here,
 * started by debug.c's constructor, so that a program linked with the
 * static library, which names none of its symbols, still has it.
 */
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/core.h"

static sem_t sem;
static int signo;
static char path[4096]; /* CTX_DUMP_FILE, or empty: stderr */

static void on_signal(int sig)
{
	int e = errno;
	(void)sig;
	sem_post(&sem);
	errno = e;
}

static const char *where(void)
{
	return path[0] ? path : "stderr";
}

static void dump_once(void)
{
	int fd = 2;
	if (path[0] &&
	    (fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		       0644)) < 0) {
		fprintf(stderr, "libctx: CTX_DUMP_FILE=%s: %s; the report "
			"goes to stderr\n", path, strerror(errno));
		fd = 2;
	}
	int e = ctx_dump(fd);
	if (e)
		fprintf(stderr, "libctx: ctx_dump to %s: %s\n", where(),
			strerror(e));
	if (fd != 2)
		close(fd);
}

static void *dumper_main(void *arg)
{
	(void)arg;
	for (;;) {
		while (sem_wait(&sem) < 0)
			; /* EINTR: signals are blocked here, but be safe */
		int more;
		while (sem_getvalue(&sem, &more) == 0 && more > 0 &&
		       sem_trywait(&sem) == 0)
			; /* those that came meanwhile: one report for all */
		dump_once();
	}
	return NULL;
}

/* For ctx_dump itself: which signal, and where to. */
static void dumper_state(char *buf, size_t len)
{
	const char *n = sigabbrev_np(signo);
	snprintf(buf, len, "on SIG%s, to %s", n ? n : "?", where());
}

static const struct ctx__service dumper_service = {
	.name = "ctx-dump",
	.serves = "writes ctx_dump's report when CTX_DUMP_SIGNAL comes",
	.state = dumper_state,
};

/* "USR1", "SIGUSR1", "usr1" or "10": the number, or 0. */
static int parse_signal(const char *name)
{
	char *end;
	long n = strtol(name, &end, 10);
	if (*name && !*end)
		return n > 0 && n < NSIG ? (int)n : 0;
	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	for (int sig = 1; sig < NSIG; sig++) {
		const char *abbrev = sigabbrev_np(sig);
		if (abbrev && strcasecmp(abbrev, name) == 0)
			return sig;
	}
	return 0;
}

static int start(void)
{
	struct sigaction sa = { .sa_handler = on_signal,
				.sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	int e = ctx__spawn(&dumper_service, dumper_main, NULL,
			   CTX__STACK_SMALL);
	if (!e && sigaction(signo, &sa, NULL) < 0)
		e = errno;
	return e;
}

/* In a child of fork() the thread is not there: start it again. */
static void after_fork_child(void)
{
	sem_init(&sem, 0, 0);
	ctx__spawn(&dumper_service, dumper_main, NULL, CTX__STACK_SMALL);
}

void ctx__dumpsig_init(void)
{
	const char *name = getenv("CTX_DUMP_SIGNAL");
	const char *file = getenv("CTX_DUMP_FILE");
	if (!name || !*name)
		return;
	if (!(signo = parse_signal(name)) || signo == SIGKILL ||
	    signo == SIGSTOP) {
		fprintf(stderr, "libctx: CTX_DUMP_SIGNAL=%s: not a signal "
			"that can be caught; no dumps\n", name);
		return;
	}
	if (file && *file)
		snprintf(path, sizeof(path), "%s", file);
	sem_init(&sem, 0, 0);
	int e = start();
	if (e)
		fprintf(stderr, "libctx: CTX_DUMP_SIGNAL=%s: %s; no dumps\n",
			name, strerror(e));
	else
		pthread_atfork(NULL, NULL, after_fork_child);
}
