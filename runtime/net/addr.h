/*
 * Internal interface of runtime/net/addr.c for the other network calls
 * (dial.c, listen): what a failed ctx_getaddrinfo means as an errno.
 */
#ifndef CTX_NET_ADDR_H
#define CTX_NET_ADDR_H

/* errno for ctx_getaddrinfo's EAI_ code rc: EAI_SYSTEM's own errno,
 * ENOMEM, EINVAL (a bad service or flags), EAGAIN (no name server
 * answered), else EADDRNOTAVAIL (the name has no address). */
int ctx__eai_errno(int rc);

#endif
