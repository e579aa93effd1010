#include "suites.h"
/* Filled in by the stress/fault work in progress. */
Suite *suite_stress(void) { return suite_create("stress"); }
