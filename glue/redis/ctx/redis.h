/*
 * libctx-redis: Redis commands that a context ends, over hiredis.
 * Link with `pkg-config --cflags --libs libctx-redis`.
 *
 * ctx_redis_connect connects under the context: an address with a '/'
 * is a UNIX socket's path, anything else "host:port" for ctx_dial (names
 * resolved under the context, Happy Eyeballs).  It returns a blocking
 * hiredis context on the connected socket (redisConnectFd), which plain
 * hiredis calls can use too and redisFree frees; NULL with errno (the
 * context's error, the connect error, ENAMETOOLONG, EINVAL, ENOMEM) on
 * failure.
 *
 * ctx_redis_command is redisCommand with a context: it formats the
 * command (redisvFormatCommand), sends it and reads the next reply, each
 * wait under ctx, and returns the reply (free it with freeReplyObject).
 * Commands queued with redisAppendCommand go first, and the reply
 * returned is then theirs, as with redisCommand; ctx_redis_get_reply
 * reads the next one (REDIS_OK or REDIS_ERR, as redisGetReply).
 *
 * A command that ctx ends (a BLPOP, a slow server) returns NULL with
 * errno = the context's error, and the connection is closed and marked
 * bad (c->err = REDIS_ERR_IO, c->errstr saying why, c->fd = -1): closing
 * it is what makes the server drop a blocked command, and a reply that
 * might still come could not be told from the next command's.  Free it
 * with redisFree and connect again.  A context already done refuses at
 * once (nothing is sent; the connection stays as it was).  Other
 * failures return NULL with errno EINVAL (a bad format), ENOMEM,
 * ENOTCONN (c->err was already set), ECONNRESET (the server closed the
 * connection: REDIS_ERR_EOF), EPROTO (a protocol error) or the socket's
 * error, c->err saying the same where the connection is now unusable.
 */
#ifndef CTX_REDIS_H
#define CTX_REDIS_H

#include <stdarg.h>

#include <hiredis/hiredis.h>

#include <ctx.h>

#ifdef __cplusplus
extern "C" {
#endif

CTX_API redisContext *ctx_redis_connect(ctx_t *ctx,
					const char *address) CTX_NOEXCEPT;
CTX_API redisReply *ctx_redis_command(ctx_t *ctx, redisContext *c,
				      const char *fmt, ...) CTX_NOEXCEPT;
CTX_API redisReply *ctx_redis_vcommand(ctx_t *ctx, redisContext *c,
				       const char *fmt, va_list ap) CTX_NOEXCEPT;
CTX_API int ctx_redis_get_reply(ctx_t *ctx, redisContext *c,
				void **reply) CTX_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
