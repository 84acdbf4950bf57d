// cu_norm.cuh: batch norm and group norm (kern_norm.c's kn_*), and the
// batch-norm row sums that kern_conv.c's epilogue leaves in KOut.stats.
//
// As in kern_norm.c, both norms normalise sets of values that are unions of
// whole channel planes, a channel across the batch (bn) or a group of channels
// of one image (gn), and share their code. The training ops run three stages:
//   0  a block per chunk of a plane (cu_span): per lane, partial sums over the
//      chunk into the workspace, [image][channel][chunk] (cu_norm_parts each);
//   1  a block per set: its partials combined (strided sums in member order,
//      then a tree), the set's results written by thread 0;
//   2  a block per chunk again: the elementwise pass, each thread with its
//      lane's coefficients (CuCoef).
// bn_stats stops after stage 1; bn_eval is stage 2 alone, on the running
// statistics. Chunks are large (cu_span), so partials are few next to the
// values and stage 1 is short. The ops apply no prologues (KIn.pro_*).
//
// Shapes: x (one or two pieces), y, dy and dx (one or two pieces) blocked
// [n][c][hw]; gamma, beta, running_mean, running_var, scale, shift, dgamma,
// dbeta [c]; mean, invstd [c] for bn, [n][groups] for gn.
#ifndef CAEC_CU_NORM_CUH
#define CAEC_CU_NORM_CUH

#include "cu_pointwise.cuh"

// ---- a block per chunk of a plane -----------------------------------------------------------
//
// Up to CU_CHUNK floats of a plane per block (cu_plan.h's cu_chunks). Thread t takes lane t % S
// of pixels t / S, t / S + 256 / S, ... of the chunk, S the tensor's pixel stride: a warp reads
// 128 contiguous bytes.

// A thread's share of a pass over the planes of a tensor of c channels: blockIdx.x = (i * blocks
// + bk) * chunks + chunk.
typedef struct CuSpan {
  int i, bk, chunk;
  int stride, lane; // the tensor's pixel stride, this thread's lane
  int begin, end;   // the chunk's pixels
  int first, step;  // this thread's: first, first + step, ... < end
} CuSpan;

CU_DEVICE CuSpan cu_span(int c, int hw) {
  CuSpan s;
  int chunks = cu_chunks(c, hw), px = cu_chunk_pixels(c), plane = (int)(blockIdx.x / (unsigned)chunks);
  s.i = plane / kb_blocks(c);
  s.bk = plane % kb_blocks(c);
  s.chunk = (int)(blockIdx.x % (unsigned)chunks);
  s.stride = cu_stride_of(c);
  s.lane = (int)threadIdx.x % s.stride;
  s.begin = s.chunk * px;
  s.end = hw - s.begin < px ? hw : s.begin + px;
  s.first = s.begin + (int)threadIdx.x / s.stride;
  s.step = CU_THREADS / s.stride;
  return s;
}

// ---- the sets ----------------------------------------------------------------------------------

// (CuNorm, cu_sets and cu_norm_parts, the workspace's partials, are in cu_plan.h.)
CU_DEVICE int cu_set_of(const CuNorm *k, int i, int ch) {
  return k->groups ? i * k->groups + ch / (k->c / k->groups) : ch;
}

// The partials of set s, or of channel s across the batch when per_channel (the same for bn):
// member m < count is at first + (m / chunks) step + m % chunks; the set has `planes` planes.
typedef struct CuMembers {
  int64_t first, step;
  int count, planes;
} CuMembers;

CU_DEVICE CuMembers cu_members(const CuNorm *k, int s, bool per_channel) {
  CuMembers m;
  int chunks = cu_chunks(k->c, k->hw);
  if (k->groups && !per_channel) {
    int cg = k->c / k->groups;
    m.first = ((int64_t)(s / k->groups) * k->c + s % k->groups * cg) * chunks;
    m.step = chunks;
    m.planes = cg;
  } else {
    m.first = (int64_t)s * chunks;
    m.step = (int64_t)k->c * chunks;
    m.planes = k->n;
  }
  m.count = m.planes * chunks;
  return m;
}

CU_DEVICE int64_t cu_member(const CuMembers *m, int chunks, int j) {
  return m->first + (int64_t)(j / chunks) * m->step + j % chunks;
}

// ---- the coefficients of a lane -------------------------------------------------------------

// kern_norm.c's Coef, for one lane: the forward is y = s x + t with s = gamma invstd and t =
// beta - mean s rounded once from double, one multiply-add; the backward's relu mask and a
// consumer convolution's prologue (scale, shift = s, t) compute the same bits, so the mask is
// exactly the forward's whichever wrote the activation. xhat = (x - m) inv; g0 and gx are the
// backward's terms. A padding lane has all zero and maps to 0.
typedef struct CuCoef {
  float m, inv, s, t, g0, gx;
} CuCoef;

CU_DEVICE CuCoef cu_coef(float gamma, float beta, float mean, float invstd) {
  CuCoef cf;
  cf.m = mean;
  cf.inv = invstd;
  cf.s = gamma * invstd;
  cf.t = (float)((double)beta - (double)mean * (double)cf.s);
  cf.g0 = cf.gx = 0;
  return cf;
}

// This thread's lane's coefficients from the saved statistics (mean, invstd per set).
CU_DEVICE CuCoef cu_lane_coef(const CuNorm *k, const CuSpan *s, const float *gamma, const float *beta,
                              const float *mean, const float *invstd) {
  int ch = s->bk * KB + s->lane;
  if (ch >= k->c) {
    CuCoef zero = {0, 0, 0, 0, 0, 0};
    return zero;
  }
  int set = cu_set_of(k, s->i, ch);
  return cu_coef(gamma[ch], beta[ch], mean[set], invstd[set]);
}

CU_DEVICE float cu_affine(const CuCoef *cf, float x) { return fmaf(cf->s, x, cf->t); }

CU_DEVICE float cu_masked_dy(const CuCoef *cf, float dy, float x, bool relu) {
  return relu && !(cu_affine(cf, x) > 0) ? 0.0f : dy;
}

// The inference invstd of a channel (kn_bn_eval, kn_bn_eval_coeffs).
CU_DEVICE float cu_eval_invstd(float running_var, float eps) { return (float)(1 / sqrt((double)running_var + eps)); }

// ---- the passes ----------------------------------------------------------------------------------

// Stage 0 of the statistics: per lane of the chunk, the sum and the sum of squared deviations
// from the chunk's own mean (a second pass over the chunk, which is then in cache: a large mean
// costs no precision), into sum and m2 [image][channel][chunk].
CU_DEVICE void cu_norm_moments(const CuNorm *k, KIn x, double *sum, double *m2) {
  CuSpan s = cu_span(k->c, k->hw);
  int ps;
  const float *xp = cu_in_plane(x, k->c, k->hw, s.i, s.bk, &ps);
  double a = 0;
  for (int p = s.first; p < s.end; p += s.step)
    a += cu_get(xp, ps, p, s.lane);
  double total = cu_block_sum(a, s.stride), mean = total / (s.end - s.begin), q = 0;
  for (int p = s.first; p < s.end; p += s.step) {
    double d = cu_get(xp, ps, p, s.lane) - mean;
    q += d * d;
  }
  q = cu_block_sum(q, s.stride);
  int ch = s.bk * KB + s.lane;
  if ((int)threadIdx.x < s.stride && ch < k->c) {
    int64_t at = ((int64_t)s.i * k->c + ch) * cu_chunks(k->c, k->hw) + s.chunk;
    sum[at] = total;
    m2[at] = q;
  }
}

// Stage 1 of the statistics, set blockIdx.x: its mean and biased variance (every thread gets
// them), by Chan's formula over the chunks j of n_j values: M2 = sum M2_j + n_j (mean_j - mean)^2.
CU_DEVICE void cu_norm_combine(const CuNorm *k, const double *sum, const double *m2, double *mu, double *var) {
  CuMembers m = cu_members(k, (int)blockIdx.x, false);
  int chunks = cu_chunks(k->c, k->hw), px = cu_chunk_pixels(k->c);
  double values = (double)m.planes * k->hw, a = 0, q = 0;
  for (int j = (int)threadIdx.x; j < m.count; j += CU_THREADS)
    a += sum[cu_member(&m, chunks, j)];
  double mean = cu_block_sum(a, 1) / values;
  for (int j = (int)threadIdx.x; j < m.count; j += CU_THREADS) {
    int64_t at = cu_member(&m, chunks, j);
    int from = (int)(at % chunks) * px, n = k->hw - from < px ? k->hw - from : px;
    double d = sum[at] / n - mean;
    q += m2[at] + n * d * d;
  }
  *mu = mean;
  *var = cu_block_sum(q, 1) / values;
}

// y = s x + t, then relu, over this thread's pixels of the chunk, with its lane's coefficients.
CU_DEVICE void cu_norm_forward(const CuNorm *k, const CuSpan *s, KIn x, const CuCoef *cf, bool relu, float *y) {
  int ps;
  const float *xp = cu_in_plane(x, k->c, k->hw, s->i, s->bk, &ps);
  float *yp = y + ((int64_t)s->i * kb_blocks(k->c) + s->bk) * k->hw * s->stride;
  for (int p = s->first; p < s->end; p += s->step) {
    float v = cu_affine(cf, cu_get(xp, ps, p, s->lane));
    yp[p * s->stride + s->lane] = relu && !(v > 0) ? 0.0f : v;
  }
}

// Saves a set's statistics: mean, and invstd = 1 / sqrt(var + eps) rounded once.
CU_DEVICE void cu_norm_save(int set, double mu, double var, float eps, float *mean, float *invstd) {
  mean[set] = (float)mu;
  invstd[set] = (float)(1 / sqrt(var + eps));
}

// A batch norm's channel ch from its batch mean and biased variance over count values: mean
// and invstd saved, Keras's running statistics (with the unbiased variance; for a single value
// TensorFlow's fused kernel takes count - 1 as 1), and, when scale is set, a consumer's
// prologue: the forward's s and t (cu_coef) from the saved floats.
CU_DEVICE void cu_bn_finish(int ch, double mu, double var, double count, float eps, float momentum,
                            const float *gamma, const float *beta, float *running_mean, float *running_var,
                            float *mean, float *invstd, float *scale, float *shift) {
  double unbiased = count / (count > 1 ? count - 1 : 1);
  cu_norm_save(ch, mu, var, eps, mean, invstd);
  running_mean[ch] = (float)(momentum * (double)running_mean[ch] + (1 - (double)momentum) * mu);
  running_var[ch] = (float)(momentum * (double)running_var[ch] + (1 - (double)momentum) * var * unbiased);
  if (scale) {
    CuCoef cf = cu_coef(gamma[ch], beta[ch], mean[ch], invstd[ch]);
    scale[ch] = cf.s;
    shift[ch] = cf.t;
  }
}

// Stages 0 and 1 of a training batch norm (kn_bn_train's statistics, or kn_bn_stats with scale
// and shift). Workspace: sum and m2.
CU_DEVICE void cu_bn_batch(int stage, void *work, const CuNorm *k, float eps, float momentum, KIn x,
                           const float *gamma, const float *beta, float *running_mean, float *running_var,
                           float *mean, float *invstd, float *scale, float *shift) {
  double *sum = (double *)work, *m2 = sum + cu_norm_parts(k);
  if (stage == 0) {
    cu_norm_moments(k, x, sum, m2);
  } else {
    double mu, var;
    cu_norm_combine(k, sum, m2, &mu, &var);
    if (threadIdx.x == 0)
      cu_bn_finish((int)blockIdx.x, mu, var, (double)k->n * k->hw, eps, momentum, gamma, beta, running_mean,
                   running_var, mean, invstd, scale, shift);
  }
}

// Over the members of m: the sums of w sdy and of w sdx, w the member's channel's gamma (1 when
// gamma is NULL); every thread gets them.
CU_DEVICE void cu_member_sums(const CuNorm *k, CuMembers m, const double *sdy, const double *sdx, const float *gamma,
                              double *a, double *q) {
  const int chunks = cu_chunks(k->c, k->hw);
  double sa = 0, sq = 0;
  for (int j = (int)threadIdx.x; j < m.count; j += CU_THREADS) {
    int64_t at = cu_member(&m, chunks, j);
    double w = gamma ? gamma[at / chunks % k->c] : 1;
    sa += w * sdy[at];
    sq += w * sdx[at];
  }
  *a = cu_block_sum(sa, 1);
  *q = cu_block_sum(sq, 1);
}

// The backward, kern_norm.c's `backward`. Workspace: sdy and sdx [image][channel][chunk], then
// g0 and gx per set (floats, as kern_norm.c rounds them).
//   0  per lane of a chunk: sum of dy and of dy xhat (dy after the relu's mask);
//   1  block b: for set b < sets, g0 = invstd mean(gamma dy), gx = invstd mean(gamma dy xhat);
//      for channel b < c, dbeta and dgamma, the channel's sums over the batch;
//   2  dx = s dy - g0 - xhat gx per value (invstd (gamma dy - mean(gamma dy) - xhat mean(gamma dy xhat))).
CU_DEVICE void cu_norm_backward(int stage, void *work, const CuNorm *k, KIn x, const float *gamma,
                                const float *beta, const float *mean, const float *invstd, bool relu,
                                const float *dy, float *dgamma, float *dbeta, KOut dx) {
  const int64_t parts = cu_norm_parts(k);
  double *sdy = (double *)work, *sdx = sdy + parts;
  float *g0 = (float *)(sdx + parts), *gx = g0 + cu_sets(k);
  if (stage == 1) {
    const int b = (int)blockIdx.x;
    double a, q;
    if (b < cu_sets(k)) {
      CuMembers m = cu_members(k, b, false);
      cu_member_sums(k, m, sdy, sdx, gamma, &a, &q);
      if (threadIdx.x == 0) {
        g0[b] = (float)(invstd[b] * a / ((double)m.planes * k->hw));
        gx[b] = (float)(invstd[b] * q / ((double)m.planes * k->hw));
      }
    }
    if (b < k->c) {
      cu_member_sums(k, cu_members(k, b, true), sdy, sdx, NULL, &a, &q);
      if (threadIdx.x == 0) {
        dbeta[b] = (float)a;
        dgamma[b] = (float)q;
      }
    }
    return;
  }
  CuSpan s = cu_span(k->c, k->hw);
  CuCoef cf = cu_lane_coef(k, &s, gamma, beta, mean, invstd);
  int ch = s.bk * KB + s.lane, ps;
  const float *xp = cu_in_plane(x, k->c, k->hw, s.i, s.bk, &ps);
  const float *dyp = dy + ((int64_t)s.i * kb_blocks(k->c) + s.bk) * k->hw * s.stride;
  if (stage == 0) {
    double a = 0, q = 0;
    for (int p = s.first; p < s.end; p += s.step) {
      float xv = cu_get(xp, ps, p, s.lane), g = cu_masked_dy(&cf, dyp[p * s.stride + s.lane], xv, relu);
      a += g;
      q += (double)g * ((xv - cf.m) * cf.inv);
    }
    a = cu_block_sum(a, s.stride);
    q = cu_block_sum(q, s.stride);
    if ((int)threadIdx.x < s.stride && ch < k->c) {
      int64_t at = ((int64_t)s.i * k->c + ch) * cu_chunks(k->c, k->hw) + s.chunk;
      sdy[at] = a;
      sdx[at] = q;
    }
    return;
  }
  if (ch < k->c) {
    cf.g0 = g0[cu_set_of(k, s.i, ch)];
    cf.gx = gx[cu_set_of(k, s.i, ch)];
  }
  int ds;
  bool acc;
  float *dxp = cu_out_plane(dx, k->c, k->hw, s.i, s.bk, &ds, &acc);
  for (int p = s.first; p < s.end; p += s.step) {
    float xv = cu_get(xp, ps, p, s.lane), g = cu_masked_dy(&cf, dyp[p * s.stride + s.lane], xv, relu);
    float xhat = (xv - cf.m) * cf.inv;
    cu_put(dxp, ds, acc, p, s.lane, cf.s * g - cf.g0 - xhat * cf.gx);
  }
}


// ---- batch norm ----------------------------------------------------------------------------------

// Training: y = relu?(bn(x)) with the batch's statistics; running statistics updated, mean and
// invstd saved. Three stages (see the top).
CU_DEVICE void cu_bn_train(int stage, void *work, int n, int c, int hw, float eps, float momentum, KIn x,
                           const float *gamma, const float *beta, float *running_mean, float *running_var,
                           float *mean, float *invstd, bool relu, float *y) {
  CuNorm k = {n, c, hw, 0};
  if (stage < 2) {
    cu_bn_batch(stage, work, &k, eps, momentum, x, gamma, beta, running_mean, running_var, mean, invstd, 0, 0);
  } else {
    CuSpan s = cu_span(c, hw);
    CuCoef cf = cu_lane_coef(&k, &s, gamma, beta, mean, invstd);
    cu_norm_forward(&k, &s, x, &cf, relu, y);
  }
}

// kn_bn_train's statistics without y, and a consumer's prologue scale, shift. Two stages.
CU_DEVICE void cu_bn_stats(int stage, void *work, int n, int c, int hw, float eps, float momentum, KIn x,
                           const float *gamma, const float *beta, float *running_mean, float *running_var,
                           float *mean, float *invstd, float *scale, float *shift) {
  CuNorm k = {n, c, hw, 0};
  cu_bn_batch(stage, work, &k, eps, momentum, x, gamma, beta, running_mean, running_var, mean, invstd, scale, shift);
}

// Inference, on the running statistics. One stage, no workspace.
CU_DEVICE void cu_bn_eval(int n, int c, int hw, float eps, KIn x, const float *gamma, const float *beta,
                          const float *running_mean, const float *running_var, bool relu, float *y) {
  CuNorm k = {n, c, hw, 0};
  CuSpan s = cu_span(c, hw);
  int ch = s.bk * KB + s.lane;
  CuCoef cf = {0, 0, 0, 0, 0, 0};
  if (ch < c)
    cf = cu_coef(gamma[ch], beta[ch], running_mean[ch], cu_eval_invstd(running_var[ch], eps));
  cu_norm_forward(&k, &s, x, &cf, relu, y);
}

// Three stages (cu_norm_backward).
CU_DEVICE void cu_bn_bwd(int stage, void *work, int n, int c, int hw, KIn x, const float *gamma, const float *beta,
                         const float *mean, const float *invstd, bool relu, const float *dy, float *dgamma,
                         float *dbeta, KOut dx) {
  CuNorm k = {n, c, hw, 0};
  cu_norm_backward(stage, work, &k, x, gamma, beta, mean, invstd, relu, dy, dgamma, dbeta, dx);
}

// The statistics from the per-part sums that convolution epilogues (or cu_row_sums) leave:
// stats [parts][2][16 * blocks], count values per channel; the variance is E[x^2] - mean^2,
// clamped at 0 against cancellation. One stage, no workspace: a block per 16 channels, thread t
// summing parts t / 16, t / 16 + 16, ... of channel lane t % 16 (a warp reads two parts'
// contiguous 16 doubles), the 16 partial sums added by a tree.
CU_DEVICE void cu_bn_from_sums(int c, int parts, int64_t count, const double *stats, float eps, float momentum,
                               const float *gamma, const float *beta, float *running_mean, float *running_var,
                               float *mean, float *invstd, float *scale, float *shift) {
  const int64_t width = (int64_t)KB * kb_blocks(c);
  int lane = (int)threadIdx.x % KB, ch = (int)blockIdx.x * KB + lane;
  double a = 0, q = 0;
  for (int p = (int)threadIdx.x / KB; p < parts; p += CU_THREADS / KB) {
    a += stats[2 * p * width + ch];
    q += stats[(2 * p + 1) * width + ch];
  }
  a = cu_block_sum(a, KB);
  q = cu_block_sum(q, KB);
  if ((int)threadIdx.x < KB && ch < c) {
    double mu = a / (double)count, var = q / (double)count - mu * mu;
    cu_bn_finish(ch, mu, var > 0 ? var : 0, (double)count, eps, momentum, gamma, beta, running_mean, running_var,
                 mean, invstd, scale, shift);
  }
}

// The inference prologue of every channel: scale, shift = s, t of the running statistics. One
// stage, a thread per channel.
CU_DEVICE void cu_bn_eval_coeffs(int c, float eps, const float *gamma, const float *beta, const float *running_mean,
                                 const float *running_var, float *scale, float *shift) {
  for (int64_t ch = cu_first(); ch < c; ch += cu_step()) {
    CuCoef cf = cu_coef(gamma[ch], beta[ch], running_mean[ch], cu_eval_invstd(running_var[ch], eps));
    scale[ch] = cf.s;
    shift[ch] = cf.t;
  }
}


// ---- group norm -------------------------------------------------------------------------------------

// Forward: statistics per image and group of c / groups channels, then y = relu?(gn(x)). Three
// stages (see the top).
CU_DEVICE void cu_gn_fwd(int stage, void *work, int n, int c, int hw, int groups, float eps, KIn x,
                         const float *gamma, const float *beta, float *mean, float *invstd, bool relu, float *y) {
  CuNorm k = {n, c, hw, groups};
  double *sum = (double *)work, *m2 = sum + cu_norm_parts(&k);
  if (stage == 0) {
    cu_norm_moments(&k, x, sum, m2);
  } else if (stage == 1) {
    double mu, var;
    cu_norm_combine(&k, sum, m2, &mu, &var);
    if (threadIdx.x == 0)
      cu_norm_save((int)blockIdx.x, mu, var, eps, mean, invstd);
  } else {
    CuSpan s = cu_span(c, hw);
    CuCoef cf = cu_lane_coef(&k, &s, gamma, beta, mean, invstd);
    cu_norm_forward(&k, &s, x, &cf, relu, y);
  }
}

// Three stages (cu_norm_backward).
CU_DEVICE void cu_gn_bwd(int stage, void *work, int n, int c, int hw, int groups, KIn x, const float *gamma,
                         const float *beta, const float *mean, const float *invstd, bool relu, const float *dy,
                         float *dgamma, float *dbeta, KOut dx) {
  CuNorm k = {n, c, hw, groups};
  cu_norm_backward(stage, work, &k, x, gamma, beta, mean, invstd, relu, dy, dgamma, dbeta, dx);
}


// ---- batch-norm row sums ----------------------------------------------------------------------------

// What kern_conv.c's epilogue leaves in KOut.stats for a tensor x [n][blocks][h][w][16] (plain
// [n][h][w] when c == 1): stats[((i * h + row) * 2 + {0: sum, 1: sum of squares}) * 16 * blocks
// + channel], padding channels (and a plain tensor's lanes 1 to 15) 0. A thread per (image, row,
// channel) sums the row's w values in pixel order in double, as the epilogue does, so the sums
// are its bits. One stage, no workspace; consecutive threads write consecutive doubles.
CU_DEVICE void cu_row_sums(int n, int c, int h, int w, const float *x, double *stats) {
  const int nb = kb_blocks(c), width = KB * nb, stride = cu_stride_of(c);
  for (int64_t e = cu_first(); e < (int64_t)n * h * width; e += cu_step()) {
    int ch = (int)(e % width), bk = ch / KB, lane = ch % KB;
    int64_t row = e / width, i = row / h, r = row % h;
    double a = 0, q = 0;
    if (lane < stride) {
      const float *xp = x + ((i * nb + bk) * h + r) * w * stride + lane;
      for (int p = 0; p < w; p++) {
        float v = xp[p * stride];
        a += v;
        q += (double)v * v;
      }
    }
    stats[2 * row * width + ch] = a;
    stats[(2 * row + 1) * width + ch] = q;
  }
}


#endif
