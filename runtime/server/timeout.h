/*
 * The server layer's own header: the formatter of deadlines on the wire
 * (timeout.c), for the tests, which check its units and rounding on
 * exact durations rather than on a clock that moves.
 */
#ifndef CTX_SERVER_TIMEOUT_H
#define CTX_SERVER_TIMEOUT_H

#include <stddef.h>
#include <stdint.h>

/* ns (>= 0) as a grpc-timeout value, as ctx_format_timeout writes a
 * context's remaining time: its length, or -1 with errno ERANGE when buf
 * cannot hold it and its NUL. */
int ctx__timeout_text(int64_t ns, char *buf, size_t len);

#endif
