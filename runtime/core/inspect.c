/*
 * Contexts described for people: what ctx_dump (wait/dump.c) and
 * CTX_DEBUG=stuck (wait/stuck.c) print of a context, and the tree of
 * every live context that CTX_DEBUG=leaks keeps (debug.c's registry).
 */
#include "core/core.h"

const char *const ctx__kind_names[CTX__KINDS] = {
	[CTX__ROOT_BACKGROUND] = "Background",
	[CTX__ROOT_TODO] = "TODO",
	[CTX__CANCEL] = "WithCancel",
	[CTX__VALUE] = "WithValue",
	[CTX__WITHOUT] = "WithoutCancel",
	[CTX__SIGNALS] = "WithSignals",
	[CTX__IDLE] = "WithIdle",
	[CTX__HANGUP] = "WithHangup",
};
