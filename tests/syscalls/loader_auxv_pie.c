/* cflags: -static-pie */
/* The auxiliary vector and stack checks of loader_auxv.c, for a static-PIE
 * executable (loaded at a base address). */
#include "loader_auxv.c"
