#include "suites.h"
Suite *suite_context(void) { return suite_create("context"); }
