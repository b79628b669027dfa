/* check_main.h - the one way every test program runs its Check suite. */
#ifndef OUTBOX_TESTS_CHECK_MAIN_H
#define OUTBOX_TESTS_CHECK_MAIN_H

#include <check.h>

/* Runs s (CK_NORMAL output), frees the runner, returns EXIT_SUCCESS or EXIT_FAILURE. */
int check_run_suite(Suite *s);

#endif
