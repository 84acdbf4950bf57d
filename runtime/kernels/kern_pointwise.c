// kern_pointwise.c: elementwise ops, spatial dropout and the channel copies of
// unaligned concatenations. Elementwise results depend on one element each, so
// any split among threads gives the same bits.
//
// The kernels that only know `count` cannot split a two-piece gradient (the
// pieces' sizes need n and hw): they write one piece, dx.a (with acc_a).
#include "kern.h"

#include <math.h>

// Below this many floats a loop is not worth waking the threads for.
#define PAR_MIN ((size_t)1 << 15)

// relu is leaky relu with alpha 0. Written as a sum of both sides so that each side is exact and a
// negative input gives +0, not alpha * x = -0.
void kp_leaky_relu(size_t count, float alpha, const float *restrict x, float *restrict y) {
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++)
    y[i] = (x[i] > 0 ? x[i] : 0.0f) + alpha * (x[i] > 0 ? 0.0f : x[i]);
}

void kp_relu(size_t count, const float *x, float *y) { kp_leaky_relu(count, 0, x, y); }

// The mask is x > 0; relu's backward passes its output, which is > 0 exactly where its input is.
void kp_leaky_relu_bwd(size_t count, float alpha, const float *restrict x, const float *restrict dy, KOut dx) {
  float *restrict d = dx.a;
  bool acc = dx.acc_a;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++) {
    float v = (x[i] > 0 ? dy[i] : 0.0f) + alpha * (x[i] > 0 ? 0.0f : dy[i]);
    d[i] = acc ? d[i] + v : v;
  }
}

void kp_relu_bwd(size_t count, const float *y, const float *dy, KOut dx) { kp_leaky_relu_bwd(count, 0, y, dy, dx); }

// exp of a non-positive argument only, so that neither branch overflows.
void kp_sigmoid(size_t count, const float *restrict x, float *restrict y) {
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++) {
    float e = expf(-fabsf(x[i]));
    y[i] = (x[i] >= 0 ? 1.0f : e) / (1 + e);
  }
}

void kp_sigmoid_bwd(size_t count, const float *restrict y, const float *restrict dy, KOut dx) {
  float *restrict d = dx.a;
  bool acc = dx.acc_a;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++) {
    float v = y[i] * (1 - y[i]) * dy[i];
    d[i] = acc ? d[i] + v : v;
  }
}

void kp_tanh(size_t count, const float *restrict x, float *restrict y) {
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++)
    y[i] = tanhf(x[i]);
}

void kp_tanh_bwd(size_t count, const float *restrict y, const float *restrict dy, KOut dx) {
  float *restrict d = dx.a;
  bool acc = dx.acc_a;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++) {
    float v = (1 - y[i] * y[i]) * dy[i];
    d[i] = acc ? d[i] + v : v;
  }
}

void kp_add(size_t count, const float *restrict a, const float *restrict b, bool relu, float *restrict y) {
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++) {
    float v = a[i] + b[i];
    y[i] = relu && !(v > 0) ? 0.0f : v;
  }
}

void kp_copy(size_t count, const float *restrict dy, KOut dx) {
  float *restrict d = dx.a;
  bool acc = dx.acc_a;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++)
    d[i] = acc ? d[i] + dy[i] : dy[i];
}

// ---- planes of two-piece outputs ----------------------------------------------------

// Where image i's channel block bk of a two-piece tensor of c channels lives: returns the piece's
// memory and acc flag, and sets the pixel stride (1 for a plain 1-channel piece, else KB).
static float *locate(KOut v, int c, int hw, int i, int bk, int *stride, bool *acc) {
  int piece = v.b && bk >= v.ca / KB, pc = piece ? c - v.ca : v.b ? v.ca : c;
  size_t pb = (size_t)(piece ? bk - v.ca / KB : bk);
  *stride = pc == 1 ? 1 : KB;
  *acc = piece ? v.acc_b : v.acc_a;
  return (piece ? v.b : v.a) +
         (pc == 1 ? (size_t)i * (size_t)hw : ((size_t)i * (size_t)kb_blocks(pc) + pb) * (size_t)hw * KB);
}

// y = x f per lane, pixels si and so apart (lanes: so, as padding lanes are written too).
static inline void scale_plane(int hw, int si, int so, const float *restrict x, const float *restrict f, bool acc,
                               float *restrict y) {
  for (int p = 0; p < hw; p++)
    for (int l = 0; l < so; l++) {
      float v = x[(size_t)p * (size_t)si + (size_t)l] * f[l];
      y[(size_t)p * (size_t)so + (size_t)l] = acc ? y[(size_t)p * (size_t)so + (size_t)l] + v : v;
    }
}

void kp_dropout(int n, int c, int hw, float rate, const uint8_t *keep, const float *x, KOut y) {
  int nb = kb_blocks(c), si = c == 1 ? 1 : KB;
  float scale = 1 / (1 - rate);
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)nb * (size_t)hw * KB >= PAR_MIN)
  for (int ib = 0; ib < n * nb; ib++) {
    int i = ib / nb, bk = ib % nb, so;
    bool acc;
    float *yp = locate(y, c, hw, i, bk, &so, &acc), f[KB] = {0};
    for (int l = 0; l < KB && bk * KB + l < c; l++)
      f[l] = keep[(size_t)i * (size_t)c + (size_t)(bk * KB + l)] ? scale : 0.0f;
    const float *xp = x + (size_t)ib * (size_t)hw * (size_t)si;
    if (si == KB && so == KB)
      scale_plane(hw, KB, KB, xp, f, acc, yp);
    else
      scale_plane(hw, si, so, xp, f, acc, yp);
  }
}

// ---- channel copies ------------------------------------------------------------------

// dst channels [d0, d0 + len) (dst has dc) = src channels [s0, s0 + len) (src has sc), image by image.
// Work goes by block of dst; within one, a run of channels ends where the source's block does. When
// the range ends dst's channels, an assigned dst's padding lanes are written as 0 too.
static void copy_channels(int n, int hw, const float *src, int sc, int s0, KOut dst, int dc, int d0, int len) {
  int first = d0 / KB, nblk = (d0 + len - 1) / KB - first + 1, ss = sc == 1 ? 1 : KB;
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)nblk * (size_t)hw * KB >= PAR_MIN)
  for (int ib = 0; ib < n * nblk; ib++) {
    int i = ib / nblk, bk = first + ib % nblk, ds;
    bool acc;
    float *d = locate(dst, dc, hw, i, bk, &ds, &acc);
    int end = d0 + len < (bk + 1) * KB ? d0 + len : (bk + 1) * KB;
    for (int ch = d0 > bk * KB ? d0 : bk * KB, run; ch < end; ch += run) {
      int s = ch - d0 + s0, sl = sc == 1 ? 0 : s % KB, dl = ds == 1 ? 0 : ch % KB;
      run = KB - sl < end - ch ? KB - sl : end - ch;
      const float *sp =
          src + (sc == 1 ? (size_t)i * (size_t)hw
                         : ((size_t)i * (size_t)kb_blocks(sc) + (size_t)(s / KB)) * (size_t)hw * KB);
      for (int p = 0; p < hw; p++)
        for (int k = 0; k < run; k++) {
          float *o = d + (size_t)p * (size_t)ds + (size_t)(dl + k);
          float v = sp[(size_t)p * (size_t)ss + (size_t)(sl + k)];
          *o = acc ? *o + v : v;
        }
    }
    if (end == dc && ds == KB && !acc && dc % KB)
      for (int p = 0; p < hw; p++)
        for (int l = dc % KB; l < KB; l++)
          d[(size_t)p * KB + (size_t)l] = 0;
  }
}

void kp_concat_piece(int n, int hw, int c_from, int c_to, int offset, const float *x, float *y) {
  copy_channels(n, hw, x, c_from, 0, (KOut){.a = y}, c_to, offset, c_from);
}

void kp_split_piece(int n, int hw, int c_from, int c_to, int offset, const float *dy, KOut dx) {
  copy_channels(n, hw, dy, c_to, offset, dx, c_from, 0, c_from);
}
