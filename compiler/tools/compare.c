// compare.c: caec-compare, run as `caec compare RUN_A RUN_B`: the seed's
// post-hoc analysis, a paired two-sided t-test per metric on the per-image
// metrics two evaluations of the same slices wrote (stats.c).
#include "caec.h"
#include "stats.h"

#include <stdio.h>
#include <string.h>

static const char compare_help[] =
    "usage: caec compare RUN_A RUN_B\n\n"
    "Compares two evaluations of the same slices, as the seed's post-hoc analysis did: for\n"
    "each metric (MSE, DSSIM, PSNR) a paired two-sided t-test on the per-image values,\n"
    "d = A - B, t = mean(d) / (sd(d) / sqrt(n)), df = n - 1, p from the t distribution\n"
    "(GSL). RUN is a folder holding per_image.csv (what `NAME eval --out DIR` writes), or a\n"
    "run folder whose eval/ holds it (as `caec experiment` lays them out). Both must list the\n"
    "same slices in the same order.\n"
    "Exit status: 0 done, 1 error, 2 bad usage.\n";

static double mean(const double *v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += v[i];
  return s / (double)n;
}

int main(int argc, char **argv) {
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
  char err[CAEC_PATH_BYTES + 256];
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
    for (int k = 0; k < CAEC_NMETRICS; k++) {
      TTest t = paired_t_test(p[0].metric[k], p[1].metric[k], p[0].n);
      printf("%-7s %13.6g %13.6g %13.6g %12.6g %7.0f %12.6g\n", caec_metric_name((CaecMetric)k), mean(p[0].metric[k], p[0].n),
             mean(p[1].metric[k], p[1].n), t.mean_diff, t.t, t.df, t.p);
    }
  }
  per_image_free(&p[0]);
  per_image_free(&p[1]);
  return rc;
}
