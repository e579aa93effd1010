/* Helpers shared by the test suites. */
#ifndef CTX_TESTUTIL_H
#define CTX_TESTUTIL_H

#include <dirent.h>
#include <stdint.h>

#include "ctx.h"

/* The number of descriptors this process has open. */
static inline int tu_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the DIR's own descriptor */
}

/* Milliseconds elapsed since t0 (a ctx_now() reading). */
static inline double tu_ms_since(int64_t t0)
{
	return (double)(ctx_now() - t0) / CTX_MSEC;
}

#endif
