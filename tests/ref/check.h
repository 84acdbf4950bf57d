// check.h: what the reference-kernel tests share: a fixed-seed random source,
// allocation, conv sizes, and the tally of checks, one line each, closed by
// the line "N passed, M failed".
#ifndef CAEC_TESTS_REF_CHECK_H
#define CAEC_TESTS_REF_CHECK_H

#include "ref.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t test_seed = 0x243f6a8885a308d3u;
static int test_passed, test_failed;

static inline uint64_t splitmix64(void) {
  uint64_t z = (test_seed += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

// Uniform in [lo, hi).
static inline double uniform(double lo, double hi) { return lo + (hi - lo) * (double)(splitmix64() >> 11) * 0x1p-53; }

// Uniform in [lo, hi) with a random sign: values kept away from the kinks of relu at 0.
static inline double away_from_zero(double lo, double hi) {
  double v = uniform(lo, hi);
  return splitmix64() & 1 ? v : -v;
}

static inline double *test_alloc(size_t count) {
  double *p = calloc(count ? count : 1, sizeof *p);
  if (!p) {
    fputs("out of memory\n", stderr);
    exit(2);
  }
  return p;
}

static inline double *random_array(size_t count, double lo, double hi) {
  double *p = test_alloc(count);
  for (size_t i = 0; i < count; i++)
    p[i] = uniform(lo, hi);
  return p;
}

static inline double dot(size_t count, const double *a, const double *b) {
  double sum = 0;
  for (size_t i = 0; i < count; i++)
    sum += a[i] * b[i];
  return sum;
}

// One check's line: its name and the largest absolute error it saw.
__attribute__((format(printf, 3, 4))) static inline void report(bool ok, double max_err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%-4s ", ok ? "ok" : "FAIL");
  vprintf(fmt, ap);
  printf(": max abs err %.3g\n", max_err);
  va_end(ap);
  if (ok)
    test_passed++;
  else
    test_failed++;
}

// Compares count values with expected ones: |got - want| <= tol.
static inline void check_values(const char *name, size_t count, const double *got, const double *want, double tol) {
  double max_err = 0;
  bool ok = true;
  for (size_t i = 0; i < count; i++) {
    double err = fabs(got[i] - want[i]);
    if (!(err <= tol))
      ok = false;
    max_err = fmax(max_err, err);
  }
  report(ok, max_err, "%s", name);
}

// Sizes of a RefConv's input, output and weights.
static inline size_t conv_in_count(const RefConv *p) {
  return (size_t)p->n * (size_t)p->cin * (size_t)p->h * (size_t)p->w;
}
static inline size_t conv_out_count(const RefConv *p) {
  return (size_t)p->n * (size_t)p->cout * (size_t)p->oh * (size_t)p->ow;
}
static inline size_t conv_weight_count(const RefConv *p) {
  return (size_t)p->cin * (size_t)p->cout * (size_t)p->k * (size_t)p->k;
}

static inline int summary(void) {
  printf("%d passed, %d failed\n", test_passed, test_failed);
  return test_failed ? 1 : 0;
}

#endif
