/*
 * A getaddrinfo that hangs until the test lets it go, put in place of
 * the one the resolver's helper threads call (the test hooks of
 * runtime's resolve.h): lookups that never answer, on demand.
 */
#ifndef CTX_TEST_HANG_H
#define CTX_TEST_HANG_H

/* The helper-thread resolver, with every lookup hanging. */
void hang_arm(void);
/* Let the hanging lookups go: they fail with EAI_AGAIN, except one of
 * "localhost", which gets getaddrinfo's answer; so do later ones. */
void hang_release(void);
/* Released, and the resolver as it was. */
void hang_disarm(void);

#endif
