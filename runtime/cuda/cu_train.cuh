// cu_train.cuh: the loss with its gradient (kern_loss.c's kl_*), sums of
// squares for the L2 term (ko_sumsq) and the optimizer updates (trainer.c's
// caec_update over kern_optim.c).
#ifndef CAEC_CU_TRAIN_CUH
#define CAEC_CU_TRAIN_CUH

#include "cu_pointwise.cuh"
#include "kinds.h"

// ---- the loss ---------------------------------------------------------------------------------
//
// cu_loss(stage, work, loss, sigmoid, n, h, w, in, t, y_out, d, loss_out): images [n][h][w];
// in is y, or the logits z when sigmoid (then y = sigmoid(z) goes to y_out, and d is with
// respect to z); d (nullable) the gradient; loss_out[0] = what kl_mse, kl_dssim or their
// _sigmoid variants return. Three stages, whichever the loss:
//   0  MSE: a block per chunk of CU_LOSS_CHUNK values of an image: y, the gradient and the
//      chunk's sum of squared errors. DSSIM: a block per 16 x 16 tile of an image's SSIM map:
//      the window's rows then columns over the tile's 26 x 26 pixels in shared memory, the
//      tile's sum of SSIM, and the map's partials d<y>, d<y^2>, d<y t> (times the gradient's
//      scale) into the workspace.
//   1  DSSIM with d: a block per 16 x 16 tile of pixels: the partials of the 26 x 26 map
//      positions that reach it, spread back by the window's adjoint (columns, then rows).
//   2  one block: each image's sum over its chunks or tiles in order, the images' terms added
//      by a tree.
// As in kern_loss.c sums are in double, the window's taps are added in its order and the
// local moments are filtered in double, so under the emulator y and d are its bits and the
// loss differs only by the order of its sums. A stage the loss does not need returns at once.
// The sizes (CU_WIN, CU_TILE, CU_HALO, CU_LOSS_CHUNK) and each stage's blocks (CuLoss) are in cu_plan.h.

// Shared doubles of a DSSIM block: stage 0's y and t of the tile's pixels and the rows pass
// [5][CU_HALO][CU_TILE]; stage 1 needs fewer (3 [CU_HALO][CU_HALO] and 3 [CU_TILE][CU_HALO]).
enum { CU_SSIM_SHARED = 2 * CU_HALO * CU_HALO + 5 * CU_HALO * CU_TILE };
CU_STATIC_ASSERT((CU_WIN + CU_SSIM_SHARED + CU_THREADS) * 8 <= CU_STATIC_SHARED_MAX,
                 "the SSIM tiles exceed static shared memory");

// tf.image.ssim's window: the normalised 11-tap factor exp(-u^2 / (2 sigma^2)), sigma 1.5.
CU_DEVICE void cu_gaussian(double *win) {
  double sum = 0;
  for (int a = 0; a < CU_WIN; a++) {
    double u = a - (CU_WIN - 1) / 2.0;
    win[a] = exp(-u * u / (2 * 1.5 * 1.5));
    sum += win[a];
  }
  for (int a = 0; a < CU_WIN; a++)
    win[a] /= sum;
}

// Stage 0 of MSE, chunk b: y (y_out when sigmoid), d = (2 / (n h w)) (y - t) (times y (1 - y)
// when sigmoid), and the chunk's sum of (y - t)^2.
CU_DEVICE void cu_mse_chunk(const CuLoss *g, int b, bool sigmoid, const float *in, const float *t, float *y_out,
                            float *d, double *part) {
  const int64_t hw = (int64_t)g->h * g->w, base = b / g->chunks * hw, from = (int64_t)(b % g->chunks) * CU_LOSS_CHUNK;
  const int64_t end = hw - from < CU_LOSS_CHUNK ? hw : from + CU_LOSS_CHUNK;
  const float scale = (float)(2 / ((double)g->n * (double)hw));
  double sum = 0;
  for (int64_t at = base + from + (int64_t)threadIdx.x; at < base + end; at += CU_THREADS) {
    float y = sigmoid ? cu_sigmoid1(in[at]) : in[at];
    double e = (double)y - t[at];
    sum += e * e;
    if (sigmoid)
      y_out[at] = y;
    if (d) {
      float v = scale * (y - t[at]);
      d[at] = sigmoid ? v * (y * (1 - y)) : v;
    }
  }
  sum = cu_block_sum(sum, 1);
  if (threadIdx.x == 0)
    part[b] = sum;
}

// Stage 0 of DSSIM, map tile b (kern_loss.c's image_ssim up to the partial maps): sh holds y, t
// [CU_HALO][CU_HALO] of the pixels from the tile's corner, then the rows pass [5][CU_HALO][CU_TILE]
// of y, t, y^2, t^2, y t. Pixels that no tile's corner block holds (past the last one) belong to
// the last tile of their row or column, which writes them to y_out.
CU_DEVICE void cu_ssim_maps(const CuLoss *g, int b, bool sigmoid, const float *in, const float *t, float *y_out,
                            float *d, const double *win, double *sh, double *part, double *maps) {
  const int i = b / g->tiles, ti = b % g->tiles / g->tiles_w, tj = b % g->tiles % g->tiles_w;
  const int r0 = ti * CU_TILE, c0 = tj * CU_TILE, tid = (int)threadIdx.x, last_ti = (g->tiles - 1) / g->tiles_w;
  double *ys = sh, *ts = ys + CU_HALO * CU_HALO, *rows = ts + CU_HALO * CU_HALO;
  for (int e = tid; e < CU_HALO * CU_HALO; e += CU_THREADS) {
    int r = r0 + e / CU_HALO, col = c0 + e % CU_HALO;
    double yv = 0, tv = 0;
    if (r < g->h && col < g->w) {
      int64_t at = ((int64_t)i * g->h + r) * g->w + col;
      float y = sigmoid ? cu_sigmoid1(in[at]) : in[at];
      int own_r = r / CU_TILE < last_ti ? r / CU_TILE : last_ti;
      int own_c = col / CU_TILE < g->tiles_w - 1 ? col / CU_TILE : g->tiles_w - 1;
      if (sigmoid && own_r == ti && own_c == tj)
        y_out[at] = y;
      yv = y;
      tv = t[at];
    }
    ys[e] = yv;
    ts[e] = tv;
  }
  CU_SYNC();
  for (int e = tid; e < CU_HALO * CU_TILE; e += CU_THREADS) {
    int rr = e / CU_TILE, jj = e % CU_TILE;
    const double *yr = ys + rr * CU_HALO + jj, *tr = ts + rr * CU_HALO + jj;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    for (int a = 0; a < CU_WIN; a++) {
      s0 += win[a] * yr[a];
      s1 += win[a] * tr[a];
      s2 += win[a] * (yr[a] * yr[a]);
      s3 += win[a] * (tr[a] * tr[a]);
      s4 += win[a] * (yr[a] * tr[a]);
    }
    rows[(0 * CU_HALO + rr) * CU_TILE + jj] = s0;
    rows[(1 * CU_HALO + rr) * CU_TILE + jj] = s1;
    rows[(2 * CU_HALO + rr) * CU_TILE + jj] = s2;
    rows[(3 * CU_HALO + rr) * CU_TILE + jj] = s3;
    rows[(4 * CU_HALO + rr) * CU_TILE + jj] = s4;
  }
  CU_SYNC();
  const int ii = tid / CU_TILE, jj = tid % CU_TILE, mi = r0 + ii, mj = c0 + jj;
  double ssim = 0;
  if (mi < g->oh && mj < g->ow) {
    double m[5];
    for (int q = 0; q < 5; q++) {
      double s = 0;
      for (int a = 0; a < CU_WIN; a++)
        s += win[a] * rows[(q * CU_HALO + ii + a) * CU_TILE + jj];
      m[q] = s;
    }
    const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03, my = m[0], mt = m[1], eyy = m[2], ett = m[3], eyt = m[4];
    double a1 = 2 * my * mt + c1, b1 = my * my + mt * mt + c1;
    double a2 = 2 * (eyt - my * mt) + c2, b2 = (eyy - my * my) + (ett - mt * mt) + c2;
    ssim = a1 * a2 / (b1 * b2);
    if (d) { // the partials, times the gradient's scale -0.5 / n over the map's size
      const int64_t plane = (int64_t)g->n * g->oh * g->ow, at = ((int64_t)i * g->oh + mi) * g->ow + mj;
      double k = -0.5 / g->n / ((double)g->oh * g->ow);
      maps[at] = (2 * mt * (a2 - a1) / (b1 * b2) - 2 * my * ssim * (1 / b1 - 1 / b2)) * k;
      maps[plane + at] = -ssim / b2 * k;
      maps[2 * plane + at] = 2 * a1 / (b1 * b2) * k;
    }
  }
  ssim = cu_block_sum(ssim, 1);
  if (tid == 0)
    part[b] = ssim;
}

// Stage 1 of DSSIM, pixel tile b: d = spread(d<y>) + 2 y spread(d<y^2>) + t spread(d<y t>), the
// partial maps spread back by the window's taps reversed: sh holds the maps' [3][CU_HALO][CU_HALO]
// positions from 10 above and left of the tile's corner (0 outside the map), then their sums up
// the columns [3][CU_TILE][CU_HALO]; the sums along the rows are each pixel's.
CU_DEVICE void cu_ssim_grad(const CuLoss *g, int b, bool sigmoid, const float *in, const float *t, const float *y_out,
                            float *d, const double *win, double *sh, const double *maps) {
  const int i = b / g->ptiles, r0 = b % g->ptiles / g->ptiles_w * CU_TILE, c0 = b % g->ptiles % g->ptiles_w * CU_TILE;
  const int tid = (int)threadIdx.x, halo2 = CU_HALO * CU_HALO;
  const int64_t plane = (int64_t)g->n * g->oh * g->ow;
  double *part = sh, *up = part + 3 * halo2;
  for (int e = tid; e < 3 * halo2; e += CU_THREADS) {
    int q = e / halo2, mi = r0 - (CU_WIN - 1) + e % halo2 / CU_HALO, mj = c0 - (CU_WIN - 1) + e % CU_HALO;
    bool inside = mi >= 0 && mi < g->oh && mj >= 0 && mj < g->ow;
    part[e] = inside ? maps[q * plane + ((int64_t)i * g->oh + mi) * g->ow + mj] : 0;
  }
  CU_SYNC();
  for (int e = tid; e < 3 * CU_TILE * CU_HALO; e += CU_THREADS) {
    int q = e / (CU_TILE * CU_HALO), rr = e % (CU_TILE * CU_HALO) / CU_HALO, jj = e % CU_HALO;
    double s = 0;
    for (int a = 0; a < CU_WIN; a++)
      s += win[CU_WIN - 1 - a] * part[(q * CU_HALO + rr + a) * CU_HALO + jj];
    up[e] = s;
  }
  CU_SYNC();
  const int rr = tid / CU_TILE, cc = tid % CU_TILE, r = r0 + rr, col = c0 + cc;
  if (r < g->h && col < g->w) {
    double sp[3];
    for (int q = 0; q < 3; q++) {
      double s = 0;
      for (int a = 0; a < CU_WIN; a++)
        s += win[CU_WIN - 1 - a] * up[(q * CU_TILE + rr) * CU_HALO + cc + a];
      sp[q] = s;
    }
    int64_t at = ((int64_t)i * g->h + r) * g->w + col;
    float y = sigmoid ? y_out[at] : in[at];
    float v = (float)(sp[0] + 2.0 * y * sp[1] + (double)t[at] * sp[2]);
    d[at] = sigmoid ? v * (y * (1 - y)) : v;
  }
}

CU_DEVICE void cu_loss(int stage, void *work, int loss, bool sigmoid, int n, int h, int w, const float *in,
                       const float *t, float *y_out, float *d, double *loss_out) {
  CU_SHARED double win[CU_WIN];
  CU_SHARED double sh[CU_SSIM_SHARED];
  const CuLoss g = cu_loss_geom(n, h, w);
  const bool mse = loss == CAEC_MSE;
  const int b = (int)blockIdx.x;
  double *part = (double *)work, *maps = part + cu_loss_parts(&g);
  if (stage == 2) { // the loss: the mean squared error, or the mean over images of (1 - ssim) / 2
    const int per = mse ? g.chunks : g.tiles;
    double sum = 0;
    for (int i = (int)threadIdx.x; i < n; i += CU_THREADS) {
      double s = 0;
      for (int j = 0; j < per; j++)
        s += part[(int64_t)i * per + j];
      sum += mse ? s : (1 - s / ((double)g.oh * g.ow)) / 2;
    }
    sum = cu_block_sum(sum, 1);
    if (threadIdx.x == 0)
      loss_out[0] = sum / (mse ? (double)n * ((double)h * w) : n);
    return;
  }
  if (mse) {
    if (stage == 0 && b < n * g.chunks)
      cu_mse_chunk(&g, b, sigmoid, in, t, y_out, d, part);
    return;
  }
  if (stage == 0 ? b >= n * g.tiles : !d || b >= n * g.ptiles)
    return;
  if (threadIdx.x == 0)
    cu_gaussian(win);
  CU_SYNC();
  if (stage == 0)
    cu_ssim_maps(&g, b, sigmoid, in, t, y_out, d, win, sh, part, maps);
  else
    cu_ssim_grad(&g, b, sigmoid, in, t, y_out, d, win, sh, maps);
}


// ---- sums of squares ----------------------------------------------------------------------------
//
// cu_l2_sumsq: out[0] = sum of w^2 in double over ranges of params (offset, count in floats),
// as if laid end to end. Two stages: 0, a block per chunk of CU_SUMSQ_CHUNK values, each thread
// summing every 256th value of it, the threads' sums added by a tree into the workspace; 1, one
// block adds the chunks' sums the same way.

CU_DEVICE void cu_l2_sumsq(int stage, void *work, const float *params, int nranges, const int64_t ranges[][2],
                           double *out) {
  double *part = (double *)work, sum = 0;
  if (stage == 0) {
    const int64_t lo = (int64_t)blockIdx.x * CU_SUMSQ_CHUNK, hi = lo + CU_SUMSQ_CHUNK;
    int64_t start = 0; // of range r, end to end
    for (int r = 0; r < nranges && start < hi; start += ranges[r][1], r++)
      for (int64_t j = (lo > start ? lo : start) + (int64_t)threadIdx.x; j < hi && j < start + ranges[r][1];
           j += CU_THREADS) {
        float v = params[ranges[r][0] + (j - start)];
        sum += (double)v * v;
      }
  } else {
    int64_t total = 0;
    for (int r = 0; r < nranges; r++)
      total += ranges[r][1];
    for (int64_t j = threadIdx.x; j < (total + CU_SUMSQ_CHUNK - 1) / CU_SUMSQ_CHUNK; j += CU_THREADS)
      sum += part[j];
  }
  sum = cu_block_sum(sum, 1);
  if (threadIdx.x == 0) {
    if (stage == 0)
      part[blockIdx.x] = sum;
    else
      out[0] = sum;
  }
}

// out[0] = sum of w^2 over count floats (ko_sumsq): one range.
CU_DEVICE void cu_sumsq(int stage, void *work, int64_t count, const float *w, double *out) {
  const int64_t one[1][2] = {{0, count}};
  cu_l2_sumsq(stage, work, w, 1, one, out);
}

// ---- optimizer updates --------------------------------------------------------------------------

// One parameter of a fused update: values [first, first + count) of the launch's, at w, g and opt
// floats into the params, grads and optim arenas (Adam's v at opt + count); l2: in the L2 term.
typedef struct CuParamSpan {
  int64_t first, count, w, g, opt, l2;
} CuParamSpan;

// The span that holds value i of the launch (spans in order of first).
CU_DEVICE const CuParamSpan *cu_param_span(const CuParamSpan *spans, int nspans, int64_t i) {
  int lo = 0, hi = nspans - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (spans[mid].first <= i)
      lo = mid;
    else
      hi = mid - 1;
  }
  return &spans[lo];
}

// caec_update of every parameter in spans, in one launch: per value, the L2 term 2 l2 w (l2 when
// flagged) added to g, then, when h->update, RMSprop (opt: the mean square), Adam (opt: m, then v
// at opt + count; step t = h->step + 1) or SGD with momentum (opt: the velocity), with
// kern_optim.c's float casts and formulas, so under the emulator the results are its bits. One
// stage, no workspace; a thread per value, any grid: the plan is cu_plan_elems(total values).
CU_DEVICE void cu_update(const CuHyper *h, float *params, float *grads, float *optim, int nspans,
                         const CuParamSpan *spans) {
  CU_SHARED float adam_step; // lr sqrt(1 - b2^t) / (1 - b1^t), once per block
  const float lr = (float)h->lr, eps = (float)h->eps;
  const float rho = (float)h->rho, b1 = (float)h->beta1, b2 = (float)h->beta2, momentum = (float)h->momentum;
  if (threadIdx.x == 0 && h->update && h->optimizer == CAEC_ADAM) {
    double t = (double)(h->step + 1);
    adam_step = (float)(lr * sqrt(1 - pow((double)b2, t)) / (1 - pow((double)b1, t)));
  }
  CU_SYNC();
  const int64_t total = spans[nspans - 1].first + spans[nspans - 1].count;
  for (int64_t i = cu_first(); i < total; i += cu_step()) {
    const CuParamSpan *sp = cu_param_span(spans, nspans, i);
    const int64_t j = i - sp->first;
    float *w = params + sp->w + j, *g = grads + sp->g + j, *opt = optim + sp->opt + j;
    const float k = 2 * (sp->l2 ? (float)h->l2 : 0.0f);
    float gi = *g + k * *w;
    *g = gi;
    if (!h->update)
      continue;
    if (h->optimizer == CAEC_RMSPROP) {
      float ms = rho * opt[0] + (1 - rho) * gi * gi;
      opt[0] = ms;
      *w -= lr * gi / (sqrtf(ms) + eps);
    } else if (h->optimizer == CAEC_ADAM) {
      float m = b1 * opt[0] + (1 - b1) * gi, v = b2 * opt[sp->count] + (1 - b2) * gi * gi;
      opt[0] = m;
      opt[sp->count] = v;
      *w -= adam_step * m / (sqrtf(v) + eps);
    } else {
      float v = momentum * opt[0] - lr * gi;
      opt[0] = v;
      *w += v;
    }
  }
}

#endif
