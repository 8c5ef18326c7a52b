/* Helpers for conformance cases. Each case prints what each call returned
 * (and errno's name on failure); the harness runs it natively and in the
 * sandbox and compares. Print nothing that legitimately differs between
 * the two (addresses, pids other than via explicit checks, times). */
#ifndef CHECK_H
#define CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints "<expr> = <result>" or "<expr> = -1 <ERRNO>". */
#define CHECK(expr)                                                        \
  do {                                                                     \
    errno = 0;                                                             \
    long _r = (long)(expr);                                                \
    if (_r < 0)                                                            \
      printf("%s = %ld %s\n", #expr, _r, strerrorname_np(errno));          \
    else                                                                   \
      printf("%s = %ld\n", #expr, _r);                                     \
  } while (0)

/* Prints only success or the errno name: for calls whose value differs
 * between runs (addresses, fds of the host). */
#define CHECK_OK(expr)                                                     \
  do {                                                                     \
    errno = 0;                                                             \
    long _r = (long)(expr);                                                \
    if (_r < 0)                                                            \
      printf("%s = -1 %s\n", #expr, strerrorname_np(errno));               \
    else                                                                   \
      printf("%s = ok\n", #expr);                                          \
  } while (0)

/* Prints whether a condition holds. */
#define EXPECT(cond) printf("%s: %s\n", #cond, (cond) ? "yes" : "no")

#endif
