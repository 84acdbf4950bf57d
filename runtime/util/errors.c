// errors.c: error messages and allocations (errors.h).
#define _GNU_SOURCE // program_invocation_short_name
#include "errors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int err_vfail(char *err, size_t errlen, const char *path, const char *what, const char *fmt, va_list ap) {
  if (!err || !errlen)
    return -1;
  int n = snprintf(err, errlen, "%s%s%s", path ? path : "", path ? ": " : "", what ? what : "");
  if (n >= 0 && (size_t)n < errlen)
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
  return -1;
}

int err_fail(char *err, size_t errlen, const char *path, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  err_vfail(err, errlen, path, NULL, fmt, ap);
  va_end(ap);
  return -1;
}

void *err_calloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) {
    fprintf(stderr, "%s: out of memory\n", program_invocation_short_name);
    exit(1);
  }
  return p;
}
