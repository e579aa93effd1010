/*
 * The C++ suite's runner (one program per compiler and standard, built
 * from these same files).  `PROGRAM --leak-child` is the child the sites
 * test runs with CTX_DEBUG=leaks.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cpptest.h"

int main(int argc, char **argv)
{
	if (argc > 1 && !std::strcmp(argv[1], "--leak-child"))
		return sites_child();
	Suite *s = suite_create("cpp");
	suite_add_tcase(s, tcase_context());
	suite_add_tcase(s, tcase_thread());
	suite_add_tcase(s, tcase_after());
	if (TCase *tc = tcase_stop())
		suite_add_tcase(s, tc);
	else
		std::printf("cpp: no stop_token case: this build (C++ %ld) has "
			    "no std::stop_token\n", __cplusplus);
	suite_add_tcase(s, tcase_constructs());
	suite_add_tcase(s, tcase_sites());
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
