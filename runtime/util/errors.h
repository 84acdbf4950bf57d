// errors.h: the runtime's error messages and allocations. Functions that can
// fail on their input (a file, a record) write one line into the caller's
// buffer and return -1; memory that the kernels and tools need to go on at
// all cannot fail to be there.
#ifndef CAEC_ERRORS_H
#define CAEC_ERRORS_H

#include <stdarg.h>
#include <stddef.h>

// Writes "PATH: WHAT" and then the message of fmt into err (errlen bytes; nothing when err is
// NULL or errlen 0); path and what may be NULL (none). Returns -1, so that callers can
// `return err_fail(...)`.
int err_vfail(char *err, size_t errlen, const char *path, const char *what, const char *fmt, va_list ap);
__attribute__((format(printf, 4, 5))) int err_fail(char *err, size_t errlen, const char *path, const char *fmt, ...);

// calloc of n (0: 1) items: never NULL; out of memory, says "PROG: out of memory" and exits with status 1.
void *err_calloc(size_t n, size_t size);

#endif
