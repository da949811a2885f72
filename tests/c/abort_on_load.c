/* A library whose load-time constructor aborts: whatever process loads it dies of SIGABRT before
 * it can ask the library anything. */
#include <stdlib.h>

__attribute__((constructor)) static void abort_on_load(void) { abort(); }
