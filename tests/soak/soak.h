/*
 * The soak's pieces that its machinery (soak.c) and its operations
 * (soak_ops.c) share: the kinds of operation and of context, a chain
 * being built, the helper's actions, the operation and its worker.
 */
#ifndef CTX_TEST_SOAK_H
#define CTX_TEST_SOAK_H

#include "stress.h"

enum {
	OP_READ, OP_RECV, OP_POLL, OP_CHAN_RECV, OP_CHAN_SEND, OP_WG,
	OP_GROUP, OP_JOIN, OP_SLEEP, OP_WAIT, OP_AFTER, OP_DONE_FD, OP_TREE,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"ctx_read(pipe)", "ctx_recv(socketpair)", "ctx_poll", "ctx_chan_recv",
	"ctx_chan_send", "ctx_wg_wait", "ctx_group", "ctx_thread_join",
	"ctx_sleep", "ctx_wait", "ctx_after_func", "ctx_done_fd", "tree",
};

enum { K_CANCEL, K_TIMEOUT, K_DLCAUSE, K_VALUE, K_WITHOUT };

static const char *const kind_names[] = {
	"cancel", "timeout", "timeout_cause", "value", "without_cancel",
};

static inline bool is_cancel_kind(int k)
{
	return k == K_CANCEL || k == K_TIMEOUT || k == K_DLCAUSE;
}

/* A root shared by the workers, cancelled and replaced by the test's
 * thread at random moments. */
struct epoch {
	ctx_t *c;
	_Atomic int refs;
	_Atomic bool issued;          /* set just before the cancel */
	_Atomic int64_t cancelled_at; /* once ctx_cancel_cause returned */
	int64_t dl;                   /* its deadline, INT64_MAX if none */
};

struct node {
	ctx_t *c;
	int kind;
	int64_t us;          /* timeouts */
	int64_t made_before; /* ctx_now() before and after it was made */
	int64_t made_after;
	bool affects;        /* cancelling it ends the leaf */
};

enum {
	A_CANCEL, A_WRITE, A_CLOSE, A_CHAN_SEND, A_CHAN_RECV, A_CHAN_CLOSE,
	A_WG_DONE,
};

static const char *const act_names[] = {
	"cancel", "write", "close", "chan_send", "chan_recv", "chan_close",
	"wg_done",
};

struct action {
	int kind;
	int64_t at;      /* after the op's t0 */
	int arg;         /* bytes, elements, counts, node index */
	int which;       /* A_WRITE: 0 first pipe, 1 second */
	ctx_t *ref;      /* A_CANCEL: the helper's own reference */
	bool affects;    /* A_CANCEL: ends the leaf */
};

struct worker;

struct op {
	struct worker *w;
	struct rng hr;              /* the helper's generator */
	int kind;
	char what[480];
	struct epoch *ep;
	bool ep_affects;
	struct node chain[MAX_CHAIN];
	int n;
	ctx_t *leaf;
	int64_t t0;                 /* when the plan's clock started */
	int64_t dl;                 /* the leaf's deadline; INT64_MAX: none */
	int64_t sure_end;           /* planned: the wait is over by then */
	struct action acts[MAX_ACTS];
	int nacts;
	ctx_thread_t *helper;
	bool self_cancelled;
	/* what the helper did */
	_Atomic int64_t event_at;   /* an event that must end the wait */
	_Atomic int64_t helper_end;
	_Atomic bool cancelled;     /* a helper cancel that ends the leaf */
	_Atomic int wrote[2];
	_Atomic bool closed;
	_Atomic int moved;          /* elements sent or received */
	_Atomic int dones;
	_Atomic bool seq_bad;
	/* resources */
	int rfd[2], wfd[2];
	ctx_chan_t *ch;
	ctx_wg_t *wg;
	int k;
};

struct worker {
	int idx;
	unsigned gen;
	struct rng r;
	pthread_t th;
	long ops_left;
	_Atomic bool exited;
	_Atomic int64_t busy_since; /* 0: between operations */
	_Atomic int64_t must_end;   /* the watchdog's limit */
	pthread_mutex_t what_mu;
	char what[480];
};

/* Stopped after-funcs' arguments: checked at the end that fn never ran. */
struct aft {
	_Atomic int ran;
	_Atomic int64_t at;
	_Atomic int err_seen;
	ctx_t *target;
	struct aft *next;
};

/* After-funcs whose op has returned, freed by the test's thread. */
extern pthread_mutex_t soak_grave_mu;
extern struct aft *soak_graveyard;

/* The machinery the operations use (soak.c). */
__attribute__((format(printf, 2, 3)))
void soak_say(struct op *o, const char *fmt, ...);
double soak_rel(struct op *o, int64_t t);
int64_t soak_bound(struct op *o);
int64_t soak_cancelled_by(struct op *o);
void soak_check_late(struct op *o, const char *call, int64_t start,
		     int64_t end, int64_t own_by);
void soak_check_err(struct op *o, const char *call, int err);
void soak_check_pre(struct op *o, const char *call, int pre, long rc,
		    int err);
bool soak_build(struct op *o);
void soak_add_act(struct op *o, int kind, int64_t at, int arg, bool ends);
bool soak_add_cancel(struct op *o, bool must);
void soak_maybe_self_cancel(struct op *o);
void soak_fill(char *buf, int n);
void soak_start(struct op *o);
void soak_join_helper(struct op *o);

/* The operations (soak_ops.c). */
void op_io(struct op *o, bool sock);
void op_poll(struct op *o);
void op_chan_recv(struct op *o);
void op_chan_send(struct op *o);
void op_wg(struct op *o);
void op_group(struct op *o);
void op_join(struct op *o);
void op_sleep(struct op *o);
void op_wait(struct op *o);
void op_after(struct op *o);
void op_done_fd(struct op *o);
void op_tree(struct op *o);

#endif
