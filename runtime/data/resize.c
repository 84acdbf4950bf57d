// resize.c: min-max normalisation and half-pixel bilinear resizing (see resize.h).
//
// The order in slice_prepare is the seed's: its PNG slices were min-max
// normalised (to 8 bits) before tf.image.resize, and each resized image was
// min-max normalised again. Bilinear weights sum to one, so resizing commutes
// with x -> a*x + b and the first min-max changes nothing in exact arithmetic;
// it is there for float arithmetic. Scanner values can be large and offset,
// and a constant slice becomes exact zeros, which the resize keeps, where
// rounding in the resize could leave noise that the second min-max would
// stretch to [0, 1]. The second is needed: averaging pulls the extremes in,
// and the seed's model saw each image spanning exactly [0, 1].
#include "resize.h"

#include <stdlib.h>

void minmax01(float *img, size_t n) {
  if (n == 0)
    return;
  float lo = img[0], hi = img[0];
  for (size_t i = 1; i < n; i++) {
    lo = img[i] < lo ? img[i] : lo;
    hi = img[i] > hi ? img[i] : hi;
  }
  // In halves, so that hi - lo and x - lo stay finite for any finite floats
  // (halving is exact but for subnormals); dividing, where a reciprocal could
  // round, maps lo to exactly 0 and hi to exactly 1.
  float range = 0.5f * hi - 0.5f * lo;
  if (range == 0)
    range = 1; // every x - lo is 0
  for (size_t i = 0; i < n; i++)
    img[i] = (0.5f * img[i] - 0.5f * lo) / range;
}

// Source index and weights for output index i of n along an axis of size in,
// computed as PyTorch's CPU kernel does (the scale in float, the position in
// double, negative positions clamped to 0), so the results agree with it to
// float rounding. TensorFlow computes the position in float: the two differ by
// up to about 1e-5 where in / n is not a power of two, and not at all for the
// seed's 256 -> 128.
static void source(int i, int n, int in, int *i0, int *i1, float *w0, float *w1) {
  float scale = (float)in / (float)n;
  double s = scale * (i + 0.5) - 0.5;
  s = s < 0 ? 0 : s;
  *i0 = (int)s;
  *i1 = *i0 + (*i0 < in - 1);
  double t = s - *i0 < 1 ? s - *i0 : 1;
  *w0 = (float)(1 - t);
  *w1 = (float)t;
}

int resize_bilinear(const float *in, int in_h, int in_w, float *out, int out_h, int out_w) {
  // The columns' indices and weights, once per call; the rows' come one per output row.
  int *x0 = malloc((size_t)out_w * 2 * sizeof *x0);
  float *wx0 = malloc((size_t)out_w * 2 * sizeof *wx0);
  if (!x0 || !wx0) {
    free(x0);
    free(wx0);
    return -1;
  }
  int *x1 = x0 + out_w;
  float *wx1 = wx0 + out_w;
  for (int x = 0; x < out_w; x++)
    source(x, out_w, in_w, &x0[x], &x1[x], &wx0[x], &wx1[x]);
  for (int y = 0; y < out_h; y++) {
    int y0, y1;
    float wy0, wy1;
    source(y, out_h, in_h, &y0, &y1, &wy0, &wy1);
    const float *r0 = in + (size_t)y0 * in_w, *r1 = in + (size_t)y1 * in_w;
    float *o = out + (size_t)y * out_w;
    for (int x = 0; x < out_w; x++)
      o[x] = wy0 * (wx0[x] * r0[x0[x]] + wx1[x] * r0[x1[x]]) + wy1 * (wx0[x] * r1[x0[x]] + wx1[x] * r1[x1[x]]);
  }
  free(x0);
  free(wx0);
  return 0;
}

int slice_prepare(float *slice, int h, int w, float *out, int out_h, int out_w) {
  minmax01(slice, (size_t)h * w);
  if (resize_bilinear(slice, h, w, out, out_h, out_w))
    return -1;
  minmax01(out, (size_t)out_h * out_w);
  return 0;
}
