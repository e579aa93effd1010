/*
 * The proc layer's own header: pass_ctx's parent side (pass.c), for the
 * spawner (proc.c).  Not for the layers above.
 */
#ifndef CTX_PROC_PASS_H
#define CTX_PROC_PASS_H

#include <spawn.h>

#include "core/core.h"

/* The environment variables of the protocol (ctx_proc_spawn(3)). */
#define CTX__ENV_TIMEOUT "CTX_TIMEOUT_NS"
#define CTX__ENV_DONE_FD "CTX_DONE_FD"

/* Move both ends of a new pipe (close-on-exec) to 3 or above, so that
 * no dup2 onto a standard descriptor is a no-op that keeps the flag,
 * and no end is taken for a standard descriptor.  0, or an error number
 * with both closed. */
int ctx__above_stdio(int fds[2]);

/* What a spawn with pass_ctx needs: the pipe (rd the child's end, wr
 * the parent's; -1 when not made) and the child's environment
 * (one malloc'd block, or NULL). */
struct ctx__pass {
	int rd, wr;
	char **envp;
};

/* Make the pipe and the environment for a child of ctx (envp NULL: the
 * caller's), and the file action that hands the read end to the child.
 * 0 or an error number; on failure nothing is left to undo. */
int ctx__pass_prepare(struct ctx__pass *ps, ctx_t *ctx,
		      const char *const *envp, posix_spawn_file_actions_t *fa);
/* After the spawn, whether it worked or not: the child's end and the
 * environment go, and the parent's end unless the spawner took it
 * (setting ps->wr to -1). */
void ctx__pass_after(struct ctx__pass *ps);
/* The context ended with err (or the child was reaped: err 0): one byte
 * if it was the deadline, then close *wr and set it to -1.  *wr < 0:
 * nothing to do. */
void ctx__pass_end(int *wr, int err);

#endif
