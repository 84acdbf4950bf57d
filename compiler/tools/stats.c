// stats.c: the trained runs' per-image metrics (a trainer's eval writes
// per_image.csv) and the seed's paired two-sided t-test on them, which caec
// compare and caec experiment share. GSL gives the t distribution.
#include "stats.h"

#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// DIR/per_image.csv, else DIR/eval/per_image.csv, into path.
static bool find_per_image(const char *dir, char *path, size_t len) {
  struct stat st;
  snprintf(path, len, "%s/per_image.csv", dir);
  if (!stat(path, &st))
    return true;
  snprintf(path, len, "%s/eval/per_image.csv", dir);
  return !stat(path, &st);
}

void per_image_free(PerImage *p) {
  free(p->index);
  for (int k = 0; k < CAEC_NMETRICS; k++)
    free(p->metric[k]);
  *p = (PerImage){0};
}

// Appends row n's values, growing the arrays; false when out of memory.
static bool per_image_add(PerImage *p, int64_t *cap, int64_t index, const double v[CAEC_NMETRICS]) {
  if (p->n == *cap) {
    int64_t grown = *cap ? 2 * *cap : 1024;
    int64_t *ix = realloc(p->index, (size_t)grown * sizeof *ix);
    if (!ix)
      return false;
    p->index = ix;
    for (int k = 0; k < CAEC_NMETRICS; k++) {
      double *m = realloc(p->metric[k], (size_t)grown * sizeof *m);
      if (!m)
        return false;
      p->metric[k] = m;
    }
    *cap = grown;
  }
  p->index[p->n] = index;
  for (int k = 0; k < CAEC_NMETRICS; k++)
    p->metric[k][p->n] = v[k];
  p->n++;
  return true;
}

int per_image_read(const char *dir, PerImage *p, char *err, size_t errlen) {
  *p = (PerImage){0};
  if (!find_per_image(dir, p->path, sizeof p->path)) {
    snprintf(err, errlen, "%s: no per_image.csv in it or in %s/eval (run the trainer's eval first)", dir, dir);
    return -1;
  }
  FILE *f = fopen(p->path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: cannot read it: %s", p->path, strerror(errno));
    return -1;
  }
  char line[1024];
  int64_t cap = 0, lineno = 1;
  int rc = 0;
  if (!fgets(line, sizeof line, f) || strncmp(line, CAEC_PER_IMAGE_HEADER, sizeof CAEC_PER_IMAGE_HEADER - 1)) {
    snprintf(err, errlen, "%s:1: the header is not '%s'", p->path, CAEC_PER_IMAGE_HEADER);
    rc = -1;
  }
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    char *s = line, *end;
    long long index = strtoll(s, &end, 10);
    bool ok = end != s && *end == ',' && index >= 0;
    for (int skip = 0; ok && skip < 2; skip++) // volume and slice
      strtoll(s = end + 1, &end, 10), ok = end != s && *end == ',';
    double v[CAEC_NMETRICS];
    for (int k = 0; ok && k < CAEC_NMETRICS; k++) {
      v[k] = strtod(s = end + 1, &end);
      ok = end != s && *end == (k + 1 < CAEC_NMETRICS ? ',' : '\n') && isfinite(v[k]);
    }
    if (!ok) {
      snprintf(err, errlen, "%s:%lld: not a row of %s with finite metrics", p->path, (long long)lineno,
               CAEC_PER_IMAGE_HEADER);
      rc = -1;
    } else if (!per_image_add(p, &cap, index, v)) {
      snprintf(err, errlen, "%s: out of memory", p->path);
      rc = -1;
    }
  }
  if (!rc && ferror(f)) {
    snprintf(err, errlen, "%s: cannot read it: %s", p->path, strerror(errno));
    rc = -1;
  }
  if (!rc && p->n < 2) {
    snprintf(err, errlen, "%s: %lld images; a t-test needs at least 2", p->path, (long long)p->n);
    rc = -1;
  }
  fclose(f);
  if (rc)
    per_image_free(p);
  return rc;
}

bool per_image_paired(const PerImage *a, const PerImage *b) {
  return a->n == b->n && !memcmp(a->index, b->index, (size_t)a->n * sizeof *a->index);
}

TTest paired_t_test(const double *a, const double *b, int64_t n) {
  // Two passes (mean, then squared deviations): the textbook one-pass sum of
  // squares loses the digits that matter when the differences are small.
  double sum = 0, squares = 0;
  for (int64_t i = 0; i < n; i++)
    sum += a[i] - b[i];
  TTest r = {.mean_diff = sum / (double)n, .df = (double)(n - 1)};
  for (int64_t i = 0; i < n; i++)
    squares += (a[i] - b[i] - r.mean_diff) * (a[i] - b[i] - r.mean_diff);
  double se = sqrt(squares / (double)(n - 1) / (double)n);
  if (se > 0) {
    r.t = r.mean_diff / se;
    r.p = 2 * gsl_cdf_tdist_Q(fabs(r.t), r.df);
  } else { // every difference equal: no difference at all, or a certain one
    r.t = r.mean_diff == 0 ? 0 : copysign(INFINITY, r.mean_diff);
    r.p = r.mean_diff == 0 ? 1 : 0;
  }
  return r;
}
