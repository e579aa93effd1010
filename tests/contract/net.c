#include "../contract.h"

const struct ct_row ct_rows_net[] = {
	{ .name = NULL },
};
