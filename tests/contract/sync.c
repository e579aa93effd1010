#include "../contract.h"

const struct ct_row ct_rows_sync[] = {
	{ .name = NULL },
};
