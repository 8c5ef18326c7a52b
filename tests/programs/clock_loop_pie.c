/* cflags: -static-pie */
/* clock_loop.c as a static PIE: glibc finds the vDSO the same way. */
#include "clock_loop.c"
