/*
 * The per-thread count of node locks held, which debug builds keep to
 * check the lock order (lock.h: no thread holds two node locks at once).
 * It lives here, in the layer that declares it; builds without asserts
 * have no count at all.
 */
#include "base/base.h"

#ifdef CTX_ASSERTS
_Thread_local int ctx__node_locks_held;
#endif
