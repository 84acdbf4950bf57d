// ops_test.c: the CUDA back end's norm, pointwise and training ops
// (runtime/cuda/cu_norm.cuh, cu_pointwise.cuh, cu_train.cuh) under the emulator,
// against the C back end's kernels (kern.h, caec_update, rng_dropout_mask) on
// random data: 1 channel (plain), fewer than a block, one and several blocks;
// odd and even planes, planes of several chunks; two-piece inputs and outputs
// (one piece plain); gradients assigned over NaN and added to random values.
// Expected:
//   the same bits: elementwise ops (the same formula on the same floats:
//     activations, add, copies, dropout and its mask, concat and split pieces,
//     bn inference and its coefficients, optimizer updates), the row sums
//     (each summed in kern_conv.c's order), the loss's y and gradient (the
//     window's sums in kern_loss.c's order);
//   1e-5 relative to the largest expected value: the norms' statistics,
//     outputs and gradients (sums in another order, then rounded to float);
//   1e-12 relative: the losses and sums of squares (double sums of floats in
//     another order).
// Every op with a reduction also runs on 1 and on 2 host threads from the same
// start and must give the same bits; padding lanes must be exactly 0.
#include "cu.h"
#include "cu_norm.cuh"
#include "cu_pointwise.cuh"
#include "cu_train.cuh"
#include "kern.h"
#include "rng.h"
#include "testutil.h"
#include "testwork.h"
#include "trainer.h"

#include <math.h>
#include <omp.h>

// ---- data ----------------------------------------------------------------------------------------

static uint64_t seed = 0x243f6a8885a308d3u;

static double uniform(double lo, double hi) { return lo + (hi - lo) * test_uniform(&seed); }

static void *xalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    fputs("out of memory\n", stderr);
    exit(2);
  }
  return p;
}

static void *copy_of(const void *p, size_t bytes) { return memcpy(xalloc(bytes), p, bytes); }

static float *randoms(size_t count, double lo, double hi) {
  float *p = xalloc(count * sizeof *p);
  for (size_t i = 0; i < count; i++)
    p[i] = (float)uniform(lo, hi);
  return p;
}

static float *nans(size_t count) {
  float *p = xalloc(count * sizeof *p);
  for (size_t i = 0; i < count; i++)
    p[i] = NAN;
  return p;
}

// Whether value k of a blocked tensor of c channels is a padding lane.
static bool padding(int c, int hw, size_t k) {
  return c > 1 && (int)(k / ((size_t)hw * KB) % (size_t)kb_blocks(c)) * KB + (int)(k % KB) >= c;
}

// A blocked tensor of random values in [lo, hi), padding lanes 0; a few values exactly 0.
static float *tensor(int n, int c, int hw, double lo, double hi) {
  size_t count = kb_elems(n, c, hw, 1);
  float *p = randoms(count, lo, hi);
  for (size_t k = 0; k < count; k++)
    if (padding(c, hw, k) || k % 37 == 5)
      p[k] = 0;
  return p;
}

static bool padding_zero(int n, int c, int hw, const float *p) {
  for (size_t k = 0; k < kb_elems(n, c, hw, 1); k++)
    if (padding(c, hw, k) && p[k] != 0)
      return false;
  return true;
}

// The channel counts of a tensor's pieces when split at ca (0: one piece).
static int piece_c(int c, int ca, int k) { return k == 0 ? (ca ? ca : c) : c - ca; }

static KIn kin(int n, int c, int hw, int ca) {
  KIn x = {0};
  x.a = tensor(n, piece_c(c, ca, 0), hw, -1, 3);
  if (ca) {
    x.b = tensor(n, piece_c(c, ca, 1), hw, -1, 3);
    x.ca = ca;
  }
  return x;
}

static void kin_free(KIn x) {
  free((void *)x.a);
  free((void *)x.b);
}

// An output of one or two pieces: an assigned piece NaN (padding lanes included), an added one random.
static KOut kout(int n, int c, int hw, int ca, bool acc_a, bool acc_b) {
  KOut o = {0};
  o.ca = ca;
  o.acc_a = acc_a;
  o.acc_b = acc_b;
  for (int k = 0; k < (ca ? 2 : 1); k++) {
    int pc = piece_c(c, ca, k);
    float *p = (k ? acc_b : acc_a) ? tensor(n, pc, hw, -1, 1) : nans(kb_elems(n, pc, hw, 1));
    *(k ? &o.b : &o.a) = p;
  }
  return o;
}

static size_t piece_bytes(int n, int c, int hw, int ca, int k) {
  return k && !ca ? 0 : kb_elems(n, piece_c(c, ca, k), hw, 1) * sizeof(float);
}

static KOut kout_copy(KOut o, int n, int c, int hw) {
  KOut d = o;
  d.a = copy_of(o.a, piece_bytes(n, c, hw, o.ca, 0));
  d.b = o.b ? copy_of(o.b, piece_bytes(n, c, hw, o.ca, 1)) : NULL;
  return d;
}

static void kout_free(KOut o) {
  free(o.a);
  free(o.b);
}

// ---- comparisons ---------------------------------------------------------------------------------

static void same(const char *what, const void *got, const void *want, size_t bytes) {
  CHECK(!memcmp(got, want, bytes), "%s: not the same bits", what);
}

static void same_kout(const char *what, KOut got, KOut want, int n, int c, int hw) {
  same(what, got.a, want.a, piece_bytes(n, c, hw, got.ca, 0));
  if (got.b)
    same(what, got.b, want.b, piece_bytes(n, c, hw, got.ca, 1));
}

static void close_f(const char *what, size_t count, const float *got, const float *want, double tol) {
  double *g = xalloc(count * sizeof *g), *w = xalloc(count * sizeof *w);
  for (size_t i = 0; i < count; i++)
    g[i] = got[i], w[i] = want[i];
  close_arrays(what, count, g, w, tol);
  free(g);
  free(w);
}

static void close_kout(const char *what, KOut got, KOut want, int n, int c, int hw, double tol) {
  close_f(what, piece_bytes(n, c, hw, got.ca, 0) / sizeof(float), got.a, want.a, tol);
  if (got.b)
    close_f(what, piece_bytes(n, c, hw, got.ca, 1) / sizeof(float), got.b, want.b, tol);
}

// ---- launches ---------------------------------------------------------------------------------------

static int stage; // the stage the kernels below run

// Every stage of the plan, with a workspace of garbage: an op may not rely on its contents.
static void launch(CuKernelFn *fn, const char *name, CuPlan plan) {
  CuArenas A;
  memset(&A, 0, sizeof A);
  A.work = xalloc((size_t)plan.work_bytes);
  memset(A.work, 0xa5, (size_t)plan.work_bytes);
  for (stage = 0; stage < plan.stages; stage++)
    cu_emu_launch(fn, name, plan.grid[stage], CU_THREADS, A);
  free(A.work);
}

// The memory an op writes.
typedef struct Out {
  void *p;
  size_t bytes;
} Out;

// Runs the op on 1 host thread, then on 2 from the same start, and requires the same bits; the
// outputs keep the second run's.
static void deterministic(const char *what, CuKernelFn *fn, CuPlan plan, const Out *outs, int nouts) {
  void *start[8], *one[8];
  for (int k = 0; k < nouts; k++)
    start[k] = copy_of(outs[k].p, outs[k].bytes);
  omp_set_num_threads(1);
  launch(fn, what, plan);
  for (int k = 0; k < nouts; k++) {
    one[k] = copy_of(outs[k].p, outs[k].bytes);
    memcpy(outs[k].p, start[k], outs[k].bytes);
  }
  omp_set_num_threads(2);
  launch(fn, what, plan);
  bool ok = true;
  for (int k = 0; k < nouts; k++) {
    ok &= !memcmp(one[k], outs[k].p, outs[k].bytes);
    free(start[k]);
    free(one[k]);
  }
  CHECK(ok, "%s: 1 and 2 host threads differ", what);
}

// ---- batch norm and group norm ----------------------------------------------------------------------

static struct {
  int n, c, hw, groups, parts;
  int64_t count;
  float eps, momentum;
  KIn x;
  const float *gamma, *beta, *dy;
  const double *stats;
  float *running_mean, *running_var, *mean, *invstd, *scale, *shift, *y, *dgamma, *dbeta;
  bool relu;
  KOut dx;
} N;

CU_KERNEL(k_bn_train) {
  cu_bn_train(stage, A.work, N.n, N.c, N.hw, N.eps, N.momentum, N.x, N.gamma, N.beta, N.running_mean, N.running_var,
              N.mean, N.invstd, N.relu, N.y);
}
CU_KERNEL(k_bn_stats) {
  cu_bn_stats(stage, A.work, N.n, N.c, N.hw, N.eps, N.momentum, N.x, N.gamma, N.beta, N.running_mean, N.running_var,
              N.mean, N.invstd, N.scale, N.shift);
}
CU_KERNEL(k_bn_eval) {
  (void)A;
  cu_bn_eval(N.n, N.c, N.hw, N.eps, N.x, N.gamma, N.beta, N.running_mean, N.running_var, N.relu, N.y);
}
CU_KERNEL(k_bn_eval_coeffs) {
  (void)A;
  cu_bn_eval_coeffs(N.c, N.eps, N.gamma, N.beta, N.running_mean, N.running_var, N.scale, N.shift);
}
CU_KERNEL(k_bn_bwd) {
  cu_bn_bwd(stage, A.work, N.n, N.c, N.hw, N.x, N.gamma, N.beta, N.mean, N.invstd, N.relu, N.dy, N.dgamma, N.dbeta,
            N.dx);
}
CU_KERNEL(k_gn_fwd) {
  cu_gn_fwd(stage, A.work, N.n, N.c, N.hw, N.groups, N.eps, N.x, N.gamma, N.beta, N.mean, N.invstd, N.relu, N.y);
}
CU_KERNEL(k_gn_bwd) {
  cu_gn_bwd(stage, A.work, N.n, N.c, N.hw, N.groups, N.x, N.gamma, N.beta, N.mean, N.invstd, N.relu, N.dy, N.dgamma,
            N.dbeta, N.dx);
}
CU_KERNEL(k_bn_from_sums) {
  (void)A;
  cu_bn_from_sums(N.c, N.parts, N.count, N.stats, N.eps, N.momentum, N.gamma, N.beta, N.running_mean, N.running_var,
                  N.mean, N.invstd, N.scale, N.shift);
}

#define OUT(p, count) ((Out){(p), (size_t)(count) * sizeof *(p)})

// groups == 0: batch norm (training, statistics, inference, backward); else group norm (forward,
// backward). x split at ca, dx at dca.
static void test_norm(int n, int c, int hw, int groups, int ca, int dca, bool relu, bool acc_a, bool acc_b) {
  char name[160], what[200];
  snprintf(name, sizeof name, "%s n=%d c=%d hw=%d ca=%d dca=%d%s acc=%d%d", groups ? "gn" : "bn", n, c, hw, ca, dca,
           relu ? " relu" : "", acc_a, acc_b);
  const int sets = groups ? n * groups : c;
  const size_t count = kb_elems(n, c, hw, 1);
  float *gamma = randoms((size_t)c, -1.5, 1.5), *beta = randoms((size_t)c, -0.5, 0.5);
  float *rmean = randoms((size_t)c, -1, 1), *rvar = randoms((size_t)c, 0.5, 2);
  KIn x = kin(n, c, hw, ca);
  float *dy = tensor(n, c, hw, -1, 1);
  // The C kernels' results: forward, then the backward from their saved statistics.
  float *rm_c = copy_of(rmean, (size_t)c * 4), *rv_c = copy_of(rvar, (size_t)c * 4), *y_c = nans(count);
  float *mean_c = nans((size_t)sets), *invstd_c = nans((size_t)sets);
  KOut dx_c = kout(n, c, hw, dca, acc_a, acc_b), dx_g = kout_copy(dx_c, n, c, hw);
  float *dgamma_c = nans((size_t)c), *dbeta_c = nans((size_t)c);
  if (groups) {
    kn_gn_fwd(n, c, hw, groups, 1e-3f, x, gamma, beta, mean_c, invstd_c, relu, y_c, work_of(kn_work(n, c, hw, groups, true)));
    kn_gn_bwd(n, c, hw, groups, x, gamma, beta, mean_c, invstd_c, relu, dy, dgamma_c, dbeta_c, dx_c, work_of(kn_work(n, c, hw, groups, true)));
  } else {
    kn_bn_train(n, c, hw, 1e-3f, 0.9f, x, gamma, beta, rm_c, rv_c, mean_c, invstd_c, relu, y_c, work_of(kn_work(n, c, hw, 0, true)));
    kn_bn_bwd(n, c, hw, x, gamma, beta, mean_c, invstd_c, relu, dy, dgamma_c, dbeta_c, dx_c, work_of(kn_work(n, c, hw, 0, true)));
  }
  float *rm_g = copy_of(rmean, (size_t)c * 4), *rv_g = copy_of(rvar, (size_t)c * 4), *y_g = nans(count);
  float *mean_g = nans((size_t)sets), *invstd_g = nans((size_t)sets), *dgamma_g = nans((size_t)c),
        *dbeta_g = nans((size_t)c);
  N.n = n, N.c = c, N.hw = hw, N.groups = groups, N.eps = 1e-3f, N.momentum = 0.9f, N.x = x, N.gamma = gamma;
  N.beta = beta, N.running_mean = rm_g, N.running_var = rv_g, N.mean = mean_g, N.invstd = invstd_g, N.relu = relu;
  N.y = y_g;
  Out fwd[] = {OUT(rm_g, c), OUT(rv_g, c), OUT(mean_g, sets), OUT(invstd_g, sets), OUT(y_g, count)};
  snprintf(what, sizeof what, "%s: forward", name);
  if (groups)
    deterministic(what, k_gn_fwd, cu_gn_fwd_plan(n, c, hw, groups), fwd + 2, 3);
  else
    deterministic(what, k_bn_train, cu_bn_train_plan(n, c, hw), fwd, 5);
  close_f(what, count, y_g, y_c, 1e-5);
  close_f(what, (size_t)sets, mean_g, mean_c, 1e-5);
  close_f(what, (size_t)sets, invstd_g, invstd_c, 1e-5);
  close_f(what, (size_t)c, rm_g, rm_c, 1e-5);
  close_f(what, (size_t)c, rv_g, rv_c, 1e-5);
  CHECK(padding_zero(n, c, hw, y_g), "%s: padding lanes of y", what);

  // The backward, from the C kernels' statistics.
  N.mean = mean_c, N.invstd = invstd_c, N.dy = dy, N.dgamma = dgamma_g, N.dbeta = dbeta_g, N.dx = dx_g;
  Out bwd[] = {OUT(dgamma_g, c), OUT(dbeta_g, c), OUT(dx_g.a, piece_bytes(n, c, hw, dca, 0) / 4),
               OUT(dx_g.b, piece_bytes(n, c, hw, dca, 1) / 4)};
  snprintf(what, sizeof what, "%s: backward", name);
  if (groups)
    deterministic(what, k_gn_bwd, cu_gn_bwd_plan(n, c, hw, groups), bwd, dca ? 4 : 3);
  else
    deterministic(what, k_bn_bwd, cu_bn_bwd_plan(n, c, hw), bwd, dca ? 4 : 3);
  close_kout(what, dx_g, dx_c, n, c, hw, 1e-5);
  CHECK(padding_zero(n, piece_c(c, dca, 0), hw, dx_g.a) && (!dca || padding_zero(n, piece_c(c, dca, 1), hw, dx_g.b)),
        "%s: padding lanes of dx", what);
  close_f(what, (size_t)c, dgamma_g, dgamma_c, 1e-5);
  close_f(what, (size_t)c, dbeta_g, dbeta_c, 1e-5);

  if (!groups) { // the statistics alone with a consumer's prologue; inference and its prologue
    float *scale_c = nans((size_t)c), *shift_c = nans((size_t)c), *scale_g = nans((size_t)c),
          *shift_g = nans((size_t)c);
    memcpy(rm_c, rmean, (size_t)c * 4), memcpy(rv_c, rvar, (size_t)c * 4);
    memcpy(rm_g, rmean, (size_t)c * 4), memcpy(rv_g, rvar, (size_t)c * 4);
    kn_bn_stats(n, c, hw, 1e-3f, 0.9f, x, gamma, beta, rm_c, rv_c, mean_c, invstd_c, scale_c, shift_c, work_of(kn_work(n, c, hw, 0, true)));
    N.running_mean = rm_g, N.running_var = rv_g, N.mean = mean_g, N.invstd = invstd_g, N.scale = scale_g;
    N.shift = shift_g;
    Out st[] = {OUT(rm_g, c), OUT(rv_g, c), OUT(mean_g, c), OUT(invstd_g, c), OUT(scale_g, c), OUT(shift_g, c)};
    snprintf(what, sizeof what, "%s: stats", name);
    deterministic(what, k_bn_stats, cu_bn_stats_plan(n, c, hw), st, 6);
    close_f(what, (size_t)c, rm_g, rm_c, 1e-5);
    close_f(what, (size_t)c, rv_g, rv_c, 1e-5);
    close_f(what, (size_t)c, mean_g, mean_c, 1e-5);
    close_f(what, (size_t)c, invstd_g, invstd_c, 1e-5);
    close_f(what, (size_t)c, scale_g, scale_c, 1e-5);
    close_f(what, (size_t)c, shift_g, shift_c, 1e-5);

    float *ye_c = nans(count), *ye_g = nans(count);
    kn_bn_eval(n, c, hw, 1e-3f, x, gamma, beta, rmean, rvar, relu, ye_c, work_of(kn_work(n, c, hw, 0, true)));
    kn_bn_eval_coeffs(c, 1e-3f, gamma, beta, rmean, rvar, scale_c, shift_c);
    N.running_mean = rmean, N.running_var = rvar, N.y = ye_g;
    snprintf(what, sizeof what, "%s: eval", name);
    launch(k_bn_eval, what, cu_bn_eval_plan(n, c, hw));
    same(what, ye_g, ye_c, count * 4);
    launch(k_bn_eval_coeffs, what, cu_bn_eval_coeffs_plan(c));
    same(what, scale_g, scale_c, (size_t)c * 4);
    same(what, shift_g, shift_c, (size_t)c * 4);
    free(scale_c), free(shift_c), free(scale_g), free(shift_g), free(ye_c), free(ye_g);
  }
  kin_free(x);
  kout_free(dx_c), kout_free(dx_g);
  free(gamma), free(beta), free(rmean), free(rvar), free(dy), free(rm_c), free(rv_c), free(y_c), free(mean_c);
  free(invstd_c), free(dgamma_c), free(dbeta_c), free(rm_g), free(rv_g), free(y_g), free(mean_g), free(invstd_g);
  free(dgamma_g), free(dbeta_g);
}

// ---- row sums and the statistics from them -------------------------------------------------------------

static struct {
  int n, c, h, w;
  const float *x;
  double *stats;
} R;

CU_KERNEL(k_row_sums) {
  (void)A;
  cu_row_sums(R.n, R.c, R.h, R.w, R.x, R.stats);
}

// The sums of a 1x1 convolution's output (of 3 channels) as kc_gather's epilogue leaves them, then
// batch-norm statistics from them.
static void test_row_sums(int n, int c, int h, int w) {
  char what[128];
  snprintf(what, sizeof what, "row sums n=%d c=%d %dx%d", n, c, h, w);
  const KConv g = {n, c, h, w, 3, h, w, 1, 1, 0, 0};
  const size_t nstats = (size_t)n * (size_t)h * 2 * KB * (size_t)kb_blocks(c);
  float *image = tensor(n, 3, h * w, -1, 1), *wts = randoms((size_t)c * 3, -1, 1);
  float *wp = xalloc(kc_packed_floats(&g) * sizeof *wp), *y = nans(kb_elems(n, c, h, w));
  double *stats_c = xalloc(nstats * sizeof *stats_c), *stats_g = xalloc(nstats * sizeof *stats_g);
  kc_pack_gather(&g, wts, wp);
  KIn in = {0};
  KOut out = {0};
  in.a = image, out.a = y, out.stats = stats_c;
  kc_gather(&g, in, wp, NULL, out, work_of(kc_conv_work(&g, false, true)));
  R.n = n, R.c = c, R.h = h, R.w = w, R.x = y, R.stats = stats_g;
  launch(k_row_sums, what, cu_row_sums_plan(n, c, h, w));
  same(what, stats_g, stats_c, nstats * sizeof *stats_g);

  float *gamma = randoms((size_t)c, -1.5, 1.5), *beta = randoms((size_t)c, -0.5, 0.5);
  float *rmean = randoms((size_t)c, -1, 1), *rvar = randoms((size_t)c, 0.5, 2), *r_c = nans(6 * (size_t)c),
        *r_g = nans(6 * (size_t)c);
  for (int k = 0; k < 2; k++) {
    memcpy(r_c + (size_t)k * c, k ? rvar : rmean, (size_t)c * 4);
    memcpy(r_g + (size_t)k * c, k ? rvar : rmean, (size_t)c * 4);
  }
  float *o[6];
  for (int k = 0; k < 6; k++)
    o[k] = r_c + (size_t)k * c;
  kn_bn_from_sums(c, n * h, (int64_t)n * h * w, stats_c, 1e-3f, 0.9f, gamma, beta, o[0], o[1], o[2], o[3], o[4], o[5], work_of(kn_work(0, c, 0, 0, false)));
  N.c = c, N.parts = n * h, N.count = (int64_t)n * h * w, N.stats = stats_c, N.eps = 1e-3f, N.momentum = 0.9f;
  N.gamma = gamma, N.beta = beta, N.running_mean = r_g, N.running_var = r_g + c, N.mean = r_g + 2 * c;
  N.invstd = r_g + 3 * c, N.scale = r_g + 4 * c, N.shift = r_g + 5 * c;
  snprintf(what, sizeof what, "bn from sums n=%d c=%d %dx%d", n, c, h, w);
  Out outs[] = {OUT(r_g, 6 * c)};
  deterministic(what, k_bn_from_sums, cu_bn_from_sums_plan(c, n * h), outs, 1);
  for (int k = 0; k < 6; k++)
    close_f(what, (size_t)c, r_g + (size_t)k * c, r_c + (size_t)k * c, 1e-5);
  free(image), free(wts), free(wp), free(y), free(stats_c), free(stats_g), free(gamma), free(beta), free(rmean);
  free(rvar), free(r_c), free(r_g);
}

// ---- elementwise ops ------------------------------------------------------------------------------------

static struct {
  int kind; // which op the kernel runs
  int64_t count;
  float alpha;
  bool relu;
  const float *x, *b;
  float *y;
  KOut dx;
} P;

enum { RELU, LEAKY, SIGMOID, TANH, ADD, RELU_BWD, LEAKY_BWD, SIGMOID_BWD, TANH_BWD, COPY, NKINDS };
static const char *const kind_names[NKINDS] = {"relu",     "leaky_relu",     "sigmoid",     "tanh",     "add",
                                               "relu_bwd", "leaky_relu_bwd", "sigmoid_bwd", "tanh_bwd", "copy"};

CU_KERNEL(k_pointwise) {
  (void)A;
  switch (P.kind) {
  case RELU: cu_relu(P.count, P.x, P.y); break;
  case LEAKY: cu_leaky_relu(P.count, P.alpha, P.x, P.y); break;
  case SIGMOID: cu_sigmoid(P.count, P.x, P.y); break;
  case TANH: cu_tanh(P.count, P.x, P.y); break;
  case ADD: cu_add(P.count, P.x, P.b, P.relu, P.y); break;
  case RELU_BWD: cu_relu_bwd(P.count, P.x, P.b, P.dx); break;
  case LEAKY_BWD: cu_leaky_relu_bwd(P.count, P.alpha, P.x, P.b, P.dx); break;
  case SIGMOID_BWD: cu_sigmoid_bwd(P.count, P.x, P.b, P.dx); break;
  case TANH_BWD: cu_tanh_bwd(P.count, P.x, P.b, P.dx); break;
  default: cu_copy(P.count, P.b, P.dx); break;
  }
}

static void kp_run(int kind, size_t count, const float *x, const float *b, float *y, KOut dx) {
  switch (kind) {
  case RELU: kp_relu(count, x, y); break;
  case LEAKY: kp_leaky_relu(count, P.alpha, x, y); break;
  case SIGMOID: kp_sigmoid(count, x, y); break;
  case TANH: kp_tanh(count, x, y); break;
  case ADD: kp_add(count, x, b, P.relu, y); break;
  case RELU_BWD: kp_relu_bwd(count, x, b, dx); break;
  case LEAKY_BWD: kp_leaky_relu_bwd(count, P.alpha, x, b, dx); break;
  case SIGMOID_BWD: kp_sigmoid_bwd(count, x, b, dx); break;
  case TANH_BWD: kp_tanh_bwd(count, x, b, dx); break;
  default: kp_copy(count, b, dx); break;
  }
}

// Every elementwise op on count values (x with exact zeros and negatives), with relu and acc
// where they apply; on a grid smaller than the values, so that the loops stride.
static void test_pointwise(size_t count) {
  float *x = randoms(count, -3, 3), *b = randoms(count, -2, 2);
  for (size_t i = 0; i < count; i += 7)
    x[i] = i % 2 ? 0.0f : -0.0f;
  for (int kind = 0; kind < NKINDS; kind++)
    for (int variant = 0; variant < 2; variant++) {
      bool out_y = kind <= ADD;
      P.kind = kind, P.count = (int64_t)count, P.alpha = 0.1f, P.relu = variant, P.x = x, P.b = b;
      float *y_c = nans(count), *y_g = nans(count);
      KOut dx_c = {0};
      dx_c.a = variant ? randoms(count, -1, 1) : nans(count);
      dx_c.acc_a = variant;
      KOut dx_g = dx_c;
      dx_g.a = copy_of(dx_c.a, count * 4);
      P.y = y_g, P.dx = dx_g;
      kp_run(kind, count, x, b, y_c, dx_c);
      CuPlan plan = cu_plan_elems((int64_t)count);
      plan.grid[0][0] = (plan.grid[0][0] + 2) / 3;
      launch(k_pointwise, kind_names[kind], plan);
      char what[96];
      snprintf(what, sizeof what, "%s count=%zu variant %d", kind_names[kind], count, variant);
      if (out_y)
        same(what, y_g, y_c, count * 4);
      else
        same(what, dx_g.a, dx_c.a, count * 4);
      free(y_c), free(y_g), free(dx_c.a), free(dx_g.a);
    }
  free(x), free(b);
}

// ---- dropout, its mask, channel copies ----------------------------------------------------------------

static struct {
  int n, c, hw, c_from, c_to, offset;
  float rate;
  const uint8_t *keep;
  const float *x;
  float *y;
  KOut out;
  uint64_t seed;
  uint32_t node;
  int64_t step, count;
  double drop;
  uint8_t *mask;
} D;

CU_KERNEL(k_dropout) {
  (void)A;
  cu_dropout(D.n, D.c, D.hw, D.rate, D.keep, D.x, D.out);
}
CU_KERNEL(k_dropout_mask) {
  (void)A;
  cu_dropout_mask(D.seed, D.node, D.step, D.count, D.drop, D.mask);
}
CU_KERNEL(k_concat_piece) {
  (void)A;
  cu_concat_piece(D.n, D.hw, D.c_from, D.c_to, D.offset, D.x, D.y);
}
CU_KERNEL(k_split_piece) {
  (void)A;
  cu_split_piece(D.n, D.hw, D.c_from, D.c_to, D.offset, D.x, D.out);
}

static void test_dropout(int n, int c, int hw, int ca, bool acc_a, bool acc_b) {
  char what[96];
  snprintf(what, sizeof what, "dropout n=%d c=%d hw=%d ca=%d acc=%d%d", n, c, hw, ca, acc_a, acc_b);
  uint8_t *keep = xalloc((size_t)n * (size_t)c);
  for (int k = 0; k < n * c; k++)
    keep[k] = uniform(0, 1) < 0.6;
  float *x = tensor(n, c, hw, -1, 1);
  KOut y_c = kout(n, c, hw, ca, acc_a, acc_b), y_g = kout_copy(y_c, n, c, hw);
  kp_dropout(n, c, hw, 0.3f, keep, x, y_c);
  D.n = n, D.c = c, D.hw = hw, D.rate = 0.3f, D.keep = keep, D.x = x, D.out = y_g;
  launch(k_dropout, what, cu_plan_elems((int64_t)kb_elems(n, c, hw, 1)));
  same_kout(what, y_g, y_c, n, c, hw);
  free(keep), free(x), kout_free(y_c), kout_free(y_g);
}

static void test_dropout_mask(uint64_t s, uint32_t node, int64_t step, int64_t count, double rate) {
  char what[96];
  snprintf(what, sizeof what, "dropout mask node=%u step=%lld count=%lld rate=%g", node, (long long)step,
           (long long)count, rate);
  uint8_t *want = xalloc((size_t)count), *got = xalloc((size_t)count);
  rng_dropout_mask(s, node, step, (size_t)count, rate, want);
  memset(got, 0x55, (size_t)count);
  D.seed = s, D.node = node, D.step = step, D.count = count, D.drop = rate, D.mask = got;
  launch(k_dropout_mask, what, cu_plan_elems(count));
  same(what, got, want, (size_t)count);
  free(want), free(got);
}

// concat_piece into a NaN-filled y (what it leaves must stay), and split_piece back into dx split at
// dca, assigned or added.
static void test_copies(int n, int hw, int c_from, int c_to, int offset, int dca, bool acc_a, bool acc_b) {
  char what[128];
  snprintf(what, sizeof what, "concat/split n=%d hw=%d %d into %d at %d, dca=%d acc=%d%d", n, hw, c_from, c_to, offset,
           dca, acc_a, acc_b);
  float *x = tensor(n, c_from, hw, -1, 1), *y_c = nans(kb_elems(n, c_to, hw, 1)), *y_g = nans(kb_elems(n, c_to, hw, 1));
  kp_concat_piece(n, hw, c_from, c_to, offset, x, y_c);
  D.n = n, D.hw = hw, D.c_from = c_from, D.c_to = c_to, D.offset = offset, D.x = x, D.y = y_g;
  launch(k_concat_piece, what, cu_plan_elems((int64_t)kb_elems(n, c_to, hw, 1)));
  same(what, y_g, y_c, kb_elems(n, c_to, hw, 1) * 4);
  float *dy = tensor(n, c_to, hw, -1, 1);
  KOut dx_c = kout(n, c_from, hw, dca, acc_a, acc_b), dx_g = kout_copy(dx_c, n, c_from, hw);
  kp_split_piece(n, hw, c_from, c_to, offset, dy, dx_c);
  D.x = dy, D.out = dx_g;
  launch(k_split_piece, what, cu_plan_elems((int64_t)kb_elems(n, c_from, hw, 1)));
  same_kout(what, dx_g, dx_c, n, c_from, hw);
  free(x), free(y_c), free(y_g), free(dy), kout_free(dx_c), kout_free(dx_g);
}

// ---- the loss -----------------------------------------------------------------------------------------

static struct {
  int loss, n, h, w;
  bool sigmoid;
  const float *in, *t;
  float *y, *d;
  double *value;
} L;

CU_KERNEL(k_loss) {
  (void)A;
  cu_loss(stage, A.work, L.loss, L.sigmoid, L.n, L.h, L.w, L.in, L.t, L.y, L.d, L.value);
}

static void test_loss(int loss, bool sigmoid, bool grad, int n, int h, int w) {
  char what[96];
  snprintf(what, sizeof what, "%s%s n=%d %dx%d%s", caec_loss_name((CaecLoss)loss), sigmoid ? "_sigmoid" : "", n, h,
           w, grad ? "" : " (no gradient)");
  const size_t count = (size_t)n * (size_t)h * (size_t)w;
  float *in = sigmoid ? randoms(count, -4, 4) : randoms(count, 0, 1), *t = randoms(count, 0, 1);
  float *y_c = nans(count), *y_g = nans(count), *d_c = grad ? nans(count) : NULL, *d_g = grad ? nans(count) : NULL;
  double want, got = NAN;
  if (loss == CAEC_MSE)
    want = sigmoid ? kl_mse_sigmoid(n, h * w, in, t, y_c, d_c, work_of(kl_loss_work(n, 1, h * w))) : kl_mse(n, h * w, in, t, d_c, work_of(kl_loss_work(n, 1, h * w)));
  else
    want = sigmoid ? kl_dssim_sigmoid(n, h, w, in, t, y_c, d_c, work_of(kl_loss_work(n, h, w))) : kl_dssim(n, h, w, in, t, d_c, work_of(kl_loss_work(n, h, w)));
  L.loss = loss, L.sigmoid = sigmoid, L.n = n, L.h = h, L.w = w, L.in = in, L.t = t, L.y = sigmoid ? y_g : NULL;
  L.d = d_g, L.value = &got;
  Out outs[] = {OUT(&got, 1), OUT(y_g, count), OUT(d_g, count)};
  deterministic(what, k_loss, cu_loss_plan(n, h, w), outs, grad ? 3 : 2);
  close_arrays(what, 1, &got, &want, 1e-12);
  same(what, y_g, y_c, count * 4);
  if (grad)
    same(what, d_g, d_c, count * 4);
  free(in), free(t), free(y_c), free(y_g), free(d_c), free(d_g);
}

// ---- sums of squares and optimizer updates ----------------------------------------------------------------

static struct {
  int64_t count;
  const float *w;
  int nranges;
  const int64_t (*ranges)[2];
  double *out;
  CuHyper h;
  float *wt, *g, *opt;
  int nspans;
  const CuParamSpan *spans;
} T;

CU_KERNEL(k_sumsq) {
  (void)A;
  cu_sumsq(stage, A.work, T.count, T.w, T.out);
}
CU_KERNEL(k_l2_sumsq) {
  (void)A;
  cu_l2_sumsq(stage, A.work, T.w, T.nranges, T.ranges, T.out);
}
CU_KERNEL(k_update) {
  (void)A;
  cu_update(&T.h, T.wt, T.g, T.opt, T.nspans, T.spans);
}

static void test_sumsq(size_t count) {
  char what[64];
  snprintf(what, sizeof what, "sumsq count=%zu", count);
  float *w = randoms(count, -2, 2);
  double want = ko_sumsq(count, w, work_of(ko_sumsq_work(count))), got = NAN;
  T.count = (int64_t)count, T.w = w, T.out = &got;
  Out outs[] = {OUT(&got, 1)};
  deterministic(what, k_sumsq, cu_sumsq_plan((int64_t)count), outs, 1);
  close_arrays(what, 1, &got, &want, 1e-12);
  // Ranges of w laid end to end, chunks spanning them.
  const int64_t ranges[3][2] = {{5, 3000}, {4000, 1}, {3010, (int64_t)count / 2}};
  if (count >= 6020) {
    want = 0;
    for (int r = 0; r < 3; r++)
      want += ko_sumsq((size_t)ranges[r][1], w + ranges[r][0], work_of(ko_sumsq_work((size_t)ranges[r][1])));
    T.nranges = 3, T.ranges = ranges;
    snprintf(what, sizeof what, "l2_sumsq count=%zu", count);
    deterministic(what, k_l2_sumsq, cu_l2_sumsq_plan(3001 + (int64_t)count / 2), outs, 1);
    close_arrays(what, 1, &got, &want, 1e-12);
  }
  free(w);
}

// Three steps from step 4 of each optimizer, with and without the update and L2, of three
// parameters in one launch (the second not in the L2 term), laid out with gaps between them.
static void test_update(int optimizer, bool update, bool l2) {
  char what[64];
  snprintf(what, sizeof what, "update optimizer=%d update=%d l2=%d", optimizer, update, l2);
  enum { P = 3 };
  const int64_t counts[P] = {1000, 7, 300}, flagged[P] = {l2, 0, l2};
  CuParamSpan spans[P];
  int64_t at = 0, first = 0;
  for (int p = 0; p < P; first += counts[p], at += counts[p] + 5, p++) // w and g at `at`, opt at 2 at
    spans[p] = (CuParamSpan){first, counts[p], at, at, 2 * at, flagged[p]};
  const size_t count = (size_t)at;
  CaecHyper hc = {CAEC_MSE, optimizer, 1e-3, 0.9, 1e-7, 0.9, 0.999, 0.8, 1e-2, false, update, 1};
  T.h = (CuHyper){CAEC_MSE, optimizer, 1e-3, 0.9, 1e-7, 0.9, 0.999, 0.8, 1e-2, 0, update, 1, 4};
  float *w_c = randoms(count, -1, 1), *g_c = randoms(count, -1, 1), *o_c = randoms(2 * count, 0, 0.1);
  float *w_g = copy_of(w_c, count * 4), *g_g = copy_of(g_c, count * 4), *o_g = copy_of(o_c, 2 * count * 4);
  T.wt = w_g, T.g = g_g, T.opt = o_g, T.nspans = P, T.spans = spans;
  for (int s = 0; s < 3; s++, T.h.step++) {
    for (int p = 0; p < P; p++)
      caec_update(&hc, T.h.step + 1, (size_t)counts[p], flagged[p], w_c + spans[p].w, g_c + spans[p].g,
                  o_c + spans[p].opt);
    launch(k_update, what, cu_plan_elems(first));
  }
  same(what, w_g, w_c, count * 4);
  same(what, g_g, g_c, count * 4);
  same(what, o_g, o_c, 2 * count * 4);
  free(w_c), free(g_c), free(o_c), free(w_g), free(g_g), free(o_g);
}

// ---- the cases ---------------------------------------------------------------------------------------------

int main(void) {
  // c, hw (odd, even; 1100 and 17000 are planes of two chunks), two-piece splits of x and dx.
  static const struct {
    int n, c, hw, groups, ca, dca;
  } norms[] = {{2, 1, 35, 1, 0, 0},    {3, 1, 17000, 1, 0, 0}, {1, 16, 49, 4, 0, 0},  {2, 20, 36, 5, 16, 16},
               {3, 32, 1100, 8, 0, 16}, {2, 17, 30, 1, 16, 16}, {2, 48, 25, 3, 32, 0}, {1, 33, 1100, 3, 32, 32},
               {2, 16, 128 * 128, 4, 0, 0}}; // the last: a seed model's 128 x 128 batch norm, planes of many chunks
  for (size_t k = 0; k < sizeof norms / sizeof *norms; k++)
    for (int relu = 0; relu < 2; relu++)
      for (int gn = 0; gn < 2; gn++) {
        bool acc_a = (k + (size_t)relu) % 2, acc_b = (k + (size_t)gn) % 3 == 0;
        test_norm(norms[k].n, norms[k].c, norms[k].hw, gn ? norms[k].groups : 0, norms[k].ca, norms[k].dca, relu,
                  acc_a, acc_b);
      }

  static const int rows[][4] = {{2, 1, 7, 9}, {3, 16, 6, 5}, {2, 20, 5, 8}, {1, 48, 9, 7}, {2, 32, 40, 33}};
  for (size_t k = 0; k < sizeof rows / sizeof *rows; k++)
    test_row_sums(rows[k][0], rows[k][1], rows[k][2], rows[k][3]);

  test_pointwise(1);
  test_pointwise(5000);

  static const int drops[][4] = {{2, 1, 35, 0}, {3, 20, 36, 0}, {2, 17, 25, 16}, {2, 48, 30, 32}, {1, 40, 9, 16}};
  for (size_t k = 0; k < sizeof drops / sizeof *drops; k++)
    for (int acc = 0; acc < 3; acc++)
      test_dropout(drops[k][0], drops[k][1], drops[k][2], drops[k][3], acc == 1, acc == 2);
  test_dropout_mask(1, 3, 0, 1, 0.5);
  test_dropout_mask(0x123456789abcdefu, 17, 12345, 96, 0.2);
  test_dropout_mask(42, 4000000000u, 1LL << 40, 1000, 0.7);

  // c_from, c_to, offset, dca: aligned and not, ending dst or not, plain pieces on either side.
  static const int copies[][4] = {{20, 52, 32, 16}, {4, 20, 16, 0},  {7, 30, 3, 0},  {1, 17, 16, 0},
                                  {17, 40, 20, 16}, {16, 40, 24, 0}, {36, 36, 0, 32}, {1, 1, 0, 0}};
  for (size_t k = 0; k < sizeof copies / sizeof *copies; k++)
    for (int acc = 0; acc < 2; acc++)
      test_copies(2, k % 2 ? 35 : 36, copies[k][0], copies[k][1], copies[k][2], copies[k][3], acc, !acc);

  static const int images[][3] = {{1, 11, 11}, {3, 20, 37}, {2, 40, 45}, {2, 50, 90}};
  for (size_t k = 0; k < sizeof images / sizeof *images; k++)
    for (int loss = 0; loss < 2; loss++)
      for (int sigmoid = 0; sigmoid < 2; sigmoid++)
        for (int grad = 0; grad < 2; grad++)
          test_loss(loss, sigmoid, grad, images[k][0], images[k][1], images[k][2]);

  static const size_t sums[] = {1, 100, 4096, 4097, 50000};
  for (size_t k = 0; k < sizeof sums / sizeof *sums; k++)
    test_sumsq(sums[k]);

  for (int optimizer = 0; optimizer < 3; optimizer++)
    for (int variant = 0; variant < 4; variant++)
      test_update(optimizer, variant & 1, variant & 2);
  return finish();
}
