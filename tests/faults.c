#include "suites.h"
/* Filled in by the stress/fault work in progress. */
Suite *suite_faults(void) { return suite_create("faults"); }
