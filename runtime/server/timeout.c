/*
 * Deadlines on the wire: a context's remaining time as gRPC's
 * grpc-timeout header carries it, and a context from such a header or
 * from Envoy's x-envoy-expected-rq-timeout-ms, so that a server's
 * request ends when its caller's does and its own calls carry on what
 * is left.
 *
 * gRPC's form (its HTTP/2 protocol document): a positive integer of at
 * most 8 ASCII digits and one unit, H (hours), M (minutes), S, m
 * (milliseconds), u (microseconds) or n (nanoseconds).  The formatter
 * picks the finest unit in which the value fits in 8 digits, rounding
 * up, as grpc-go does: a server never gets less time than the caller
 * had, and the rounding adds at most one part in 100000 (a unit is
 * chosen only when the next finer one, at most 1000 times finer, needs
 * more than 8 digits, so the value holds 100000 units or more).  Any
 * remaining time fits: 292 years is 2562048 hours.
 *
 * Envoy's form is a plain integer of milliseconds.  A value without a
 * unit is read as that, with no limit on its digits; a value too large
 * for the clock saturates to no deadline, as the clock's sums do.
 * Optional whitespace around the value (SP, HTAB: HTTP's OWS) is
 * allowed; anything else is refused.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "server/timeout.h"

#define MAX_DIGITS 8
#define MAX_VALUE 99999999

static const struct unit {
	char name;
	int64_t ns;
} units[] = {
	{ 'n', 1 },
	{ 'u', CTX_USEC },
	{ 'm', CTX_MSEC },
	{ 'S', CTX_SEC },
	{ 'M', 60 * CTX_SEC },
	{ 'H', 3600 * CTX_SEC },
};
#define NUNITS (sizeof(units) / sizeof(units[0]))

/* ns in the finest unit that holds it in 8 digits, rounded up. */
int ctx__timeout_text(int64_t ns, char *buf, size_t len)
{
	size_t i = 0;
	int64_t v;
	for (;; i++) {
		v = ns / units[i].ns + (ns % units[i].ns != 0);
		if (v <= MAX_VALUE || i == NUNITS - 1)
			break;
	}
	char text[16];
	int n = snprintf(text, sizeof(text), "%" PRId64 "%c", v,
			 units[i].name);
	if ((size_t)n >= len) {
		if (len)
			buf[0] = '\0';
		errno = ERANGE;
		return -1;
	}
	memcpy(buf, text, (size_t)n + 1);
	return n;
}

int ctx_format_timeout(ctx_t *ctx, char *buf, size_t len)
{
	int64_t deadline;
	if (!ctx || (!buf && len)) {
		errno = EINVAL;
		return -1;
	}
	if (!ctx_deadline(ctx, &deadline)) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	int64_t left = deadline - ctx_now();
	return ctx__timeout_text(left > 0 ? left : 0, buf, len);
}

static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

/* The unit named c, or NULL. */
static const struct unit *unit_of(char c)
{
	for (size_t i = 0; i < NUNITS; i++)
		if (units[i].name == c)
			return &units[i];
	return NULL;
}

/* a * b for a, b >= 0, saturating at INT64_MAX. */
static int64_t mul_sat(int64_t a, int64_t b)
{
	int64_t r;
	return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

/* The nanoseconds value says, or -1 if it is malformed. */
static int64_t parse(const char *s)
{
	while (ows(*s))
		s++;
	int64_t v = 0;
	size_t digits = 0;
	for (; *s >= '0' && *s <= '9'; s++, digits++)
		v = ctx__add_sat(mul_sat(v, 10), *s - '0');
	const struct unit *u = *s && !ows(*s) ? unit_of(*s) : NULL;
	if (u)
		s++;
	while (ows(*s))
		s++;
	if (!digits || *s || (u && digits > MAX_DIGITS))
		return -1;
	return u ? mul_sat(v, u->ns) : mul_sat(v, CTX_MSEC);
}

ctx_t *ctx_with_timeout_header(ctx_t *parent, const char *value)
{
	int64_t ns = value ? parse(value) : -1;
	if (!parent || ns < 0) {
		ctx__site_drop();
		errno = EINVAL;
		return NULL;
	}
	return ctx_with_timeout(parent, ns);
}
