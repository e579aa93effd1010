/*
 * Faults: the library when the world says no.  One case per file:
 * emfile.c, enomem.c, storm.c; this one keeps their shared record of
 * problems and adds them to the suite.
 *
 *  emfile   RLIMIT_NOFILE lowered mid-run, with other threads waiting
 *           throughout, so that a new thread's first timed wait cannot
 *           make its reactor's descriptors (0, 1 or 2 of the 3 it needs
 *           are left) and ctx_done_fd cannot make its eventfd.  Every call
 *           fails with EMFILE or completes as it would have; nothing
 *           leaks (a reactor half made is closed again); the waits that
 *           need no descriptor work as before; and once the limit is
 *           raised the very same calls, in the very same thread, succeed.
 *  enomem   ctx__fail_malloc_after at every allocation index of a
 *           scenario (n = 0, 1, 2, ... until the scenario runs with no
 *           injected failure): constructors return NULL with ENOMEM, the
 *           calls that report an error number report ENOMEM, exactly one
 *           call fails when one allocation does, nothing is half built
 *           (every context is freed: its done fd closes; valgrind), and
 *           the parent works afterwards.  A probe after each run tells
 *           whether the injected failure was consumed, so no failing
 *           allocation goes unnoticed and the loop ends exactly.
 *  signals  A handler installed without SA_RESTART and a thread sending
 *           it to the waiting threads every ~100 us, while they read,
 *           sleep, poll, wait, receive, join and wait for groups with
 *           deadlines, cancels and data to come: each wait ends only by
 *           its data, its cancel or its deadline, with the exact result,
 *           never EINTR and never early.
 */
#include "faults.h"
#include "suites.h"

/* Problems found where a Check assertion must not be made (another
 * thread; an injected failure still armed): the first is kept. */
static pthread_mutex_t note_mu = PTHREAD_MUTEX_INITIALIZER;
static char note_msg[1024];

void note(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "faults: %s\n", msg);
	pthread_mutex_lock(&note_mu);
	if (!note_msg[0])
		snprintf(note_msg, sizeof(note_msg), "%s", msg);
	pthread_mutex_unlock(&note_mu);
}

void notes_reset(void)
{
	pthread_mutex_lock(&note_mu);
	note_msg[0] = '\0';
	pthread_mutex_unlock(&note_mu);
}

void assert_no_notes(void)
{
	char msg[1024];

	pthread_mutex_lock(&note_mu);
	snprintf(msg, sizeof(msg), "%s", note_msg);
	pthread_mutex_unlock(&note_mu);
	ck_assert_msg(!msg[0], "%s", msg);
}

Suite *suite_faults(void)
{
	Suite *s = suite_create("faults");

	add_faults_emfile(s);
	add_faults_enomem(s);
	add_faults_storm(s);
	return s;
}
