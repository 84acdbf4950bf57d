// test_kern_ops.c: the fast layout, norm, pointwise, loss and optimizer
// kernels (kern.h) against the double-precision reference kernels (ref.h), on
// awkward shapes: 1 channel (plain), fewer than a block, a block and one more,
// several blocks; concatenations of two pieces, one of them plain; gradients
// assigned over garbage and added to known values. The references run on the
// same float inputs, in double, so the tolerances bound only the kernels'
// float arithmetic. Each is relative to the largest expected value of the
// array compared (the largest errors seen were about 10 times smaller):
//   0:      layout, relu, concat pieces (copies)
//   2^-23:  the rest of the elementwise ops and split pieces: one float rounding
//   1e-6:   sigmoid, tanh and their gradients, dropout (x / (1 - r) vs x * (1 / (1 - r))),
//           saved mean and invstd, running statistics, MSE and DSSIM gradients,
//           the optimizers' L2-added gradients
//   2e-6:   norm outputs, input gradients, dgamma, dbeta; optimizer weights and
//           states after 5 steps
//   4e-6:   gradients through the sigmoid of the loss kernels, whose y (1 - y)
//           comes from the rounded y (1 - y loses digits as y nears 1)
//   1e-12:  MSE, DSSIM and the metrics (double sums of float inputs), sum of squares
//   1e-7:   the sigmoid losses (of the rounded y)
// Finally every reduction runs with 1, 2 and 3 threads on tensors that are
// split among them, and must give the same bits.
#include "kern.h"
#include "ref.h"
#include "testutil.h"
#include "testwork.h"

#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>

// ---- random inputs and conversions ---------------------------------------------------

static uint64_t seed = 0x452821e638d01377u;

static double uniform(double lo, double hi) { return lo + (hi - lo) * test_uniform(&seed); }

static void *xalloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size);
  if (!p) {
    fputs("out of memory\n", stderr);
    exit(2);
  }
  return p;
}

static float *falloc(size_t count) { return xalloc(count, sizeof(float)); }
static double *dalloc(size_t count) { return xalloc(count, sizeof(double)); }

static float *nan_filled(size_t count) {
  float *p = falloc(count);
  for (size_t i = 0; i < count; i++)
    p[i] = NAN;
  return p;
}

// Random values that are floats, held as doubles: the kernels and the references read the same numbers.
static double *random_exact(size_t count, double lo, double hi) {
  double *p = dalloc(count);
  for (size_t i = 0; i < count; i++)
    p[i] = (float)uniform(lo, hi);
  return p;
}

static float *to_float(size_t count, const double *x) {
  float *f = falloc(count);
  for (size_t i = 0; i < count; i++)
    f[i] = (float)x[i];
  return f;
}

static double *to_double(size_t count, const float *x) {
  double *d = dalloc(count);
  for (size_t i = 0; i < count; i++)
    d[i] = x[i];
  return d;
}

// Canonical double [n][c][hw] -> a new blocked float tensor, and back.
static float *blocked_of(int n, int c, int hw, const double *x) {
  float *f = to_float((size_t)n * (size_t)c * (size_t)hw, x), *b = falloc(kb_elems(n, c, hw, 1));
  kb_to_blocked(n, c, hw, f, b);
  free(f);
  return b;
}

static double *canonical_of(int n, int c, int hw, const float *b) {
  size_t count = (size_t)n * (size_t)c * (size_t)hw;
  float *f = falloc(count);
  kb_from_blocked(n, c, hw, b, f);
  double *d = to_double(count, f);
  free(f);
  return d;
}

static bool padding_zero(int n, int c, int hw, const float *b) {
  if (c == 1)
    return true;
  for (size_t k = 0; k < kb_elems(n, c, hw, 1); k++)
    if ((int)(k / ((size_t)hw * KB) % (size_t)kb_blocks(c)) * KB + (int)(k % KB) >= c && b[k] != 0)
      return false;
  return true;
}

// Channels [c0, c1) of a canonical tensor of c channels, as a new tensor, and the reverse.
static double *channels(int n, int c, int hw, const double *x, int c0, int c1) {
  double *p = dalloc((size_t)n * (size_t)(c1 - c0) * (size_t)hw);
  for (int i = 0; i < n; i++)
    memcpy(p + (size_t)i * (size_t)(c1 - c0) * (size_t)hw, x + ((size_t)i * (size_t)c + (size_t)c0) * (size_t)hw,
           sizeof *p * (size_t)(c1 - c0) * (size_t)hw);
  return p;
}

static void set_channels(int n, int c, int hw, double *x, int c0, int c1, const double *p) {
  for (int i = 0; i < n; i++)
    memcpy(x + ((size_t)i * (size_t)c + (size_t)c0) * (size_t)hw, p + (size_t)i * (size_t)(c1 - c0) * (size_t)hw,
           sizeof *p * (size_t)(c1 - c0) * (size_t)hw);
}

// x as a kernel input: one blocked tensor (ca == 0) or the pieces [0, ca) and [ca, c).
static KIn kin_of(int n, int c, int hw, const double *x, int ca) {
  if (!ca)
    return (KIn){.a = blocked_of(n, c, hw, x)};
  double *a = channels(n, c, hw, x, 0, ca), *b = channels(n, c, hw, x, ca, c);
  KIn v = {.a = blocked_of(n, ca, hw, a), .b = blocked_of(n, c - ca, hw, b), .ca = ca};
  free(a);
  free(b);
  return v;
}

// A gradient output of one or two pieces: an assigned piece is filled with NaN, padding lanes
// included; an added piece holds random values, which *base (canonical) receives (0 elsewhere).
static KOut kout_make(int n, int c, int hw, int ca, bool acc_a, bool acc_b, double **base) {
  size_t count = (size_t)n * (size_t)c * (size_t)hw;
  *base = dalloc(count);
  int cs[2] = {ca ? ca : c, c - ca}, c0[2] = {0, ca};
  bool acc[2] = {acc_a, acc_b};
  float *piece[2] = {NULL, NULL};
  for (int k = 0; k < (ca ? 2 : 1); k++) {
    if (acc[k]) {
      double *v = random_exact((size_t)n * (size_t)cs[k] * (size_t)hw, -1, 1);
      set_channels(n, c, hw, *base, c0[k], c0[k] + cs[k], v);
      piece[k] = blocked_of(n, cs[k], hw, v);
      free(v);
    } else {
      piece[k] = nan_filled(kb_elems(n, cs[k], hw, 1));
    }
  }
  return (KOut){.a = piece[0], .b = piece[1], .ca = ca, .acc_a = acc_a, .acc_b = acc_b};
}

// The canonical tensor of a gradient output, and whether its pieces' padding lanes are 0.
static double *kout_read(int n, int c, int hw, KOut o, bool *padding_ok) {
  if (!o.b) {
    *padding_ok = padding_zero(n, c, hw, o.a);
    return canonical_of(n, c, hw, o.a);
  }
  double *x = dalloc((size_t)n * (size_t)c * (size_t)hw), *a = canonical_of(n, o.ca, hw, o.a),
         *b = canonical_of(n, c - o.ca, hw, o.b);
  set_channels(n, c, hw, x, 0, o.ca, a);
  set_channels(n, c, hw, x, o.ca, c, b);
  *padding_ok = padding_zero(n, o.ca, hw, o.a) && padding_zero(n, c - o.ca, hw, o.b);
  free(a);
  free(b);
  return x;
}

static void close_f(const char *what, size_t count, const float *got, const double *want, double tol) {
  double *g = to_double(count, got);
  close_arrays(what, count, g, want, tol);
  free(g);
}

// ---- layout ------------------------------------------------------------------------------

typedef struct Shape {
  int n, c, h, w;
} Shape;

static const Shape shapes[] = {{2, 1, 5, 7},  {1, 3, 5, 7},   {3, 16, 12, 12},
                               {2, 17, 5, 7}, {3, 40, 5, 7}, {2, 40, 16, 16}};
enum { NSHAPES = sizeof shapes / sizeof *shapes };

// The second piece's first channel of a two-piece version of a shape, 0 for none.
static int split_of(Shape s) { return s.c < 17 ? 0 : s.c == 40 && s.h == 16 ? 32 : 16; }

static void test_layout(Shape s) {
  int hw = s.h * s.w;
  size_t count = (size_t)s.n * (size_t)s.c * (size_t)hw;
  double *x = random_exact(count, -1, 1);
  float *b = blocked_of(s.n, s.c, hw, x);
  double *back = canonical_of(s.n, s.c, hw, b);
  CHECK(!memcmp(back, x, sizeof *x * count), "layout round trip c=%d", s.c);
  CHECK(padding_zero(s.n, s.c, hw, b), "layout padding c=%d", s.c);
  bool where = true; // each value at [i][ch/16][p][ch%16] (plain for one channel)
  for (int i = 0; i < s.n; i++)
    for (int ch = 0; ch < s.c; ch++)
      for (int p = 0; p < hw; p++) {
        size_t at = s.c == 1 ? (size_t)i * (size_t)hw + (size_t)p
                             : (((size_t)i * (size_t)kb_blocks(s.c) + (size_t)(ch / KB)) * (size_t)hw + (size_t)p) * KB +
                                   (size_t)(ch % KB);
        where &= b[at] == (float)x[((size_t)i * (size_t)s.c + (size_t)ch) * (size_t)hw + (size_t)p];
      }
  CHECK(where, "layout positions c=%d", s.c);
  free(x);
  free(b);
  free(back);
}

// ---- batch norm and group norm --------------------------------------------------------------

// groups == 0: batch norm (training, backward and inference); else group norm.
static void test_norm(Shape s, int groups, int ca, bool relu, bool acc_a, bool acc_b) {
  int n = s.n, c = s.c, hw = s.h * s.w, nsets = groups ? n * groups : c;
  size_t count = (size_t)n * (size_t)c * (size_t)hw;
  char name[128];
  snprintf(name, sizeof name, "%s n=%d c=%d %dx%d ca=%d%s acc=%d%d", groups ? "gn" : "bn", n, c, s.h, s.w, ca,
           relu ? " relu" : "", acc_a, acc_b);
  const float eps = 1e-3f, momentum = 0.9f;
  double *x = random_exact(count, -1, 3), *gamma = random_exact((size_t)c, -1.5, 1.5),
         *beta = random_exact((size_t)c, -0.5, 0.5), *dy = random_exact(count, -1, 1);
  double *rmean = random_exact((size_t)c, -1, 1), *rvar = random_exact((size_t)c, 0.5, 2);
  float *gamma_f = to_float((size_t)c, gamma), *beta_f = to_float((size_t)c, beta);
  float *rmean_f = to_float((size_t)c, rmean), *rvar_f = to_float((size_t)c, rvar);
  KIn xin = kin_of(n, c, hw, x, ca);
  float *y = nan_filled(kb_elems(n, c, hw, 1)), *mean = falloc((size_t)nsets), *invstd = falloc((size_t)nsets);
  double *yr = dalloc(count), *mean_r = dalloc((size_t)nsets), *invstd_r = dalloc((size_t)nsets);
  if (groups) {
    kn_gn_fwd(n, c, hw, groups, eps, xin, gamma_f, beta_f, mean, invstd, relu, y, work_of(kn_work(n, c, hw, groups, ca > 0)));
    ref_gn_fwd(n, c, hw, groups, eps, x, gamma, beta, yr, mean_r, invstd_r);
  } else {
    kn_bn_train(n, c, hw, eps, momentum, xin, gamma_f, beta_f, rmean_f, rvar_f, mean, invstd, relu, y, work_of(kn_work(n, c, hw, 0, ca > 0)));
    ref_bn_fwd_train(n, c, hw, eps, momentum, x, gamma, beta, rmean, rvar, yr, mean_r, invstd_r);
  }
  if (relu)
    ref_relu_fwd(count, yr, yr);
  double *yc = canonical_of(n, c, hw, y);
  char what[192];
  snprintf(what, sizeof what, "%s: y", name);
  close_arrays(what, count, yc, yr, 2e-6);
  CHECK(padding_zero(n, c, hw, y), "%s: padding of y", name);
  snprintf(what, sizeof what, "%s: mean", name);
  close_f(what, (size_t)nsets, mean, mean_r, 1e-6);
  snprintf(what, sizeof what, "%s: invstd", name);
  close_f(what, (size_t)nsets, invstd, invstd_r, 1e-6);
  if (!groups) {
    snprintf(what, sizeof what, "%s: running mean", name);
    close_f(what, (size_t)c, rmean_f, rmean, 1e-6);
    snprintf(what, sizeof what, "%s: running var", name);
    close_f(what, (size_t)c, rvar_f, rvar, 1e-6);
  }

  // Backward from the saved statistics; the reference's dy is masked by the forward's own output, so
  // the kernel must recompute exactly that mask.
  double *base, *dym = dalloc(count), *dxr = dalloc(count), *dgr = dalloc((size_t)c), *dbr = dalloc((size_t)c);
  for (size_t k = 0; k < count; k++)
    dym[k] = relu && !(yc[k] > 0) ? 0 : dy[k];
  double *mean_k = to_double((size_t)nsets, mean), *invstd_k = to_double((size_t)nsets, invstd);
  float *dyb = blocked_of(n, c, hw, dy), *dgamma = falloc((size_t)c), *dbeta = falloc((size_t)c);
  KOut dx = kout_make(n, c, hw, ca, acc_a, acc_b, &base);
  if (groups) {
    kn_gn_bwd(n, c, hw, groups, xin, gamma_f, beta_f, mean, invstd, relu, dyb, dgamma, dbeta, dx, work_of(kn_work(n, c, hw, groups, ca > 0)));
    ref_gn_bwd(n, c, hw, groups, x, gamma, mean_k, invstd_k, dym, dxr, dgr, dbr);
  } else {
    kn_bn_bwd(n, c, hw, xin, gamma_f, beta_f, mean, invstd, relu, dyb, dgamma, dbeta, dx, work_of(kn_work(n, c, hw, 0, ca > 0)));
    ref_bn_bwd(n, c, hw, x, gamma, mean_k, invstd_k, dym, dxr, dgr, dbr);
  }
  bool padding_ok;
  double *dxc = kout_read(n, c, hw, dx, &padding_ok);
  for (size_t k = 0; k < count; k++)
    dxr[k] += base[k];
  snprintf(what, sizeof what, "%s: dx", name);
  close_arrays(what, count, dxc, dxr, 2e-6);
  CHECK(padding_ok, "%s: padding of dx", name);
  snprintf(what, sizeof what, "%s: dgamma", name);
  close_f(what, (size_t)c, dgamma, dgr, 2e-6);
  snprintf(what, sizeof what, "%s: dbeta", name);
  close_f(what, (size_t)c, dbeta, dbr, 2e-6);

  if (!groups) { // inference, with the running statistics just updated
    double *rm = to_double((size_t)c, rmean_f), *rv = to_double((size_t)c, rvar_f), *ye = dalloc(count);
    kn_bn_eval(n, c, hw, eps, xin, gamma_f, beta_f, rmean_f, rvar_f, relu, y, work_of(kn_work(n, c, hw, 0, ca > 0)));
    ref_bn_fwd_eval(n, c, hw, eps, x, gamma, beta, rm, rv, ye);
    if (relu)
      ref_relu_fwd(count, ye, ye);
    double *yec = canonical_of(n, c, hw, y);
    snprintf(what, sizeof what, "%s: eval y", name);
    close_arrays(what, count, yec, ye, 2e-6);
    CHECK(padding_zero(n, c, hw, y), "%s: padding of eval y", name);
    free(rm);
    free(rv);
    free(ye);
    free(yec);
  }
  void *blocks[] = {x,     gamma,    beta,      dy,   rmean,  rvar,    gamma_f, beta_f, rmean_f, rvar_f,
                    (void *)xin.a, (void *)xin.b, y,    mean, invstd, yr,      mean_r,  invstd_r, yc,    base,
                    dym,   dxr,      dgr,       dbr,  mean_k, invstd_k, dyb,    dgamma, dbeta,   dx.a,
                    dx.b,  dxc};
  for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
    free(blocks[k]);
}

static int groups_of(int c) { return c == 16 || c == 40 ? 4 : c == 3 ? 3 : 1; }

// y = scale x + shift per channel, in double: a convolution's prologue as the reference sees it.
static double *affine_of(int n, int c, int hw, const double *x, const float *scale, const float *shift) {
  size_t count = (size_t)n * (size_t)c * (size_t)hw;
  double *y = dalloc(count);
  for (size_t k = 0; k < count; k++) {
    int ch = (int)(k / (size_t)hw % (size_t)c);
    y[k] = (double)scale[ch] * x[k] + shift[ch];
  }
  return y;
}

// The statistics behind a fused batch norm: kn_bn_stats (from the tensor, of one or two pieces), and
// kn_bn_from_sums (from per-row sums laid out as a convolution's epilogue leaves them, NaN in the padding
// channels, which it must not read) against the reference's training forward, whose y their prologues
// must reproduce; kn_bn_stats must match kn_bn_train bit for bit. Then kn_bn_eval_coeffs against the
// reference's inference.
static void test_bn_fused(Shape s, int ca) {
  int n = s.n, c = s.c, hw = s.h * s.w, width = KB * kb_blocks(c);
  size_t count = (size_t)n * (size_t)c * (size_t)hw;
  char name[96];
  snprintf(name, sizeof name, "fused bn n=%d c=%d %dx%d ca=%d", n, c, s.h, s.w, ca);
  const float eps = 1e-3f, momentum = 0.9f;
  double *x = random_exact(count, -1, 3), *gamma = random_exact((size_t)c, -1.5, 1.5),
         *beta = random_exact((size_t)c, -0.5, 0.5), *rmean = random_exact((size_t)c, -1, 1),
         *rvar = random_exact((size_t)c, 0.5, 2);
  double *yr = dalloc(count), *mean_r = dalloc((size_t)c), *invstd_r = dalloc((size_t)c);
  float *gamma_f = to_float((size_t)c, gamma), *beta_f = to_float((size_t)c, beta);
  KIn xin = kin_of(n, c, hw, x, ca);
  // outputs [run][rm, rv, mean, invstd, scale, shift][c]: kn_bn_stats, kn_bn_from_sums, kn_bn_train
  float *out = falloc(3 * 6 * (size_t)c), *y = falloc(kb_elems(n, c, hw, 1));
  for (int run = 0; run < 3; run++)
    for (int ch = 0; ch < c; ch++)
      out[(run * 6 + 0) * c + ch] = (float)rmean[ch], out[(run * 6 + 1) * c + ch] = (float)rvar[ch];
  ref_bn_fwd_train(n, c, hw, eps, momentum, x, gamma, beta, rmean, rvar, yr, mean_r, invstd_r);

  double *stats = dalloc((size_t)n * (size_t)s.h * 2 * (size_t)width);
  for (int i = 0; i < n; i++)
    for (int r = 0; r < s.h; r++)
      for (int ch = 0; ch < width; ch++) {
        double *at = stats + ((size_t)i * (size_t)s.h + (size_t)r) * 2 * (size_t)width + ch;
        at[0] = at[width] = ch < c ? 0 : NAN;
        for (int j = 0; ch < c && j < s.w; j++) {
          double v = x[((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw + (size_t)r * (size_t)s.w + (size_t)j];
          at[0] += v, at[width] += v * v;
        }
      }
  float *o[3][6];
  for (int run = 0; run < 3; run++)
    for (int k = 0; k < 6; k++)
      o[run][k] = out + (size_t)(run * 6 + k) * (size_t)c;
  kn_bn_stats(n, c, hw, eps, momentum, xin, gamma_f, beta_f, o[0][0], o[0][1], o[0][2], o[0][3], o[0][4], o[0][5], work_of(kn_work(n, c, hw, 0, ca > 0)));
  kn_bn_from_sums(c, n * s.h, (int64_t)n * hw, stats, eps, momentum, gamma_f, beta_f, o[1][0], o[1][1], o[1][2],
                  o[1][3], o[1][4], o[1][5], work_of(kn_work(0, c, 0, 0, false)));
  kn_bn_train(n, c, hw, eps, momentum, xin, gamma_f, beta_f, o[2][0], o[2][1], o[2][2], o[2][3], false, y, work_of(kn_work(n, c, hw, 0, ca > 0)));
  CHECK(!memcmp(o[0][0], o[2][0], 4 * (size_t)c * sizeof(float)), "%s: kn_bn_stats differs from kn_bn_train", name);
  static const char *runs[] = {"stats", "from sums"}, *outs[] = {"running mean", "running var", "mean", "invstd"};
  const double *want[] = {rmean, rvar, mean_r, invstd_r};
  char what[192];
  for (int run = 0; run < 2; run++) {
    for (int k = 0; k < 4; k++) {
      snprintf(what, sizeof what, "%s %s: %s", name, runs[run], outs[k]);
      close_f(what, (size_t)c, o[run][k], want[k], 1e-6);
    }
    double *ya = affine_of(n, c, hw, x, o[run][4], o[run][5]);
    snprintf(what, sizeof what, "%s %s: prologue", name, runs[run]);
    close_arrays(what, count, ya, yr, 2e-6);
    free(ya);
  }

  // Inference, from the running statistics just updated.
  double *rm = to_double((size_t)c, o[0][0]), *rv = to_double((size_t)c, o[0][1]), *ye = dalloc(count);
  kn_bn_eval_coeffs(c, eps, gamma_f, beta_f, o[0][0], o[0][1], o[2][4], o[2][5]);
  ref_bn_fwd_eval(n, c, hw, eps, x, gamma, beta, rm, rv, ye);
  double *ya = affine_of(n, c, hw, x, o[2][4], o[2][5]);
  snprintf(what, sizeof what, "%s eval coeffs: prologue", name);
  close_arrays(what, count, ya, ye, 2e-6);
  void *blocks[] = {x,   gamma,   beta, rmean, rvar, yr, mean_r, invstd_r, gamma_f, beta_f, (void *)xin.a,
                    (void *)xin.b, out,  y,     stats, rm, rv,     ye,       ya};
  for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
    free(blocks[k]);
}

static void test_norms(void) {
  for (int k = 0; k < NSHAPES; k++)
    for (int relu = 0; relu < 2; relu++) {
      Shape s = shapes[k];
      int ca = split_of(s);
      // single and two-piece inputs; assigned and added gradients, mixed across pieces
      for (int g = 0; g < 2; g++) {
        int groups = g ? groups_of(s.c) : 0;
        test_norm(s, groups, 0, relu, relu, false);
        if (ca)
          test_norm(s, groups, ca, relu, !relu, relu);
      }
    }
  for (int k = 0; k < NSHAPES; k++) {
    test_bn_fused(shapes[k], 0);
    if (split_of(shapes[k]))
      test_bn_fused(shapes[k], split_of(shapes[k]));
  }
}

// ---- pointwise ----------------------------------------------------------------------------

// An elementwise kernel against its reference, on values away from the kinks at 0.
static void test_elementwise(void) {
  const size_t count = 1000 + 13;
  double *x = random_exact(count, -3, 3), *x2 = random_exact(count, -3, 3), *dy = random_exact(count, -1, 1);
  double *want = dalloc(count), *base;
  float *xf = to_float(count, x), *x2f = to_float(count, x2), *dyf = to_float(count, dy), *y = falloc(count);
  const float alpha = 0.2f;

  kp_relu(count, xf, y);
  ref_relu_fwd(count, x, want);
  close_f("relu", count, y, want, 0);
  kp_leaky_relu(count, alpha, xf, y);
  ref_leaky_relu_fwd(count, alpha, x, want);
  close_f("leaky relu", count, y, want, 0x1p-23);
  kp_sigmoid(count, xf, y);
  ref_sigmoid_fwd(count, x, want);
  close_f("sigmoid", count, y, want, 1e-6);
  kp_tanh(count, xf, y);
  ref_tanh_fwd(count, x, want);
  close_f("tanh", count, y, want, 1e-6);
  kp_add(count, xf, x2f, false, y);
  ref_add_fwd(count, x, x2, want);
  close_f("add", count, y, want, 0x1p-23);
  kp_add(count, xf, x2f, true, y);
  ref_relu_fwd(count, want, want);
  close_f("add relu", count, y, want, 0x1p-23);

  // The backwards, each assigning and adding. relu's mask comes from its output, leaky relu's from the input.
  double *yr = dalloc(count), *ys = dalloc(count), *yt = dalloc(count);
  ref_relu_fwd(count, x, yr);
  ref_sigmoid_fwd(count, x, ys);
  ref_tanh_fwd(count, x, yt);
  float *yrf = to_float(count, yr), *ysf = to_float(count, ys), *ytf = to_float(count, yt);
  double *ysd = to_double(count, ysf), *ytd = to_double(count, ytf); // the kernels' backwards read the rounded output
  for (int acc = 0; acc < 2; acc++) {
    for (int op = 0; op < 5; op++) {
      KOut dx = kout_make((int)count, 1, 1, 0, acc, false, &base);
      static const char *names[] = {"relu bwd", "leaky relu bwd", "sigmoid bwd", "tanh bwd", "copy"};
      switch (op) {
      case 0:
        kp_relu_bwd(count, yrf, dyf, dx);
        ref_relu_bwd(count, yr, dy, want);
        break;
      case 1:
        kp_leaky_relu_bwd(count, alpha, xf, dyf, dx);
        ref_leaky_relu_bwd(count, alpha, x, dy, want);
        break;
      case 2:
        kp_sigmoid_bwd(count, ysf, dyf, dx);
        ref_sigmoid_bwd(count, ysd, dy, want);
        break;
      case 3:
        kp_tanh_bwd(count, ytf, dyf, dx);
        ref_tanh_bwd(count, ytd, dy, want);
        break;
      default:
        kp_copy(count, dyf, dx);
        memcpy(want, dy, sizeof *dy * count);
      }
      for (size_t k = 0; k < count; k++)
        want[k] += base[k];
      char what[64];
      snprintf(what, sizeof what, "%s acc=%d", names[op], acc);
      close_f(what, count, dx.a, want, op == 2 || op == 3 ? 1e-6 : 0x1p-23);
      free(dx.a);
      free(base);
    }
  }
  void *blocks[] = {x, x2, dy, want, xf, x2f, dyf, y, yr, ys, yt, yrf, ysf, ytf, ysd, ytd};
  for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
    free(blocks[k]);
}

static void test_dropout(Shape s, bool acc_a, bool acc_b) {
  int n = s.n, c = s.c, hw = s.h * s.w, ca = split_of(s);
  size_t count = (size_t)n * (size_t)c * (size_t)hw;
  const float rate = 0.3f;
  uint8_t *keep = xalloc((size_t)n * (size_t)c, 1);
  for (int k = 0; k < n * c; k++)
    keep[k] = uniform(0, 1) > rate;
  double *x = random_exact(count, -1, 1), *want = dalloc(count), *base;
  float *xb = blocked_of(n, c, hw, x);
  KOut y = kout_make(n, c, hw, ca, acc_a, acc_b, &base);
  kp_dropout(n, c, hw, rate, keep, xb, y);
  ref_spatial_dropout(n, c, hw, rate, keep, x, want);
  for (size_t k = 0; k < count; k++)
    want[k] += base[k];
  bool padding_ok;
  double *got = kout_read(n, c, hw, y, &padding_ok);
  char what[96];
  snprintf(what, sizeof what, "dropout n=%d c=%d ca=%d acc=%d%d", n, c, ca, acc_a, acc_b);
  close_arrays(what, count, got, want, 1e-6);
  CHECK(padding_ok, "%s: padding", what);
  void *blocks[] = {keep, x, want, base, xb, y.a, y.b, got};
  for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
    free(blocks[k]);
}

// A piece of c_from channels at `offset` of a tensor of c_to: concat writes only its channels (and
// the padding lanes when it ends the tensor); split reads them back into a gradient of one or two
// pieces.
static void test_pieces(int n, int hw, int c_from, int c_to, int offset, bool acc_a, bool acc_b) {
  size_t cf = (size_t)n * (size_t)c_from * (size_t)hw, ct = (size_t)n * (size_t)c_to * (size_t)hw;
  double *x = random_exact(cf, -1, 1), *y0 = random_exact(ct, -1, 1);
  float *xb = blocked_of(n, c_from, hw, x), *y = blocked_of(n, c_to, hw, y0);
  bool ends = offset + c_from == c_to;
  if (ends) // garbage in the padding lanes, which concat must clear
    for (size_t k = 0; k < kb_elems(n, c_to, hw, 1); k++)
      if (c_to > 1 && (int)(k / ((size_t)hw * KB) % (size_t)kb_blocks(c_to)) * KB + (int)(k % KB) >= c_to)
        y[k] = NAN;
  kp_concat_piece(n, hw, c_from, c_to, offset, xb, y);
  set_channels(n, c_to, hw, y0, offset, offset + c_from, x);
  float *want = blocked_of(n, c_to, hw, y0);
  CHECK(!memcmp(y, want, sizeof *y * kb_elems(n, c_to, hw, 1)), "concat piece c=%d into %d at %d", c_from, c_to,
        offset);

  int ca = c_from >= 17 ? 16 : 0;
  double *base;
  KOut dx = kout_make(n, c_from, hw, ca, acc_a, acc_b, &base);
  kp_split_piece(n, hw, c_from, c_to, offset, y, dx);
  bool padding_ok;
  double *got = kout_read(n, c_from, hw, dx, &padding_ok);
  for (size_t k = 0; k < cf; k++)
    base[k] += x[k];
  char what[96];
  snprintf(what, sizeof what, "split piece c=%d of %d at %d ca=%d acc=%d%d", c_from, c_to, offset, ca, acc_a, acc_b);
  close_arrays(what, cf, got, base, 0x1p-23);
  CHECK(padding_ok, "%s: padding", what);
  void *blocks[] = {x, y0, xb, y, want, base, dx.a, dx.b, got};
  for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
    free(blocks[k]);
}

static void test_pointwise(void) {
  test_elementwise();
  for (int k = 0; k < NSHAPES; k++) {
    test_dropout(shapes[k], false, true);
    test_dropout(shapes[k], true, false);
  }
  // {c_from, c_to, offset}: across a block boundary, ending the tensor, plain pieces, several blocks.
  static const int cases[][3] = {{3, 40, 13}, {17, 40, 5}, {20, 40, 20}, {1, 17, 16}, {1, 3, 1},
                                 {3, 3, 0},   {35, 40, 5}, {1, 1, 0},   {40, 43, 3}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
    for (int acc = 0; acc < 2; acc++)
      test_pieces(2, 35, cases[k][0], cases[k][1], cases[k][2], acc, !acc);
}

// ---- losses and metrics -----------------------------------------------------------------

static void test_mse(int n, int hw) {
  size_t count = (size_t)n * (size_t)hw;
  double *y = random_exact(count, 0, 1), *t = random_exact(count, 0, 1), *z = random_exact(count, -4, 4);
  double *want = dalloc(count), *ys = dalloc(count), *dys = dalloc(count);
  float *yf = to_float(count, y), *tf = to_float(count, t), *zf = to_float(count, z);
  float *dy = nan_filled(count), *yo = nan_filled(count);
  char what[64];

  double loss = kl_mse(n, hw, yf, tf, dy, work_of(kl_loss_work(n, 1, hw))), loss_r = ref_mse(count, y, t, want);
  snprintf(what, sizeof what, "mse n=%d hw=%d", n, hw);
  close_arrays(what, 1, &loss, &loss_r, 1e-12);
  snprintf(what, sizeof what, "mse n=%d hw=%d: dy", n, hw);
  close_f(what, count, dy, want, 1e-6);
  CHECK(kl_mse(n, hw, yf, tf, NULL, work_of(kl_loss_work(n, 1, hw))) == loss, "mse n=%d hw=%d without dy", n, hw);

  loss = kl_mse_sigmoid(n, hw, zf, tf, yo, dy, work_of(kl_loss_work(n, 1, hw)));
  ref_sigmoid_fwd(count, z, ys);
  loss_r = ref_mse(count, ys, t, dys);
  ref_sigmoid_bwd(count, ys, dys, want);
  snprintf(what, sizeof what, "mse sigmoid n=%d hw=%d", n, hw);
  close_arrays(what, 1, &loss, &loss_r, 1e-7);
  snprintf(what, sizeof what, "mse sigmoid n=%d hw=%d: y", n, hw);
  close_f(what, count, yo, ys, 1e-6);
  snprintf(what, sizeof what, "mse sigmoid n=%d hw=%d: dz", n, hw);
  close_f(what, count, dy, want, 4e-6);
  void *blocks[] = {y, t, z, want, ys, dys, yf, tf, zf, dy, yo};
  for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
    free(blocks[k]);
}

// Smooth images (a random blend of waves plus noise): SSIM well inside (-1, 1).
static double *random_image(int n, int h, int w) {
  double *p = dalloc((size_t)n * (size_t)h * (size_t)w);
  for (int i = 0; i < n; i++) {
    double fy = uniform(0.1, 0.6), fx = uniform(0.1, 0.6), ph = uniform(0, 6);
    for (int r = 0; r < h; r++)
      for (int c = 0; c < w; c++)
        p[((size_t)i * (size_t)h + (size_t)r) * (size_t)w + (size_t)c] =
            (float)(0.5 + 0.3 * sin(fy * r + fx * c + ph) + uniform(-0.15, 0.15));
  }
  return p;
}

static void test_dssim(int n, int h, int w) {
  size_t count = (size_t)n * (size_t)h * (size_t)w, hw = (size_t)h * (size_t)w;
  double *y = random_image(n, h, w), *t = random_image(n, h, w), *z = random_exact(count, -3, 3);
  double *want = dalloc(count), *ys = dalloc(count), *dys = dalloc(count);
  float *yf = to_float(count, y), *tf = to_float(count, t), *zf = to_float(count, z);
  float *dy = nan_filled(count), *yo = nan_filled(count);
  char what[64];

  double loss = kl_dssim(n, h, w, yf, tf, dy, work_of(kl_loss_work(n, h, w))), loss_r = ref_dssim(n, h, w, y, t, want);
  snprintf(what, sizeof what, "dssim n=%d %dx%d", n, h, w);
  close_arrays(what, 1, &loss, &loss_r, 1e-12);
  snprintf(what, sizeof what, "dssim n=%d %dx%d: dy", n, h, w);
  close_f(what, count, dy, want, 1e-6);
  CHECK(kl_dssim(n, h, w, yf, tf, NULL, work_of(kl_loss_work(n, h, w))) == loss, "dssim n=%d %dx%d without dy", n, h, w);

  loss = kl_dssim_sigmoid(n, h, w, zf, tf, yo, dy, work_of(kl_loss_work(n, h, w)));
  ref_sigmoid_fwd(count, z, ys);
  loss_r = ref_dssim(n, h, w, ys, t, dys);
  ref_sigmoid_bwd(count, ys, dys, want);
  snprintf(what, sizeof what, "dssim sigmoid n=%d %dx%d", n, h, w);
  close_arrays(what, 1, &loss, &loss_r, 1e-7);
  snprintf(what, sizeof what, "dssim sigmoid n=%d %dx%d: y", n, h, w);
  close_f(what, count, yo, ys, 1e-6);
  snprintf(what, sizeof what, "dssim sigmoid n=%d %dx%d: dz", n, h, w);
  close_f(what, count, dy, want, 4e-6);

  // Metrics per image, against the reference on the rounded sigmoid outputs.
  double *mse = dalloc((size_t)n), *dssim = dalloc((size_t)n), *psnr = dalloc((size_t)n);
  double *mse_r = dalloc((size_t)n), *dssim_r = dalloc((size_t)n), *psnr_r = dalloc((size_t)n);
  double *yod = to_double(count, yo);
  kl_metrics(n, h, w, yo, tf, mse, dssim, psnr);
  for (int i = 0; i < n; i++) {
    mse_r[i] = ref_mse(hw, yod + (size_t)i * hw, t + (size_t)i * hw, NULL);
    dssim_r[i] = (1 - ref_ssim(h, w, yod + (size_t)i * hw, t + (size_t)i * hw, NULL)) / 2;
    psnr_r[i] = ref_psnr(hw, yod + (size_t)i * hw, t + (size_t)i * hw);
  }
  snprintf(what, sizeof what, "metrics n=%d %dx%d: mse", n, h, w);
  close_arrays(what, (size_t)n, mse, mse_r, 1e-12);
  snprintf(what, sizeof what, "metrics n=%d %dx%d: dssim", n, h, w);
  close_arrays(what, (size_t)n, dssim, dssim_r, 1e-12);
  snprintf(what, sizeof what, "metrics n=%d %dx%d: psnr", n, h, w);
  close_arrays(what, (size_t)n, psnr, psnr_r, 1e-12);
  void *blocks[] = {y,   t,     z,    want,  ys,      dys,    yf,     tf,  zf, dy,
                    yo,  mse,   dssim, psnr, mse_r,   dssim_r, psnr_r, yod};
  for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
    free(blocks[k]);
}

static void test_losses(void) {
  test_mse(1, 35);
  test_mse(2, 144);
  test_mse(3, 1000);
  test_dssim(1, 11, 13);
  test_dssim(2, 12, 12);
  test_dssim(3, 11, 11);
  test_dssim(2, 40, 29);
}

// ---- optimizers ---------------------------------------------------------------------------

// Five steps of each optimizer with L2 on fresh gradients; w, the state and the reported (L2-added)
// gradient against the reference fed g + 2 l2 w.
static void test_optim(void) {
  const size_t count = 1003;
  const float l2 = 1e-2f;
  for (int op = 0; op < 3; op++) {
    double *w = random_exact(count, -1, 1), *s1 = dalloc(count), *s2 = dalloc(count), *g = dalloc(count);
    float *wf = to_float(count, w), *s1f = falloc(count), *s2f = falloc(count), *gf = falloc(count);
    for (int step = 1; step <= 5; step++) {
      for (size_t k = 0; k < count; k++) {
        gf[k] = (float)uniform(-1, 1);
        g[k] = gf[k] + 2 * (double)l2 * w[k];
      }
      switch (op) {
      case 0:
        ko_rmsprop(count, 1e-2f, 0.9f, 1e-7f, l2, wf, gf, s1f);
        ref_rmsprop(count, 1e-2f, 0.9f, 1e-7f, w, g, s1);
        break;
      case 1:
        ko_adam(count, 1e-2f, 0.9f, 0.999f, 1e-7f, step, l2, wf, gf, s1f, s2f);
        ref_adam(count, 1e-2f, 0.9f, 0.999f, 1e-7f, step, w, g, s1, s2);
        break;
      default:
        ko_sgd(count, 1e-2f, 0.9f, l2, wf, gf, s1f);
        ref_sgd(count, 1e-2f, 0.9f, w, g, s1);
      }
    }
    static const char *names[] = {"rmsprop", "adam", "sgd"};
    char what[64];
    snprintf(what, sizeof what, "%s: w", names[op]);
    close_f(what, count, wf, w, 2e-6);
    snprintf(what, sizeof what, "%s: state", names[op]);
    close_f(what, count, s1f, s1, 2e-6);
    if (op == 1) {
      snprintf(what, sizeof what, "%s: second state", names[op]);
      close_f(what, count, s2f, s2, 2e-6);
    }
    snprintf(what, sizeof what, "%s: gradient with l2", names[op]);
    close_f(what, count, gf, g, 1e-6);
    void *blocks[] = {w, s1, s2, g, wf, s1f, s2f, gf};
    for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
      free(blocks[k]);
  }

  double *w = random_exact(count, -1, 1), *g = random_exact(count, -1, 1), sumsq = 0;
  float *wf = to_float(count, w), *gf = to_float(count, g);
  ko_l2_grad(count, l2, wf, gf);
  for (size_t k = 0; k < count; k++) {
    g[k] += 2 * (double)l2 * w[k];
    sumsq += w[k] * w[k];
  }
  close_f("l2 grad", count, gf, g, 1e-6);
  double got = ko_sumsq(count, wf, work_of(ko_sumsq_work(count)));
  close_arrays("sumsq", 1, &got, &sumsq, 1e-12);
  got = ko_sumsq(0, wf, work_of(ko_sumsq_work(0)));
  CHECK(got == 0, "sumsq of nothing");
  void *blocks[] = {w, g, wf, gf};
  for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
    free(blocks[k]);
}

// ---- determinism ------------------------------------------------------------------------

// Every output of every reduction, run with `threads` threads: floats in f (taken in turn), doubles in d.
typedef struct Run {
  float *f;
  double d[32];
} Run;

enum { DN = 4, DC = 64, DH = 64, DW = 64, DGROUPS = 8 };
#define DBIG (kb_elems(DN, DC, DH * DW, 1))
#define DSMALL ((size_t)DN * DH * DW)
#define DFLOATS (16 * (size_t)DC + 2 * (size_t)DN * DGROUPS + 4 * DBIG + 6 * DSMALL)

static float *take(float **next, size_t count) {
  float *p = *next;
  *next += count;
  return p;
}

static void reductions(int threads, const float *x, const float *dy, const float *img, const float *tgt, Run *r) {
  omp_set_num_threads(threads);
  float gamma[DC], beta[DC], *next = r->f;
  for (int ch = 0; ch < DC; ch++) {
    gamma[ch] = 1 + 0.01f * (float)ch;
    beta[ch] = 0.1f - 0.005f * (float)ch;
  }
  float *rm = take(&next, DC), *rv = take(&next, DC);
  for (int ch = 0; ch < DC; ch++) {
    rm[ch] = 0;
    rv[ch] = 1;
  }
  KIn in = {.a = x};
  float *mean = take(&next, DC), *invstd = take(&next, DC), *y = take(&next, DBIG);
  kn_bn_train(DN, DC, DH * DW, 1e-3f, 0.9f, in, gamma, beta, rm, rv, mean, invstd, true, y, work_of(kn_work(DN, DC, DH * DW, 0, false)));
  float *st = take(&next, 6 * DC); // kn_bn_stats: running mean and var, mean, invstd, scale, shift
  for (int ch = 0; ch < DC; ch++) {
    st[ch] = 0;
    st[DC + ch] = 1;
  }
  kn_bn_stats(DN, DC, DH * DW, 1e-3f, 0.9f, in, gamma, beta, st, st + DC, st + 2 * DC, st + 3 * DC, st + 4 * DC,
              st + 5 * DC, work_of(kn_work(DN, DC, DH * DW, 0, false)));
  float *dg = take(&next, DC), *db = take(&next, DC), *dx = take(&next, DBIG);
  kn_bn_bwd(DN, DC, DH * DW, in, gamma, beta, mean, invstd, true, dy, dg, db, (KOut){.a = dx}, work_of(kn_work(DN, DC, DH * DW, 0, false)));
  float *gmean = take(&next, DN * DGROUPS), *ginvstd = take(&next, DN * DGROUPS), *gy = take(&next, DBIG);
  kn_gn_fwd(DN, DC, DH * DW, DGROUPS, 1e-3f, in, gamma, beta, gmean, ginvstd, false, gy, work_of(kn_work(DN, DC, DH * DW, DGROUPS, false)));
  float *gdg = take(&next, DC), *gdb = take(&next, DC), *gdx = take(&next, DBIG);
  kn_gn_bwd(DN, DC, DH * DW, DGROUPS, in, gamma, beta, gmean, ginvstd, false, dy, gdg, gdb,
            (KOut){.a = gdx}, work_of(kn_work(DN, DC, DH * DW, DGROUPS, false)));
  float *ys = take(&next, 2 * DSMALL), *dz = take(&next, 4 * DSMALL);
  r->d[0] = kl_mse(DN, DH * DW, img, tgt, dz, work_of(kl_loss_work(DN, 1, DH * DW)));
  r->d[1] = kl_mse_sigmoid(DN, DH * DW, img, tgt, ys, dz + DSMALL, work_of(kl_loss_work(DN, 1, DH * DW)));
  r->d[2] = kl_dssim(DN, DH, DW, img, tgt, dz + 2 * DSMALL, work_of(kl_loss_work(DN, DH, DW)));
  r->d[3] = kl_dssim_sigmoid(DN, DH, DW, img, tgt, ys + DSMALL, dz + 3 * DSMALL, work_of(kl_loss_work(DN, DH, DW)));
  kl_metrics(DN, DH, DW, img, tgt, r->d + 4, r->d + 4 + DN, r->d + 4 + 2 * DN);
  r->d[4 + 3 * DN] = ko_sumsq(DBIG, x, work_of(ko_sumsq_work(DBIG)));
}

static void test_determinism(void) {
  double *xd = random_exact((size_t)DN * DC * DH * DW, -1, 3), *dyd = random_exact((size_t)DN * DC * DH * DW, -1, 1);
  float *x = blocked_of(DN, DC, DH * DW, xd), *dy = blocked_of(DN, DC, DH * DW, dyd);
  double *imgd = random_image(DN, DH, DW), *tgtd = random_image(DN, DH, DW);
  float *img = to_float(DSMALL, imgd), *tgt = to_float(DSMALL, tgtd);
  Run runs[3];
  for (int k = 0; k < 3; k++) {
    runs[k].f = nan_filled(DFLOATS);
    memset(runs[k].d, 0, sizeof runs[k].d);
    reductions(k + 1, x, dy, img, tgt, &runs[k]);
  }
  for (int k = 1; k < 3; k++) {
    CHECK(!memcmp(runs[k].f, runs[0].f, sizeof(float) * DFLOATS), "determinism: float outputs, 1 vs %d threads",
          k + 1);
    CHECK(!memcmp(runs[k].d, runs[0].d, sizeof runs[0].d), "determinism: double outputs, 1 vs %d threads", k + 1);
  }
  for (int k = 0; k < 3; k++)
    free(runs[k].f);
  void *blocks[] = {xd, dyd, x, dy, imgd, tgtd, img, tgt};
  for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++)
    free(blocks[k]);
}

int main(void) {
  make_dir("kern_ops");
  for (int k = 0; k < NSHAPES; k++)
    test_layout(shapes[k]);
  test_norms();
  test_pointwise();
  test_losses();
  test_optim();
  test_determinism();
  return finish();
}
