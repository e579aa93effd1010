#include "../contract.h"

const struct ct_row ct_rows_proc[] = {
	{ .name = NULL },
};
