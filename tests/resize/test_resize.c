// test_resize.c: min-max normalisation and half-pixel bilinear resizing on
// cases worked by hand, then the time to prepare SLICES slices of 256x256 to
// 128x128 (printed, not checked). interop.py checks against PyTorch.
//
//   test_resize [SLICES]    (default 10000)
#include "resize.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../testutil.h"

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Resizes in to out_h x out_w and checks every value against want.
static void expect(const char *what, const float *in, int in_h, int in_w, const float *want, int out_h, int out_w) {
  float out[64];
  CHECK(resize_bilinear(in, in_h, in_w, out, out_h, out_w) == 0, "%s: resize failed", what);
  for (int i = 0; i < out_h * out_w; i++)
    CHECK(fabsf(out[i] - want[i]) <= 1e-6f, "%s: pixel (%d, %d) is %g, want %g", what, i / out_w, i % out_w,
          out[i], want[i]);
}

static void test_cases(void) {
  // Equal sizes copy exactly: source positions fall on pixels, with weights 1 and 0.
  float in[35];
  for (int i = 0; i < 35; i++)
    in[i] = sinf((float)i * 1.7f) * 1000;
  expect("identity", in, 5, 7, in, 5, 7);

  // Halving: output pixels sit between four inputs and average them.
  const float ramp[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  expect("4x4 -> 2x2", ramp, 4, 4, (const float[]){2.5f, 4.5f, 10.5f, 12.5f}, 2, 2);

  // Doubling: columns sample -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to
  // the last), so corners copy the input corners; value = row part + column part.
  const float sq[4] = {0, 1, 2, 3};
  float up[16];
  const float rows[4] = {0, 0.5f, 1.5f, 2}, cols[4] = {0, 0.25f, 0.75f, 1};
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++)
      up[y * 4 + x] = rows[y] + cols[x];
  expect("2x2 -> 4x4", sq, 2, 2, up, 4, 4);

  // One row, one column, one pixel.
  expect("1x4 -> 1x2", ramp, 1, 4, (const float[]){0.5f, 2.5f}, 1, 2);
  expect("2x1 -> 3x1", (const float[]){0, 10}, 2, 1, (const float[]){0, 5, 10}, 3, 1);
  expect("1x1 -> 2x3", (const float[]){7}, 1, 1, (const float[]){7, 7, 7, 7, 7, 7}, 2, 3);
  expect("4x4 -> 1x1", ramp, 4, 4, (const float[]){7.5f}, 1, 1);
}

static void test_minmax(void) {
  float c[6] = {3, 3, 3, 3, 3, 3};
  minmax01(c, 6);
  int zeros = 1;
  for (int i = 0; i < 6; i++)
    zeros &= c[i] == 0;
  CHECK(zeros, "a constant image becomes zeros");
  minmax01(c, 0); // nothing to do, and no read

  float v[4] = {-2, 0, 6, 2};
  minmax01(v, 4);
  CHECK(v[0] == 0 && v[1] == 0.25f && v[2] == 1 && v[3] == 0.5f, "min-max of {-2, 0, 6, 2}: %g %g %g %g", v[0],
        v[1], v[2], v[3]);
  // The widest finite range does not overflow into Inf or NaN.
  float e[3] = {-FLT_MAX, 0, FLT_MAX};
  minmax01(e, 3);
  CHECK(e[0] == 0 && e[1] == 0.5f && e[2] == 1, "min-max of +-FLT_MAX: %g %g %g", e[0], e[1], e[2]);
}

static void test_prepare(void) {
  // An IXI-like sagittal slice in scanner units: the output spans exactly [0, 1].
  enum { H = 256, W = 150, S = 128 };
  float *slice = malloc(sizeof(float) * H * W), *out = malloc(sizeof(float) * S * S);
  for (int i = 0; i < H * W; i++)
    slice[i] = 800 + 500 * sinf((float)i * 0.37f) * cosf((float)(i / W) * 0.05f);
  CHECK(slice_prepare(slice, H, W, out, S, S) == 0, "slice_prepare failed");
  float lo = out[0], hi = out[0];
  int finite = 1;
  for (int i = 0; i < S * S; i++) {
    lo = fminf(lo, out[i]);
    hi = fmaxf(hi, out[i]);
    finite &= isfinite(out[i]) != 0;
  }
  CHECK(finite && lo == 0 && hi == 1, "prepared slice spans [%g, %g]", lo, hi);

  // A constant slice (the background beyond the head) gives zeros, never NaN.
  for (int i = 0; i < H * W; i++)
    slice[i] = 123.4f;
  CHECK(slice_prepare(slice, H, W, out, S, S) == 0, "slice_prepare failed");
  int zeros = 1;
  for (int i = 0; i < S * S; i++)
    zeros &= out[i] == 0;
  CHECK(zeros, "a constant slice prepares to zeros");
  free(slice);
  free(out);
}

// The data pipeline prepares every slice of every volume: how long do n take?
static void time_prepare(int n) {
  enum { H = 256, S = 128 };
  float *slice = malloc(sizeof(float) * H * H), *out = malloc(sizeof(float) * S * S);
  double t = 0, sum = 0;
  int ok = 1;
  for (int k = 0; k < n; k++) {
    for (int i = 0; i < H * H; i++) // a fresh slice each time, as from a volume
      slice[i] = (float)((i * 7 + k) % 251);
    double t0 = seconds();
    ok &= slice_prepare(slice, H, H, out, S, S) == 0;
    t += seconds() - t0;
    sum += out[k % (S * S)]; // keeps the work observable
  }
  CHECK(ok, "slice_prepare failed");
  printf("slice_prepare 256x256 -> 128x128: %d slices in %.3f s (%.1f us each; checksum %g)\n", n, t,
         n ? 1e6 * t / n : 0.0, sum);
  free(slice);
  free(out);
}

int main(int argc, char **argv) {
  test_cases();
  test_minmax();
  test_prepare();
  time_prepare(argc > 1 ? atoi(argv[1]) : 10000);
  return finish();
}
