// test_brainmask.c: the classical brain mask and the seed's slice rules.
//
//   test_brainmask colin CH2 CH2BET   Colin27 against its BET brain (Dice, sensitivity, precision)
//   test_brainmask itk T1             ITK's whole-head T1 (2x2x3 mm): plausibility
//   test_brainmask synthetic          head phantoms with a known brain, and degenerate volumes
//   test_brainmask slices             per-slice statistics, cut-offs and the brain-area rule
//
// Each prints one line per check and ends with "N passed, M failed".
#include "brainmask.h"
#include "rng.h"
#include "volume.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                                          \
  do {                                                                                                            \
    int ok_ = (cond);                                                                                             \
    ok_ ? passed++ : failed++;                                                                                    \
    printf("%-4s ", ok_ ? "ok" : "FAIL");                                                                         \
    printf(__VA_ARGS__);                                                                                          \
    putchar('\n');                                                                                                \
  } while (0)

static size_t voxels(const int dim[3]) { return (size_t)dim[0] * dim[1] * dim[2]; }

static void *alloc(size_t bytes) {
  void *p = calloc(bytes ? bytes : 1, 1);
  if (!p) {
    fputs("out of memory\n", stderr);
    exit(2);
  }
  return p;
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void read_volume(const char *path, Volume *v) {
  char err[512];
  if (vol_read(path, v, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(2);
  }
}

typedef struct {
  double dice, sensitivity, precision;
} Overlap;

static Overlap overlap(const unsigned char *got, const unsigned char *want, size_t n) {
  size_t both = 0, g = 0, w = 0;
  for (size_t v = 0; v < n; v++)
    both += got[v] && want[v], g += got[v] != 0, w += want[v] != 0;
  return (Overlap){g + w ? 2.0 * both / (g + w) : 1, w ? (double)both / w : 1, g ? (double)both / g : 1};
}

// The number of 6-connected components of the mask.
static int components(const unsigned char *mask, const int dim[3]) {
  size_t n = voxels(dim), nx = dim[0], nxy = nx * dim[1];
  unsigned char *seen = alloc(n);
  size_t *queue = alloc(n * sizeof *queue);
  int count = 0;
  for (size_t s = 0; s < n; s++) {
    if (!mask[s] || seen[s])
      continue;
    count++;
    size_t head = 0, tail = 0;
    queue[tail++] = s, seen[s] = 1;
    while (head < tail) {
      size_t v = queue[head++];
      int i = (int)(v % nx), j = (int)(v / nx % dim[1]), k = (int)(v / nxy);
      size_t nb[6] = {i > 0 ? v - 1 : v, i < dim[0] - 1 ? v + 1 : v, j > 0 ? v - nx : v,
                      j < dim[1] - 1 ? v + nx : v, k > 0 ? v - nxy : v, k < dim[2] - 1 ? v + nxy : v};
      for (int c = 0; c < 6; c++)
        if (mask[nb[c]] && !seen[nb[c]])
          seen[nb[c]] = 1, queue[tail++] = nb[c];
    }
  }
  free(seen);
  free(queue);
  return count;
}

static size_t mask_count(const unsigned char *mask, size_t n) {
  size_t c = 0;
  for (size_t v = 0; v < n; v++)
    c += mask[v] != 0;
  return c;
}

// The brain mask of v, timed; exits on failure.
static unsigned char *mask_of(const Volume *v, const char *what) {
  unsigned char *mask = alloc(voxels(v->dim));
  char err[256];
  double t = seconds();
  int rc = brain_mask(v->data, v->dim, v->voxel, mask, err, sizeof err);
  printf("     %s: brain mask in %.3f s\n", what, seconds() - t);
  CHECK(rc == 0, "%s: brain_mask succeeds%s%s", what, rc ? ": " : "", rc ? err : "");
  return mask;
}

// The sagittal slices the seed's rule keeps, from a mask: how many, and the first and last.
static int kept_sagittal(const Volume *v, const unsigned char *mask, int *first, int *last) {
  int axis = v->axis_of[0], ns = v->dim[axis], kept = 0;
  double *count = alloc(ns * sizeof *count), pixels = (double)voxels(v->dim) / ns;
  slice_mask_count(mask, v->dim, axis, count);
  *first = -1;
  for (int s = 0; s < ns; s++)
    if (slice_has_brain(count[s], pixels)) {
      *first = *first < 0 ? s : *first;
      *last = s;
      kept++;
    }
  free(count);
  return kept;
}

static void test_colin(const char *ch2, const char *ch2bet) {
  Volume head = {0}, brain = {0};
  read_volume(ch2, &head);
  read_volume(ch2bet, &brain);
  size_t n = voxels(head.dim);
  CHECK(memcmp(head.dim, brain.dim, sizeof head.dim) == 0, "colin: ch2 and ch2bet share the grid");
  unsigned char *want = alloc(n);
  for (size_t v = 0; v < n; v++)
    want[v] = brain.data[v] > 0;
  unsigned char *got = mask_of(&head, "colin");
  Overlap o = overlap(got, want, n);
  printf("     colin: brain %.0f ml (BET %.0f ml)\n", mask_count(got, n) * 1e-3, mask_count(want, n) * 1e-3);
  CHECK(o.dice >= 0.90, "colin: Dice %.4f >= 0.90 (sensitivity %.4f, precision %.4f)", o.dice, o.sensitivity,
        o.precision);
  CHECK(components(got, head.dim) == 1, "colin: the mask is one component");
  // What the mask is for: the sagittal slices the seed's brain-area rule keeps.
  int f1, l1, f2, l2, k1 = kept_sagittal(&head, got, &f1, &l1), k2 = kept_sagittal(&head, want, &f2, &l2);
  CHECK(abs(f1 - f2) <= 3 && abs(l1 - l2) <= 3 && k1 == l1 - f1 + 1,
        "colin: sagittal slices kept %d..%d (%d), with BET's mask %d..%d (%d)", f1, l1, k1, f2, l2, k2);
  free(want);
  free(got);
  vol_free(&head);
  vol_free(&brain);
}

static void test_itk(const char *path) {
  Volume t1 = {0};
  read_volume(path, &t1);
  size_t n = voxels(t1.dim);
  unsigned char *mask = mask_of(&t1, "itk");
  double ml = t1.voxel[0] * t1.voxel[1] * t1.voxel[2] * 1e-3;
  // The head: voxels above a tenth of the brain's mean intensity.
  double mean = 0, brain = (double)mask_count(mask, n), head = 0, dark = 0;
  for (size_t v = 0; v < n; v++)
    mean += mask[v] ? t1.data[v] / brain : 0;
  for (size_t v = 0; v < n; v++) {
    head += t1.data[v] > 0.1 * mean;
    dark += mask[v] && t1.data[v] <= 0.1 * mean;
  }
  printf("     itk: brain %.0f ml of a %.0f ml head (%.1f%%), brain mean intensity %.1f\n", brain * ml, head * ml,
         100 * brain / head, mean);
  CHECK(brain * ml > 900 && brain * ml < 1800, "itk: brain volume %.0f ml in (900, 1800)", brain * ml);
  CHECK(brain / head > 0.25 && brain / head < 0.75, "itk: brain fraction of the head %.3f in (0.25, 0.75)",
        brain / head);
  CHECK(dark / brain < 0.02, "itk: %.2f%% of the brain lies outside the head", 100 * dark / brain);
  CHECK(components(mask, t1.dim) == 1, "itk: the mask is one component");
  int first, last, kept = kept_sagittal(&t1, mask, &first, &last);
  CHECK(kept == last - first + 1 && kept > 0, "itk: sagittal slices kept %d..%d of %d, one block", first, last,
        t1.dim[t1.axis_of[0]]);
  free(mask);
  vol_free(&t1);
}

// A head phantom on a grid of dim voxels of mm: an ellipsoidal brain (white
// matter, a 3 mm grey rim, a dark ventricle) inside a CSF gap and a bright
// scalp shell, joined to the shell by a thin bridge of tissue, with noise.
// truth marks the brain, ventricle included. scale sets the intensity unit.
static float *phantom(const int dim[3], const double mm[3], float scale, unsigned char *truth) {
  const double brain[3] = {66, 82, 58}; // semi-axes in mm
  float *vol = alloc(voxels(dim) * sizeof *vol);
  size_t v = 0;
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++)
      for (int i = 0; i < dim[0]; i++, v++) {
        double p[3] = {(i - dim[0] / 2.0) * mm[0], (j - dim[1] / 2.0) * mm[1], (k - dim[2] / 2.0) * mm[2]};
        // The ellipsoidal "radius" in brain units, and what that is in mm along this direction.
        double q[3] = {p[0] / brain[0], p[1] / brain[1], p[2] / brain[2]};
        double e = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
        double unit = sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]) / (e > 0 ? e : 1);
        double depth = (1 - e) * unit; // mm inside the brain's surface (negative outside)
        double c[3] = {p[0] / 8, (p[1] + 5) / 25, p[2] / 12};
        double ventricle = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
        double bridge = hypot(p[0], p[2]); // a 4 mm wide rod along the j axis
        float x = 0;
        if (depth >= 0)
          x = ventricle < 1 ? 80 : depth < 3 ? 320 : 450;
        else if (depth > -5)
          x = bridge < 2 ? 320 : 80; // CSF and bone
        else if (depth > -11)
          x = 650; // scalp and fat
        truth[v] = depth >= 0;
        uint64_t bits = rng_bits(7, 1, v); // two 32-bit uniforms for Box-Muller
        double u1 = (double)(bits >> 32) * 0x1p-32, u2 = (double)(uint32_t)bits * 0x1p-32;
        double noise = 20 * sqrt(-2 * log(1 - u1)) * cos(2 * M_PI * u2);
        vol[v] = scale * (float)fabs(x + noise); // magnitude images: Rician-like background
      }
  return vol;
}

static void test_synthetic(void) {
  // IXI's grid (0.94 x 0.94 x 1.2 mm, int16 scale) and a coarse anisotropic one.
  struct {
    int dim[3];
    double mm[3];
    float scale;
  } grids[] = {{{256, 256, 150}, {0.9375, 0.9375, 1.2}, 1}, {{100, 110, 60}, {2, 2, 3}, 0.001f}};
  for (int g = 0; g < 2; g++) {
    const int *dim = grids[g].dim;
    const double *mm = grids[g].mm;
    size_t n = voxels(dim);
    unsigned char *truth = alloc(n), *mask = alloc(n);
    float *vol = phantom(dim, mm, grids[g].scale, truth);
    char err[256];
    double t = seconds();
    int rc = brain_mask(vol, dim, mm, mask, err, sizeof err);
    printf("     phantom %dx%dx%d: brain mask in %.3f s\n", dim[0], dim[1], dim[2], seconds() - t);
    Overlap o = overlap(mask, truth, n);
    CHECK(rc == 0 && o.dice >= 0.95, "phantom %dx%dx%d of %gx%gx%g mm: Dice %.4f >= 0.95 (sensitivity %.4f, "
          "precision %.4f)", dim[0], dim[1], dim[2], mm[0], mm[1], mm[2], o.dice, o.sensitivity, o.precision);
    if (g == 1) { // non-finite voxels count as background
      vol[0] = NAN, vol[n / 2] = INFINITY, vol[n - 1] = -INFINITY;
      rc = brain_mask(vol, dim, mm, mask, err, sizeof err);
      o = overlap(mask, truth, n);
      CHECK(rc == 0 && o.dice >= 0.95, "phantom %dx%dx%d with NaN and Inf: Dice %.4f", dim[0], dim[1], dim[2],
            o.dice);
    }
    free(vol);
    free(truth);
    free(mask);
  }

  // Degenerate volumes: an error and an empty mask, never a crash.
  int dim[3] = {40, 40, 40}, tiny[3] = {3, 3, 3};
  double mm[3] = {1, 1, 1}, bad_mm[3] = {1, 0, 1}, fine_mm[3] = {0.05, 0.5, 0.5};
  size_t n = voxels(dim);
  float *vol = alloc(n * sizeof *vol);
  unsigned char *mask = alloc(n);
  char err[256];
  struct {
    const char *what;
    float value;
    const int *dim;
    const double *mm;
  } cases[] = {{"all-zero", 0, dim, mm},
               {"constant", 5, dim, mm},
               {"tiny 3x3x3 noise", -1, tiny, mm},
               {"zero voxel size", 1, dim, bad_mm},
               {"0.05 mm voxels (too many chords in a ball)", -1, dim, fine_mm},
               {"all-NaN", NAN, dim, mm}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    size_t count = voxels(cases[c].dim);
    for (size_t v = 0; v < count; v++)
      vol[v] = cases[c].value >= 0 || isnan(cases[c].value) ? cases[c].value : (float)rng_uniform(1, 3, v);
    memset(mask, 1, count);
    err[0] = 0;
    int rc = brain_mask(vol, cases[c].dim, cases[c].mm, mask, err, sizeof err);
    CHECK(rc == -1 && mask_count(mask, count) == 0 && strncmp(err, "brain mask: ", 12) == 0,
          "%s: error \"%s\", empty mask", cases[c].what, err);
  }
  int no_dim[3] = {0, 40, 40};
  CHECK(brain_mask(vol, no_dim, mm, mask, err, sizeof err) == -1, "no voxels: error \"%s\"", err);
  free(vol);
  free(mask);
}

static int near(double got, double want) { return fabs(got - want) <= 1e-9 * (1 + fabs(want)); }

static void test_slices(void) {
  // Cut-offs of hand-made sets. 1..9: Q1 3, Q3 7, IQR 4; mean 5, sd sqrt(60/8).
  const double nine[9] = {9, 1, 8, 2, 7, 3, 6, 4, 5};
  CHECK(near(slice_cutoff(nine, 9, SLICE_CUT_Q1), 3), "1..9: Q1 = 3");
  CHECK(near(slice_cutoff(nine, 9, SLICE_CUT_TUKEY), -3), "1..9: Q1 - 1.5 IQR = -3");
  CHECK(near(slice_cutoff(nine, 9, SLICE_CUT_3SD), 5 - 3 * sqrt(7.5)), "1..9: mean - 3 sd = 5 - 3 sqrt(7.5)");
  CHECK(nine[0] == 9 && nine[8] == 5, "the values are left unsorted");
  // 10, 20, 30, 40: quartiles between order statistics, Q1 17.5, Q3 32.5.
  const double four[4] = {40, 10, 30, 20};
  CHECK(near(slice_cutoff(four, 4, SLICE_CUT_Q1), 17.5), "10..40: Q1 = 17.5 (interpolated)");
  CHECK(near(slice_cutoff(four, 4, SLICE_CUT_TUKEY), -5), "10..40: Q1 - 1.5 IQR = -5");
  CHECK(near(slice_cutoff(four, 4, SLICE_CUT_3SD), 25 - 3 * sqrt(500.0 / 3)), "10..40: mean - 3 sd");
  const double one[1] = {42};
  CHECK(slice_cutoff(one, 1, SLICE_CUT_Q1) == 42 && slice_cutoff(one, 1, SLICE_CUT_TUKEY) == 42 &&
            slice_cutoff(one, 1, SLICE_CUT_3SD) == 42, "one value: every cut-off is the value");
  CHECK(isnan(slice_cutoff(NULL, 0, SLICE_CUT_Q1)), "no values: the cut-off is NaN");
  // 100 slices of 1000 pixels but one of 0 and one of 700: Tukey's fence
  // (Q1 = Q3 = 1000) drops both; mean - 3 sd = 987 - 3 * 104.1 drops only the empty one.
  double counts[100];
  for (int s = 0; s < 100; s++)
    counts[s] = s == 3 ? 0 : s == 50 ? 700 : 1000;
  unsigned char keep[100];
  CHECK(slice_keep(counts, 100, slice_cutoff(counts, 100, SLICE_CUT_TUKEY), keep) == 98 && !keep[3] && !keep[50],
        "Tukey's fence drops the outlying slices 3 and 50");
  CHECK(slice_keep(counts, 100, slice_cutoff(counts, 100, SLICE_CUT_3SD), keep) == 99 && !keep[3] && keep[50],
        "mean - 3 sd drops only slice 3");
  CHECK(slice_keep(counts, 100, 1000, keep) == 98 && keep[0], "a value equal to the cut-off is kept");

  // The brain-area rule: 3000 of 256x256, strictly more, scaled to the slice.
  CHECK(!slice_has_brain(3000, 65536) && slice_has_brain(3001, 65536), "256x256: keep above 3000, not at it");
  CHECK(!slice_has_brain(750, 16384) && slice_has_brain(751, 16384), "128x128: keep above 750, not at it");
  CHECK(!slice_has_brain(1797, 217 * 181) && slice_has_brain(1798, 217 * 181), "217x181: keep above 1797.9");

  // Per-slice statistics of a 2x3x4 volume: value i + 10 j + 100 k, but zero where i == j.
  int dim[3] = {2, 3, 4};
  float vol[24];
  unsigned char mask[24];
  for (int k = 0, v = 0; k < 4; k++)
    for (int j = 0; j < 3; j++)
      for (int i = 0; i < 2; i++, v++) {
        vol[v] = i == j ? 0 : (float)(i + 10 * j + 100 * k);
        mask[v] = k >= 2 && i == 1;
      }
  double count[4], mean[4];
  slice_nonzero(vol, dim, 0, count, mean); // i = 0: j 1, 2 nonzero; i = 1: j 0, 2
  CHECK(count[0] == 8 && count[1] == 8 && near(mean[0], 15 + 150) && near(mean[1], 11 + 150),
        "slices across i: nonzero counts 8, 8, means 165, 161");
  slice_nonzero(vol, dim, 1, count, mean); // j = 0: i 1; j = 1: i 0; j = 2: both
  CHECK(count[0] == 4 && count[1] == 4 && count[2] == 8 && near(mean[0], 151) && near(mean[1], 160) &&
            near(mean[2], 170.5), "slices across j: nonzero counts 4, 4, 8, means 151, 160, 170.5");
  slice_nonzero(vol, dim, 2, count, mean); // each k: (i, j) = (0, 1), (0, 2), (1, 0), (1, 2)
  CHECK(count[0] == 4 && count[3] == 4 && near(mean[0], 13) && near(mean[3], 313),
        "slices across k: nonzero counts 4, means 13 + 100 k");
  for (int v = 0; v < 24; v++)
    vol[v] = 0;
  slice_nonzero(vol, dim, 2, count, mean);
  CHECK(count[0] == 0 && mean[0] == 0, "an empty slice has count 0 and mean 0");
  slice_mask_count(mask, dim, 2, count);
  CHECK(count[0] == 0 && count[1] == 0 && count[2] == 3 && count[3] == 3, "mask counts across k: 0, 0, 3, 3");
  slice_mask_count(mask, dim, 0, count);
  CHECK(count[0] == 0 && count[1] == 6, "mask counts across i: 0, 6");
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "colin") == 0)
    test_colin(argv[2], argv[3]);
  else if (argc == 3 && strcmp(argv[1], "itk") == 0)
    test_itk(argv[2]);
  else if (argc == 2 && strcmp(argv[1], "synthetic") == 0)
    test_synthetic();
  else if (argc == 2 && strcmp(argv[1], "slices") == 0)
    test_slices();
  else {
    fputs("usage: test_brainmask colin CH2 CH2BET | itk T1 | synthetic | slices\n", stderr);
    return 2;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
