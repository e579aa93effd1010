/*
 * Deadlines on the wire: ctx_with_timeout_header against a table of
 * header values (each unit, 8 digits and 9, a unit missing, zero,
 * overflow, whitespace, every way to be malformed), checked to the
 * nanosecond against the clock read around the call; the formatter's
 * units and rounding on exact durations (ctx__timeout_text); and
 * ctx_format_timeout on live, expired and unbounded contexts, read back
 * through the parser.
 */
#include <stdio.h>

#include "server/timeout.h"
#include "../suites.h"
#include "../testutil.h"

#define BAD (-1)          /* EINVAL expected */
#define NONE (-2)         /* no deadline: too large for the clock */

struct parse_case {
	const char *value;
	int64_t ns;       /* or BAD, NONE */
};

static const struct parse_case parse_cases[] = {
	/* Each unit. */
	{ "7n", 7 },
	{ "7u", 7 * CTX_USEC },
	{ "7m", 7 * CTX_MSEC },
	{ "7S", 7 * CTX_SEC },
	{ "7M", 7 * 60 * CTX_SEC },
	{ "7H", 7 * 3600 * CTX_SEC },
	/* Eight digits, with leading zeros too; nine are refused. */
	{ "12345678m", 12345678 * CTX_MSEC },
	{ "99999999u", 99999999 * CTX_USEC },
	{ "00000001S", CTX_SEC },
	{ "123456789m", BAD },
	{ "000000001S", BAD },
	/* No unit: Envoy's milliseconds, with no limit on the digits. */
	{ "250", 250 * CTX_MSEC },
	{ "123456789", 123456789 * CTX_MSEC },
	{ "0000000000250", 250 * CTX_MSEC },
	/* Zero: a deadline that has passed. */
	{ "0", 0 },
	{ "0n", 0 },
	{ "0H", 0 },
	/* Overflow: no deadline, as the clock's sums saturate. */
	{ "99999999H", NONE },
	{ "9223372036855", NONE },
	{ "99999999999999999999999999", NONE },
	/* HTTP's optional whitespace around the value. */
	{ " 100m", 100 * CTX_MSEC },
	{ "100m\t ", 100 * CTX_MSEC },
	{ "\t 42 ", 42 * CTX_MSEC },
	/* Malformed. */
	{ "", BAD },
	{ " ", BAD },
	{ "m", BAD },
	{ "-1m", BAD },
	{ "+1m", BAD },
	{ "-5", BAD },
	{ "1 m", BAD },
	{ "1mm", BAD },
	{ "1x", BAD },
	{ "1s", BAD },    /* units are case-sensitive: S is seconds */
	{ "1h", BAD },
	{ "1.5S", BAD },
	{ "0x10", BAD },
	{ "10m,20m", BAD },
	{ "1m 2", BAD },
};

START_TEST(header_parse_table)
{
	const struct parse_case *t = &parse_cases[_i];
	int64_t before = ctx_now(), d;
	errno = 0;
	ctx_t *c = ctx_with_timeout_header(ctx_background(), t->value);
	int64_t after = ctx_now();
	if (t->ns == BAD) {
		ck_assert_msg(!c && errno == EINVAL, "\"%s\": %p, errno %d; "
			      "want NULL, EINVAL", t->value, (void *)c, errno);
		return;
	}
	ck_assert_msg(c != NULL, "\"%s\": NULL, errno %d", t->value, errno);
	bool has = ctx_deadline(c, &d);
	if (t->ns == NONE) {
		ck_assert_msg(!has, "\"%s\": a deadline", t->value);
		ck_assert_int_eq(ctx_err(c), 0);
	} else if (t->ns == 0) {
		ck_assert_int_eq(ctx_err(c), CTX_DEADLINE_EXCEEDED);
	} else {
		ck_assert_msg(has, "\"%s\": no deadline", t->value);
		ck_assert_msg(d - t->ns >= before && d - t->ns <= after,
			      "\"%s\": deadline %lld ns after the call, "
			      "want %lld", t->value,
			      (long long)(d - before), (long long)t->ns);
		if (t->ns >= CTX_SEC) /* the short ones may be over now */
			ck_assert_int_eq(ctx_err(c), 0);
	}
	ctx_release(c);
}
END_TEST

START_TEST(header_parent_and_errors)
{
	errno = 0;
	ck_assert_ptr_null(ctx_with_timeout_header(NULL, "1S"));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ctx_with_timeout_header(ctx_background(), NULL));
	ck_assert_int_eq(errno, EINVAL);
	/* A caller that allows more than the parent changes nothing: the
	 * parent's deadline stays the one obeyed. */
	CTX_AUTO ctx_t *p = ctx_with_timeout(ctx_background(), CTX_SEC);
	int64_t pd, d;
	ck_assert(ctx_deadline(p, &pd));
	CTX_AUTO ctx_t *c = ctx_with_timeout_header(p, "1H");
	ck_assert_ptr_nonnull(c);
	ck_assert(ctx_deadline(c, &d));
	ck_assert_int_eq(d, pd);
	/* A shorter one wins, and a cancel of the parent still ends it. */
	CTX_AUTO ctx_t *s = ctx_with_timeout_header(p, "100m");
	ck_assert(ctx_deadline(s, &d));
	ck_assert_int_lt(d, pd);
	ctx_cancel(p);
	ck_assert_int_eq(ctx_err(s), CTX_CANCELED);
}
END_TEST

struct text_case {
	int64_t ns;
	const char *text;
};

/* The finest unit that holds the value in 8 digits, rounded up. */
static const struct text_case text_cases[] = {
	{ 0, "0n" },
	{ 1, "1n" },
	{ 99999999, "99999999n" },
	{ 100000000, "100000u" },
	{ 100000001, "100001u" },            /* up, not to nearest */
	{ 99999999000, "99999999u" },
	{ 99999999001, "100000m" },          /* up past 8 digits: next */
	{ 3600 * CTX_SEC, "3600000m" },
	{ 99999999 * CTX_MSEC, "99999999m" },
	{ 99999999 * CTX_MSEC + 1, "100000S" },
	{ 99999999 * CTX_SEC, "99999999S" },
	{ 99999999 * CTX_SEC + 1, "1666667M" },
	{ INT64_MAX, "2562048H" },           /* any time fits */
};

START_TEST(format_text_table)
{
	const struct text_case *t = &text_cases[_i];
	char buf[16];
	int n = ctx__timeout_text(t->ns, buf, sizeof buf);
	ck_assert_str_eq(buf, t->text);
	ck_assert_int_eq(n, (int)strlen(t->text));
	ck_assert_int_le(n, 9);
	/* The buffer: exactly long enough, then one byte short. */
	char exact[16];
	ck_assert_int_eq(ctx__timeout_text(t->ns, exact, (size_t)n + 1), n);
	ck_assert_str_eq(exact, t->text);
	errno = 0;
	ck_assert_int_eq(ctx__timeout_text(t->ns, exact, (size_t)n), -1);
	ck_assert_int_eq(errno, ERANGE);
	ck_assert_str_eq(exact, "");
}
END_TEST

/* The nanoseconds a grpc-timeout text stands for (a test's own
 * reading, not the library's). */
static int64_t text_ns(const char *text)
{
	static const char units[] = "numSMH";
	static const int64_t ns[] = { 1, CTX_USEC, CTX_MSEC, CTX_SEC,
				      60 * CTX_SEC, 3600 * CTX_SEC };
	char *end;
	long long v = strtoll(text, &end, 10);
	const char *u = strchr(units, *end);
	ck_assert_msg(u && *end && !end[1], "\"%s\": not a value", text);
	return v * ns[u - units];
}

START_TEST(format_live_rounds_up)
{
	static const int64_t budgets[] = { 50 * CTX_MSEC, 1500 * CTX_MSEC,
					   200 * CTX_SEC, 30 * 3600 * CTX_SEC };
	for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
		CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(),
						     budgets[i]);
		int64_t d, before = ctx_now();
		char buf[16];
		int n = ctx_format_timeout(c, buf, sizeof buf);
		int64_t after = ctx_now();
		ck_assert(ctx_deadline(c, &d));
		ck_assert_int_gt(n, 0);
		ck_assert_int_eq(n, (int)strlen(buf));
		/* Never less than what was left when it was written, and
		 * more by one unit at most: the value holds at least
		 * 100000 of its unit (else a finer one would have done). */
		int64_t v = text_ns(buf);
		ck_assert_int_ge(v, d - after);
		ck_assert_int_le(v, d - before + (d - before) / 100000 + 1);
	}
}
END_TEST

START_TEST(format_edges)
{
	char buf[16] = "unchanged";
	/* No deadline: 0 and an empty string. */
	ck_assert_int_eq(ctx_format_timeout(ctx_background(), buf, sizeof buf),
			 0);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(ctx_format_timeout(ctx_background(), NULL, 0), 0);
	/* A deadline that has passed: zero. */
	CTX_AUTO ctx_t *gone = ctx_with_timeout(ctx_background(), 0);
	ck_assert_int_eq(ctx_format_timeout(gone, buf, sizeof buf), 2);
	ck_assert_str_eq(buf, "0n");
	/* A value through a parent's deadline, and a value context. */
	CTX_AUTO ctx_t *p = ctx_with_timeout(ctx_background(), 10 * CTX_SEC);
	CTX_AUTO ctx_t *v = ctx_with_value(p, &buf, NULL);
	ck_assert_int_gt(ctx_format_timeout(v, buf, sizeof buf), 0);
	ck_assert_int_le(text_ns(buf), 10 * CTX_SEC);
	/* Bad arguments. */
	errno = 0;
	ck_assert_int_eq(ctx_format_timeout(NULL, buf, sizeof buf), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(ctx_format_timeout(p, NULL, 4), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(ctx_format_timeout(p, buf, 3), -1);
	ck_assert_int_eq(errno, ERANGE);
	ck_assert_str_eq(buf, "");
}
END_TEST

/* What one service formats, the next one parses: the round trip keeps
 * the deadline, at most one unit later. */
START_TEST(format_parse_round_trip)
{
	CTX_AUTO ctx_t *a = ctx_with_timeout(ctx_background(), 300 * CTX_MSEC);
	char buf[16];
	ck_assert_int_gt(ctx_format_timeout(a, buf, sizeof buf), 0);
	CTX_AUTO ctx_t *b = ctx_with_timeout_header(ctx_background(), buf);
	ck_assert_ptr_nonnull(b);
	int64_t da, db;
	ck_assert(ctx_deadline(a, &da));
	ck_assert(ctx_deadline(b, &db));
	ck_assert_int_ge(db, da);
	ck_assert_int_le(db - da, 50 * CTX_MSEC); /* the time between */
}
END_TEST

Suite *suite_timeout_header(void)
{
	Suite *s = suite_create("timeout_header");
	TCase *tc = tu_tcase(s, "parse", 5);
	tcase_add_loop_test(tc, header_parse_table, 0,
			    sizeof parse_cases / sizeof parse_cases[0]);
	tcase_add_test(tc, header_parent_and_errors);
	tc = tu_tcase(s, "format", 5);
	tcase_add_loop_test(tc, format_text_table, 0,
			    sizeof text_cases / sizeof text_cases[0]);
	tcase_add_test(tc, format_live_rounds_up);
	tcase_add_test(tc, format_edges);
	tcase_add_test(tc, format_parse_round_trip);
	return s;
}
