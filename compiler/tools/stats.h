// stats.h: trained runs' metrics and their statistics (stats.c), for caec
// compare and caec experiment.
#ifndef CAEC_STATS_H
#define CAEC_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caec.h" // CAEC_PATH_BYTES


// A trainer's `eval` output: per image, its cache index and the metrics.
typedef struct PerImage {
  char path[CAEC_PATH_BYTES];
  int64_t n;
  int64_t *index;
  double *metric[CAEC_NMETRICS];
} PerImage;
// Reads DIR/per_image.csv, or DIR/eval/per_image.csv; 0, or -1 with "FILE:LINE: problem" in err.
int per_image_read(const char *dir, PerImage *p, char *err, size_t errlen);
void per_image_free(PerImage *p);
bool per_image_paired(const PerImage *a, const PerImage *b); // the same images in the same order
// The paired two-sided t-test of a against b (n >= 2): d = a - b.
typedef struct TTest {
  double mean_diff, t, df, p;
} TTest;
TTest paired_t_test(const double *a, const double *b, int64_t n);

#endif
