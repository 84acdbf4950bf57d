// compare.c: `caec compare RUN_A RUN_B`, the seed's post-hoc analysis: a
// paired two-sided t-test on the per-image metrics two evaluations of the same
// slices wrote (a trainer's `eval`, per_image.csv). GSL gives the t
// distribution.
#include "caec.h"

#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const metric_names[NMETRICS] = {"mse", "dssim", "psnr"};
static const char PER_IMAGE_HEADER[] = "index,volume,slice,mse,dssim,psnr";

static const char compare_help[] =
    "usage: caec compare RUN_A RUN_B\n\n"
    "Compares two evaluations of the same slices, as the seed's post-hoc analysis did: for\n"
    "each metric (MSE, DSSIM, PSNR) a paired two-sided t-test on the per-image values,\n"
    "d = A - B, t = mean(d) / (sd(d) / sqrt(n)), df = n - 1, p from the t distribution\n"
    "(GSL). RUN is a folder holding per_image.csv (what `NAME eval --out DIR` writes), or a\n"
    "run folder whose eval/ holds it (as `caec experiment` lays them out). Both must list the\n"
    "same slices in the same order.\n"
    "Exit status: 0 done, 1 error, 2 bad usage.\n";

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
  for (int k = 0; k < NMETRICS; k++)
    free(p->metric[k]);
  *p = (PerImage){0};
}

// Appends row n's values, growing the arrays; false when out of memory.
static bool per_image_add(PerImage *p, int64_t *cap, int64_t index, const double v[NMETRICS]) {
  if (p->n == *cap) {
    int64_t grown = *cap ? 2 * *cap : 1024;
    int64_t *ix = realloc(p->index, (size_t)grown * sizeof *ix);
    if (!ix)
      return false;
    p->index = ix;
    for (int k = 0; k < NMETRICS; k++) {
      double *m = realloc(p->metric[k], (size_t)grown * sizeof *m);
      if (!m)
        return false;
      p->metric[k] = m;
    }
    *cap = grown;
  }
  p->index[p->n] = index;
  for (int k = 0; k < NMETRICS; k++)
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
  if (!fgets(line, sizeof line, f) || strncmp(line, PER_IMAGE_HEADER, sizeof PER_IMAGE_HEADER - 1)) {
    snprintf(err, errlen, "%s:1: the header is not '%s'", p->path, PER_IMAGE_HEADER);
    rc = -1;
  }
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    char *s = line, *end;
    long long index = strtoll(s, &end, 10);
    bool ok = end != s && *end == ',' && index >= 0;
    for (int skip = 0; ok && skip < 2; skip++) // volume and slice
      strtoll(s = end + 1, &end, 10), ok = end != s && *end == ',';
    double v[NMETRICS];
    for (int k = 0; ok && k < NMETRICS; k++) {
      v[k] = strtod(s = end + 1, &end);
      ok = end != s && *end == (k + 1 < NMETRICS ? ',' : '\n') && isfinite(v[k]);
    }
    if (!ok) {
      snprintf(err, errlen, "%s:%lld: not a row of %s with finite metrics", p->path, (long long)lineno,
               PER_IMAGE_HEADER);
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

static double mean(const double *v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += v[i];
  return s / (double)n;
}

int cmd_compare(int argc, char **argv) {
  const char *run[2] = {NULL, NULL};
  int runs = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      fputs(compare_help, stdout);
      return 0;
    }
    if (argv[i][0] == '-' || runs == 2)
      return usage_error("compare", "%s '%s'", argv[i][0] == '-' ? "unknown option" : "a third run", argv[i]);
    run[runs++] = argv[i];
  }
  if (runs < 2)
    return usage_error("compare", "needs two runs");
  PerImage p[2];
  char err[PATH_MAX_BYTES + 256];
  if (per_image_read(run[0], &p[0], err, sizeof err))
    return fail("compare", "%s", err);
  if (per_image_read(run[1], &p[1], err, sizeof err)) {
    per_image_free(&p[0]);
    return fail("compare", "%s", err);
  }
  int rc = 0;
  if (!per_image_paired(&p[0], &p[1])) {
    rc = fail("compare", "%s and %s do not list the same slices (%lld and %lld rows): evaluate both on one data set "
              "and split", p[0].path, p[1].path, (long long)p[0].n, (long long)p[1].n);
  } else {
    printf("A: %s\nB: %s\n%lld paired images; d = A - B, paired two-sided t-test\n\n", p[0].path, p[1].path,
           (long long)p[0].n);
    printf("%-7s %13s %13s %13s %12s %7s %12s\n", "metric", "mean A", "mean B", "mean d", "t", "df", "p");
    for (int k = 0; k < NMETRICS; k++) {
      TTest t = paired_t_test(p[0].metric[k], p[1].metric[k], p[0].n);
      printf("%-7s %13.6g %13.6g %13.6g %12.6g %7.0f %12.6g\n", metric_names[k], mean(p[0].metric[k], p[0].n),
             mean(p[1].metric[k], p[1].n), t.mean_diff, t.t, t.df, t.p);
    }
  }
  per_image_free(&p[0]);
  per_image_free(&p[1]);
  return rc;
}
