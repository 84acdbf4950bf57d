// kern_norm.c: batch norm and group norm on blocked tensors. As in ref_norm.c,
// both normalise sets of values, which are unions of whole channel planes:
// one channel across the batch (bn), or a group of channels within one image
// (gn). So both run the same code: per-plane partial sums, combined per set
// in a fixed order, then an elementwise pass with per-lane coefficients.
//
// Work is split by plane: image i's block bk of 16 channels, [hw][16]. A
// 1-channel tensor is plain, [hw], and its planes have stride 1.
//
// A batch norm fused into the convolution that reads its output (a prologue,
// kern.h) needs only its statistics: kn_bn_stats takes them from the tensor
// with kn_bn_train's code, kn_bn_from_sums from the sums that the producing
// convolution's epilogue left.
//
// Workspace (kn_work): shared, the per-plane partials [2][n*c] (double), then the per-set or per-channel
// values: moments [c][2] (double), g0 and gx [2][sets] or the inference invstd [c] (float); per thread,
// the blocked planes that a concatenation's plain piece goes through.
#include "kern.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---- the sets ------------------------------------------------------------------

typedef struct Norm {
  int n, c, hw;
  int groups; // 0 for batch norm
} Norm;

static int set_count(const Norm *k) { return k->groups ? k->n * k->groups : k->c; }

static int set_of(const Norm *k, int i, int ch) { return k->groups ? i * k->groups + ch / (k->c / k->groups) : ch; }

// Per-plane partials are indexed [i*c + ch]; set s is `count` of them, `step` apart from `first`.
static void set_members(const Norm *k, int s, size_t *first, size_t *step, int *count) {
  if (k->groups) {
    int cg = k->c / k->groups;
    *first = (size_t)(s / k->groups) * (size_t)k->c + (size_t)(s % k->groups * cg);
    *step = 1;
    *count = cg;
  } else {
    *first = (size_t)s;
    *step = (size_t)k->c;
    *count = k->n;
  }
}

static int lanes_of(int c, int bk) { return c - bk * KB < KB ? c - bk * KB : KB; }

// The shared workspace's per-set or per-channel part, after the partials of n images of c channels.
static void *set_part(KWork w, int n, int c) {
  return (unsigned char *)w.shared + kwork_round(2 * (size_t)n * (size_t)c * sizeof(double));
}

// The thread's blocked scratch planes (count of them, zeroed: padding lanes stay 0), or NULL when the plane
// of block bk is no plain piece.
static float *plain_planes(KWork w, bool plain, int hw, int count) {
  if (!plain)
    return NULL;
  float *tmp = (float *)kwork_mine(w, kn_work(0, 0, hw, 0, true).thread);
  memset(tmp, 0, (size_t)count * (size_t)hw * KB * sizeof *tmp);
  return tmp;
}

// ---- planes of two-piece tensors ---------------------------------------------------

// Where image i's block bk of a two-piece tensor lives: returns the piece (0: a, 1: b) and sets its
// channel count and the block's offset in it.
static int locate(const void *b, int ca, int c, int hw, int i, int bk, int *pc, size_t *off) {
  int piece = b && bk >= ca / KB;
  *pc = piece ? c - ca : b ? ca : c;
  size_t pb = (size_t)(piece ? bk - ca / KB : bk);
  *off = *pc == 1 ? (size_t)i * (size_t)hw : ((size_t)i * (size_t)kb_blocks(*pc) + pb) * (size_t)hw * KB;
  return piece;
}

// A 1-channel piece of a wider tensor is stored plain: its planes go through a blocked scratch plane.
static bool plain_piece(const void *b, int ca, int c, int bk) { return b && c - ca == 1 && bk == ca / KB; }

// Image i's block bk of x, as a plane of stride KB (or 1 when c == 1); a plain piece is copied into
// lane 0 of tmp, a zeroed plane.
static const float *read_plane(KIn x, int c, int hw, int i, int bk, float *tmp) {
  int pc;
  size_t off;
  const float *base = (locate(x.b, x.ca, c, hw, i, bk, &pc, &off) ? x.b : x.a) + off;
  if (!plain_piece(x.b, x.ca, c, bk))
    return base;
  for (int p = 0; p < hw; p++)
    tmp[(size_t)p * KB] = base[p];
  return tmp;
}

// ---- per-plane kernels ---------------------------------------------------------------
//
// For stride S = KB or 1. They vectorise only when S, relu and acc are constants (a runtime flag
// keeps gcc from if-converting the 16 lanes), so each is called through a dispatcher that fixes them.

// The affine map of one plane's lanes: y = s x + t, with s = gamma invstd and t = beta - mean s (bn_shift),
// and xhat = (x - m) invstd. Padding lanes have all zero, so they map to 0. g0, gx: the backward's terms (below).
typedef struct Coef {
  float m[KB], inv[KB], s[KB], t[KB], g0[KB], gx[KB];
} Coef;

// The normalisation is one multiply-add, s x + t, with t rounded once from double: the forward here, a
// consumer conv's prologue (kern_conv.c, with these s and t) and the backward's relu mask compute the
// same bits, so the mask is exactly the forward's whichever wrote the activation.
static inline float bn_shift(float beta, float mean, float scale) {
  return (float)((double)beta - (double)mean * (double)scale);
}

static void coef(const Norm *k, int i, int bk, const float *mean, const float *invstd, const float *gamma,
                 const float *beta, const float *g0, const float *gx, Coef *cf) {
  memset(cf, 0, sizeof *cf);
  for (int l = 0; l < lanes_of(k->c, bk); l++) {
    int ch = bk * KB + l, s = set_of(k, i, ch);
    cf->m[l] = mean[s];
    cf->inv[l] = invstd[s];
    cf->s[l] = gamma[ch] * invstd[s];
    cf->t[l] = bn_shift(beta[ch], mean[s], cf->s[l]);
    if (g0) {
      cf->g0[l] = g0[s];
      cf->gx[l] = gx[s];
    }
  }
}

// The forward's value before the relu. The backward recomputes it with the same code and the same
// float coefficients, so its relu mask is exactly the forward's.
static inline float affine(float x, const Coef *cf, int l) { return fmaf(cf->s[l], x, cf->t[l]); }

static inline float masked_dy(float dy, float x, const Coef *cf, int l, bool relu) {
  return relu && !(affine(x, cf, l) > 0) ? 0.0f : dy;
}

// Per lane: sum and sum of squared deviations from the plane's own mean (two passes: the second reads
// the plane from cache, and a large mean costs no precision).
static inline void plane_moments(int hw, int S, const float *restrict x, double *restrict sum, double *restrict m2) {
  double s[KB] = {0}, q[KB] = {0}, m[KB];
  for (int p = 0; p < hw; p++)
    for (int l = 0; l < S; l++)
      s[l] += x[(size_t)p * (size_t)S + (size_t)l];
  for (int l = 0; l < S; l++)
    m[l] = s[l] / hw;
  for (int p = 0; p < hw; p++)
    for (int l = 0; l < S; l++) {
      double d = x[(size_t)p * (size_t)S + (size_t)l] - m[l];
      q[l] += d * d;
    }
  memcpy(sum, s, sizeof *s * (size_t)S);
  memcpy(m2, q, sizeof *q * (size_t)S);
}

static inline void plane_forward(int hw, int S, const float *restrict x, const Coef *restrict cf, bool relu,
                                 float *restrict y) {
  for (int p = 0; p < hw; p++)
    for (int l = 0; l < S; l++) {
      float v = affine(x[(size_t)p * (size_t)S + (size_t)l], cf, l);
      y[(size_t)p * (size_t)S + (size_t)l] = relu && !(v > 0) ? 0.0f : v;
    }
}

// Per lane: sum of dy and of dy xhat (dy after the relu's mask). Each pixel's terms are made in float
// first, then summed in double: as two loops, both vectorise.
static inline void plane_bwd_sums(int hw, int S, const float *restrict x, const float *restrict dy,
                                  const Coef *restrict cf, bool relu, double *restrict sdy, double *restrict sdx) {
  double a[KB] = {0}, b[KB] = {0};
  for (int p = 0; p < hw; p++) {
    float g[KB], xhat[KB];
    for (int l = 0; l < S; l++) {
      size_t k = (size_t)p * (size_t)S + (size_t)l;
      g[l] = masked_dy(dy[k], x[k], cf, l, relu);
      xhat[l] = (x[k] - cf->m[l]) * cf->inv[l];
    }
    for (int l = 0; l < S; l++) {
      a[l] += g[l];
      b[l] += (double)g[l] * xhat[l];
    }
  }
  memcpy(sdy, a, sizeof *a * (size_t)S);
  memcpy(sdx, b, sizeof *b * (size_t)S);
}

// dx = invstd (gamma dy - mean(gamma dy) - xhat mean(gamma dy xhat)) = s dy - g0 - xhat gx.
static inline void plane_bwd_dx(int hw, int S, const float *restrict x, const float *restrict dy,
                                const Coef *restrict cf, bool relu, bool acc, float *restrict dx) {
  for (int p = 0; p < hw; p++)
    for (int l = 0; l < S; l++) {
      size_t k = (size_t)p * (size_t)S + (size_t)l;
      float g = masked_dy(dy[k], x[k], cf, l, relu), xhat = (x[k] - cf->m[l]) * cf->inv[l];
      float v = cf->s[l] * g - cf->g0[l] - xhat * cf->gx[l];
      dx[k] = acc ? dx[k] + v : v;
    }
}

static void forward_any(int hw, int S, const float *x, const Coef *cf, bool relu, float *y) {
  if (S == 1)
    plane_forward(hw, 1, x, cf, relu, y);
  else if (relu)
    plane_forward(hw, KB, x, cf, true, y);
  else
    plane_forward(hw, KB, x, cf, false, y);
}

static void bwd_sums_any(int hw, int S, const float *x, const float *dy, const Coef *cf, bool relu, double *sdy,
                         double *sdx) {
  if (S == 1)
    plane_bwd_sums(hw, 1, x, dy, cf, relu, sdy, sdx);
  else if (relu)
    plane_bwd_sums(hw, KB, x, dy, cf, true, sdy, sdx);
  else
    plane_bwd_sums(hw, KB, x, dy, cf, false, sdy, sdx);
}

static void bwd_dx_any(int hw, int S, const float *x, const float *dy, const Coef *cf, bool relu, bool acc,
                       float *dx) {
  if (S == 1)
    plane_bwd_dx(hw, 1, x, dy, cf, relu, acc, dx);
  else if (relu)
    acc ? plane_bwd_dx(hw, KB, x, dy, cf, true, true, dx) : plane_bwd_dx(hw, KB, x, dy, cf, true, false, dx);
  else
    acc ? plane_bwd_dx(hw, KB, x, dy, cf, false, true, dx) : plane_bwd_dx(hw, KB, x, dy, cf, false, false, dx);
}

// ---- the passes --------------------------------------------------------------------

// The batch statistics of every set: mean and invstd (saved as float), and in moments (nullable) the
// mean and the biased variance in double, [set][2]. Each plane's partials come from one thread; they are combined in a fixed order by
// Chan's formula for equal-sized parts: M2 = sum M2_j + hw sum (mean_j - mean)^2.
static void statistics(const Norm *k, double eps, KIn x, float *mean, float *invstd, double *moments, KWork w) {
  int nb = kb_blocks(k->c);
  size_t np = (size_t)k->n * (size_t)k->c;
  double *sum = w.shared, *m2 = sum + np;
#pragma omp parallel for schedule(static) num_threads(kwork_team(w))
  for (int ib = 0; ib < k->n * nb; ib++) {
    int i = ib / nb, bk = ib % nb;
    float *tmp = plain_planes(w, plain_piece(x.b, x.ca, k->c, bk), k->hw, 1);
    const float *xp = read_plane(x, k->c, k->hw, i, bk, tmp);
    double s[KB], q[KB];
    if (k->c == 1)
      plane_moments(k->hw, 1, xp, s, q);
    else
      plane_moments(k->hw, KB, xp, s, q);
    size_t at = (size_t)i * (size_t)k->c + (size_t)bk * KB;
    memcpy(sum + at, s, sizeof *s * (size_t)lanes_of(k->c, bk));
    memcpy(m2 + at, q, sizeof *q * (size_t)lanes_of(k->c, bk));
  }
  for (int s = 0; s < set_count(k); s++) {
    size_t first, step;
    int count;
    set_members(k, s, &first, &step, &count);
    double total = 0, ss = 0, values = (double)count * k->hw;
    for (int j = 0; j < count; j++)
      total += sum[first + (size_t)j * step];
    double mu = total / values;
    for (int j = 0; j < count; j++) {
      size_t at = first + (size_t)j * step;
      double d = sum[at] / k->hw - mu;
      ss += m2[at] + k->hw * d * d;
    }
    mean[s] = (float)mu;
    invstd[s] = (float)(1 / sqrt(ss / values + eps));
    if (moments) {
      moments[2 * s] = mu;
      moments[2 * s + 1] = ss / values;
    }
  }
}

static void normalise(const Norm *k, KIn x, const float *gamma, const float *beta, const float *mean,
                      const float *invstd, bool relu, float *y, KWork w) {
  int nb = kb_blocks(k->c);
#pragma omp parallel for schedule(static) num_threads(kwork_team(w))
  for (int ib = 0; ib < k->n * nb; ib++) {
    int i = ib / nb, bk = ib % nb;
    float *tmp = plain_planes(w, plain_piece(x.b, x.ca, k->c, bk), k->hw, 1);
    const float *xp = read_plane(x, k->c, k->hw, i, bk, tmp);
    Coef cf;
    coef(k, i, bk, mean, invstd, gamma, beta, NULL, NULL, &cf);
    float *yp = y + (size_t)ib * (size_t)k->hw * (k->c == 1 ? 1 : KB);
    forward_any(k->hw, k->c == 1 ? 1 : KB, xp, &cf, relu, yp);
  }
}

static void backward(const Norm *k, KIn x, const float *gamma, const float *beta, const float *mean,
                     const float *invstd, bool relu, const float *dy, float *dgamma, float *dbeta, KOut dx,
                     KWork w) {
  int nb = kb_blocks(k->c), S = k->c == 1 ? 1 : KB, nsets = set_count(k);
  size_t np = (size_t)k->n * (size_t)k->c;
  double *sdy = w.shared, *sdx = sdy + np;
  float *g0 = set_part(w, k->n, k->c), *gx = g0 + nsets;
#pragma omp parallel for schedule(static) num_threads(kwork_team(w))
  for (int ib = 0; ib < k->n * nb; ib++) {
    int i = ib / nb, bk = ib % nb;
    float *tmp = plain_planes(w, plain_piece(x.b, x.ca, k->c, bk), k->hw, 1);
    const float *xp = read_plane(x, k->c, k->hw, i, bk, tmp), *dyp = dy + (size_t)ib * (size_t)k->hw * (size_t)S;
    Coef cf;
    coef(k, i, bk, mean, invstd, gamma, beta, NULL, NULL, &cf);
    double a[KB], b[KB];
    bwd_sums_any(k->hw, S, xp, dyp, &cf, relu, a, b);
    size_t at = (size_t)i * (size_t)k->c + (size_t)bk * KB;
    memcpy(sdy + at, a, sizeof *a * (size_t)lanes_of(k->c, bk));
    memcpy(sdx + at, b, sizeof *b * (size_t)lanes_of(k->c, bk));
  }
  for (int ch = 0; ch < k->c; ch++) {
    double a = 0, b = 0;
    for (int i = 0; i < k->n; i++) {
      a += sdy[(size_t)i * (size_t)k->c + (size_t)ch];
      b += sdx[(size_t)i * (size_t)k->c + (size_t)ch];
    }
    dbeta[ch] = (float)a;
    dgamma[ch] = (float)b;
  }
  for (int s = 0; s < nsets; s++) {
    size_t first, step;
    int count;
    set_members(k, s, &first, &step, &count);
    double a = 0, b = 0, values = (double)count * k->hw;
    for (int j = 0; j < count; j++) {
      size_t at = first + (size_t)j * step;
      a += gamma[at % (size_t)k->c] * sdy[at];
      b += gamma[at % (size_t)k->c] * sdx[at];
    }
    g0[s] = (float)(invstd[s] * a / values);
    gx[s] = (float)(invstd[s] * b / values);
  }
#pragma omp parallel for schedule(static) num_threads(kwork_team(w))
  for (int ib = 0; ib < k->n * nb; ib++) {
    int i = ib / nb, bk = ib % nb;
    bool plain_x = plain_piece(x.b, x.ca, k->c, bk), plain_dx = plain_piece(dx.b, dx.ca, k->c, bk);
    float *tmp = plain_planes(w, plain_x || plain_dx, k->hw, 2);
    const float *xp = read_plane(x, k->c, k->hw, i, bk, tmp), *dyp = dy + (size_t)ib * (size_t)k->hw * (size_t)S;
    Coef cf;
    coef(k, i, bk, mean, invstd, gamma, beta, g0, gx, &cf);
    int pc;
    size_t off;
    int piece = locate(dx.b, dx.ca, k->c, k->hw, i, bk, &pc, &off);
    float *d = (piece ? dx.b : dx.a) + off;
    bool acc = piece ? dx.acc_b : dx.acc_a;
    if (!plain_dx) {
      bwd_dx_any(k->hw, S, xp, dyp, &cf, relu, acc, d);
    } else { // into a blocked scratch plane, then its lane 0 into the plain piece
      float *out = tmp + (size_t)k->hw * KB;
      bwd_dx_any(k->hw, KB, xp, dyp, &cf, relu, false, out);
      for (int p = 0; p < k->hw; p++)
        d[p] = acc ? d[p] + out[(size_t)p * KB] : out[(size_t)p * KB];
    }
  }
}

// ---- the entry points ------------------------------------------------------------

// Keras's running statistics from the batch's mean and biased variance (moments [c][2]) of count values per
// channel, with the unbiased variance: TensorFlow's fused kernel takes count - 1 as 1 for a single value
// rather than dividing by zero.
static void update_running(int c, double count, float momentum, const double *moments, float *running_mean,
                           float *running_var) {
  double unbiased = count / (count > 1 ? count - 1 : 1);
  for (int ch = 0; ch < c; ch++) {
    running_mean[ch] = (float)(momentum * (double)running_mean[ch] + (1 - (double)momentum) * moments[2 * ch]);
    running_var[ch] =
        (float)(momentum * (double)running_var[ch] + (1 - (double)momentum) * moments[2 * ch + 1] * unbiased);
  }
}

// A consumer's prologue for one channel: the forward's own s and t (see coef), from the saved float mean.
static void prologue_of(float gamma, float beta, float mean, float invstd, float *scale, float *shift) {
  *scale = gamma * invstd;
  *shift = bn_shift(beta, mean, *scale);
}

// kn_bn_train's statistics, running statistics included; moments [c][2] as statistics() leaves them.
static void bn_batch(const Norm *k, float eps, float momentum, KIn x, float *running_mean, float *running_var,
                     float *mean, float *invstd, double *moments, KWork w) {
  statistics(k, eps, x, mean, invstd, moments, w);
  update_running(k->c, (double)k->n * k->hw, momentum, moments, running_mean, running_var);
}

void kn_bn_train(int n, int c, int hw, float eps, float momentum, KIn x, const float *gamma, const float *beta,
                 float *running_mean, float *running_var, float *mean, float *invstd, bool relu, float *y,
                 KWork work) {
  Norm k = {n, c, hw, 0};
  bn_batch(&k, eps, momentum, x, running_mean, running_var, mean, invstd, set_part(work, n, c), work);
  normalise(&k, x, gamma, beta, mean, invstd, relu, y, work);
}

void kn_bn_stats(int n, int c, int hw, float eps, float momentum, KIn x, const float *gamma, const float *beta,
                 float *running_mean, float *running_var, float *mean, float *invstd, float *scale, float *shift,
                 KWork work) {
  Norm k = {n, c, hw, 0};
  bn_batch(&k, eps, momentum, x, running_mean, running_var, mean, invstd, set_part(work, n, c), work);
  for (int ch = 0; ch < c; ch++)
    prologue_of(gamma[ch], beta[ch], mean[ch], invstd[ch], &scale[ch], &shift[ch]);
}

// The parts' sums are added in part order, on one thread: parts are few next to the values they sum. The
// variance is E[x^2] - mean^2 in double, clamped at 0 against cancellation.
void kn_bn_from_sums(int c, int parts, int64_t count, const double *stats, float eps, float momentum,
                     const float *gamma, const float *beta, float *running_mean, float *running_var, float *mean,
                     float *invstd, float *scale, float *shift, KWork work) {
  const size_t width = (size_t)KB * (size_t)kb_blocks(c);
  double *moments = set_part(work, 0, c); // the sums first
  memset(moments, 0, 2 * (size_t)c * sizeof *moments);
  for (int p = 0; p < parts; p++)
    for (int ch = 0; ch < c; ch++) {
      moments[2 * ch] += stats[(size_t)p * 2 * width + (size_t)ch];
      moments[2 * ch + 1] += stats[((size_t)p * 2 + 1) * width + (size_t)ch];
    }
  for (int ch = 0; ch < c; ch++) {
    double mu = moments[2 * ch] / (double)count, var = moments[2 * ch + 1] / (double)count - mu * mu;
    moments[2 * ch] = mu;
    moments[2 * ch + 1] = var > 0 ? var : 0;
    mean[ch] = (float)mu;
    invstd[ch] = (float)(1 / sqrt(moments[2 * ch + 1] + eps));
  }
  update_running(c, (double)count, momentum, moments, running_mean, running_var);
  for (int ch = 0; ch < c; ch++)
    prologue_of(gamma[ch], beta[ch], mean[ch], invstd[ch], &scale[ch], &shift[ch]);
}

// The inference invstd of a channel, as kn_bn_eval and kn_bn_eval_coeffs use it.
static float eval_invstd(float eps, float running_var) { return (float)(1 / sqrt((double)running_var + eps)); }

void kn_bn_eval(int n, int c, int hw, float eps, KIn x, const float *gamma, const float *beta,
                const float *running_mean, const float *running_var, bool relu, float *y, KWork work) {
  Norm k = {n, c, hw, 0};
  float *invstd = set_part(work, n, c);
  for (int ch = 0; ch < c; ch++)
    invstd[ch] = eval_invstd(eps, running_var[ch]);
  normalise(&k, x, gamma, beta, running_mean, invstd, relu, y, work);
}

void kn_bn_eval_coeffs(int c, float eps, const float *gamma, const float *beta, const float *running_mean,
                       const float *running_var, float *scale, float *shift) {
  for (int ch = 0; ch < c; ch++)
    prologue_of(gamma[ch], beta[ch], running_mean[ch], eval_invstd(eps, running_var[ch]), &scale[ch], &shift[ch]);
}

void kn_bn_bwd(int n, int c, int hw, KIn x, const float *gamma, const float *beta, const float *mean,
               const float *invstd, bool relu, const float *dy, float *dgamma, float *dbeta, KOut dx, KWork work) {
  Norm k = {n, c, hw, 0};
  backward(&k, x, gamma, beta, mean, invstd, relu, dy, dgamma, dbeta, dx, work);
}

void kn_gn_fwd(int n, int c, int hw, int groups, float eps, KIn x, const float *gamma, const float *beta,
               float *mean, float *invstd, bool relu, float *y, KWork work) {
  Norm k = {n, c, hw, groups};
  statistics(&k, eps, x, mean, invstd, NULL, work);
  normalise(&k, x, gamma, beta, mean, invstd, relu, y, work);
}

void kn_gn_bwd(int n, int c, int hw, int groups, KIn x, const float *gamma, const float *beta, const float *mean,
               const float *invstd, bool relu, const float *dy, float *dgamma, float *dbeta, KOut dx, KWork work) {
  Norm k = {n, c, hw, groups};
  backward(&k, x, gamma, beta, mean, invstd, relu, dy, dgamma, dbeta, dx, work);
}
