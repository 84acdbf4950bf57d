// kern_loss.c: MSE and DSSIM with their gradients, and the per-image metrics.
// Every image is one thread's work; its loss is summed in double and the
// images' losses are added in order, so any thread count gives the same bits.
//
// SSIM is tf.image.ssim as in ref_loss.c, with the 11x11 Gaussian window
// applied as its two 11-tap factors (rows, then columns) and its gradient
// spread back by the adjoint passes (columns, then rows). Each thread reuses
// one workspace for its images. The local moments
// are filtered in double: the variances are differences of them.
#include "kern.h"

#include "errors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { WIN = KL_WIN };

// Sum of (y - t)^2 over an image, on 16 lanes so that it vectorises in a fixed order. dy (nullable)
// = scale (y - t).
static double image_sqerr(size_t count, const float *restrict y, const float *restrict t, float *restrict dy,
                          float scale) {
  double lane[KB] = {0}, sum = 0;
  size_t i = 0;
  for (; i + KB <= count; i += KB)
    for (int l = 0; l < KB; l++) {
      double d = (double)y[i + (size_t)l] - t[i + (size_t)l];
      lane[l] += d * d;
    }
  for (int l = 0; l < KB; l++)
    sum += lane[l];
  for (; i < count; i++) {
    double d = (double)y[i] - t[i];
    sum += d * d;
  }
  if (dy)
    for (i = 0; i < count; i++)
      dy[i] = scale * (y[i] - t[i]);
  return sum;
}

// The normalised 1-D factor of the window: exp(-u^2 / (2 sigma^2)) with sigma 1.5.
static void gaussian(double g[WIN]) {
  double sum = 0;
  for (int a = 0; a < WIN; a++) {
    double u = a - (WIN - 1) / 2.0;
    g[a] = exp(-u * u / (2 * 1.5 * 1.5));
    sum += g[a];
  }
  for (int a = 0; a < WIN; a++)
    g[a] /= sum;
}

// out[j] = sum_a g[a] in[j + a stride] for j < len: the window along a row (stride 1) or down columns
// (stride: a row). Each output is one thread's sum over 11 taps, vectorised across j.
static void taps(const double *restrict g, const double *restrict in, size_t stride, int len, double *restrict out) {
  for (int j = 0; j < len; j++) {
    double s = 0;
    for (int a = 0; a < WIN; a++)
      s += g[a] * in[(size_t)j + (size_t)a * stride];
    out[j] = s;
  }
}


// SSIM of one image [h][w] (h, w >= 11), and dy (nullable) = scale * d ssim / d y. See ref_ssim for the
// formulas: the map's positions depend on the local means <y>, <t>, <y^2>, <t^2>, <y t>, and the gradient
// spreads the partials with respect to <y>, <y^2>, <y t> back through the window's adjoint: the same
// taps, reversed, over the partial maps padded with WIN - 1 zeros on each side.
static double image_ssim(int h, int w, const float *y, const float *t, float *dy, double scale, double *work) {
  enum { Y, T, YY, TT, YT, NQ }; // the filtered quantities
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  const size_t pad = WIN - 1;
  double g[WIN], rev[WIN];
  gaussian(g);
  for (int a = 0; a < WIN; a++)
    rev[a] = g[WIN - 1 - a];
  int oh = h - WIN + 1, ow = w - WIN + 1;
  size_t nrow = (size_t)h * (size_t)ow, nmap = (size_t)oh * (size_t)ow, npart = ((size_t)oh + 2 * pad) * (size_t)ow;
  // rows: each quantity filtered along rows, [h][ow]; maps: then down columns, [oh][ow]; src: one image
  // row of each quantity; part: the padded partial maps; line: a padded row of each, and its spread.
  double *rows = work, *maps = rows + NQ * nrow, *src = maps + NQ * nmap, *part = src + NQ * (size_t)w;
  double *line = part + 3 * npart, *spread = line + 3 * ((size_t)w + pad);
  for (int r = 0; r < h; r++) {
    for (int j = 0; j < w; j++) {
      double a = y[(size_t)r * (size_t)w + (size_t)j], b = t[(size_t)r * (size_t)w + (size_t)j];
      src[Y * w + j] = a;
      src[T * w + j] = b;
      src[YY * w + j] = a * a;
      src[TT * w + j] = b * b;
      src[YT * w + j] = a * b;
    }
    for (int q = 0; q < NQ; q++)
      taps(g, src + (size_t)q * (size_t)w, 1, ow, rows + q * nrow + (size_t)r * (size_t)ow);
  }
  for (int q = 0; q < NQ; q++)
    for (int i = 0; i < oh; i++)
      taps(g, rows + q * nrow + (size_t)i * (size_t)ow, (size_t)ow, ow, maps + q * nmap + (size_t)i * (size_t)ow);

  // The partials d<y>, d<y^2>, d<y t> (times scale), into the padded maps' interiors.
  double sum = 0, k = scale / (double)nmap;
  const double *my = maps + Y * nmap, *mt = maps + T * nmap, *eyy = maps + YY * nmap, *ett = maps + TT * nmap,
               *eyt = maps + YT * nmap;
  double *d_my = part + pad * (size_t)ow, *d_eyy = d_my + npart, *d_eyt = d_eyy + npart;
  for (size_t p = 0; p < 3 * npart; p++)
    part[p] = 0;
  for (size_t p = 0; p < nmap; p++) {
    double a1 = 2 * my[p] * mt[p] + c1, b1 = my[p] * my[p] + mt[p] * mt[p] + c1;
    double a2 = 2 * (eyt[p] - my[p] * mt[p]) + c2, b2 = (eyy[p] - my[p] * my[p]) + (ett[p] - mt[p] * mt[p]) + c2;
    double s = a1 * a2 / (b1 * b2);
    sum += s;
    d_my[p] = (2 * mt[p] * (a2 - a1) / (b1 * b2) - 2 * my[p] * s * (1 / b1 - 1 / b2)) * k;
    d_eyy[p] = -s / b2 * k;
    d_eyt[p] = 2 * a1 / (b1 * b2) * k;
  }

  if (dy) {
    // Up the columns into rows ([h][ow] per partial), then along each row, combined per pixel:
    // dy = spread(d<y>) + 2 y spread(d<y^2>) + t spread(d<y t>).
    for (int q = 0; q < 3; q++)
      for (int r = 0; r < h; r++)
        taps(rev, part + q * npart + (size_t)r * (size_t)ow, (size_t)ow, ow, rows + q * nrow + (size_t)r * (size_t)ow);
    for (size_t i = 0; i < 3 * ((size_t)w + pad); i++)
      line[i] = 0;
    for (int r = 0; r < h; r++) {
      for (int q = 0; q < 3; q++) {
        double *l = line + q * ((size_t)w + pad);
        memcpy(l + pad, rows + q * nrow + (size_t)r * (size_t)ow, sizeof *l * (size_t)ow);
        taps(rev, l, 1, w, spread + q * (size_t)w);
      }
      for (int j = 0; j < w; j++) {
        size_t at = (size_t)r * (size_t)w + (size_t)j;
        dy[at] = (float)(spread[j] + 2.0 * y[at] * spread[w + j] + (double)t[at] * spread[2 * w + j]);
      }
    }
  }
  return sum / (double)nmap;
}

// The loss of a batch: mean squared error over all values, or the mean over images of (1 - ssim) / 2.
// When z is given, y = sigmoid(z) is written to ys first and the gradient d (nullable) is with respect
// to z: the image's gradient times y (1 - y). wk: kl_loss_work, the images' losses shared and SSIM's
// workspace (kl_ssim_doubles) per thread.
static double batch_loss(int n, int h, int w, bool dssim, const float *z, float *ys, const float *y, const float *t,
                         float *d, KWork wk) {
  size_t hw = (size_t)h * (size_t)w;
  double *part = wk.shared;
#pragma omp parallel num_threads(kwork_team(wk))
  {
    double *work = dssim ? (double *)kwork_mine(wk, kl_loss_work(n, h, w).thread) : NULL;
#pragma omp for schedule(static)
    for (int i = 0; i < n; i++) {
      size_t at = (size_t)i * hw;
      const float *yi = y + at;
      if (z) {
        kp_sigmoid(hw, z + at, ys + at);
        yi = ys + at;
      }
      float *di = d ? d + at : NULL;
      part[i] = dssim ? (1 - image_ssim(h, w, yi, t + at, di, -0.5 / n, work)) / 2
                      : image_sqerr(hw, yi, t + at, di, (float)(2 / ((double)n * (double)hw)));
      if (z && di)
        for (size_t k = 0; k < hw; k++)
          di[k] *= yi[k] * (1 - yi[k]);
    }
  }
  double sum = 0;
  for (int i = 0; i < n; i++)
    sum += part[i];
  return sum / (dssim ? n : (double)n * (double)hw);
}

double kl_mse(int n, int hw, const float *y, const float *t, float *dy, KWork work) {
  return batch_loss(n, 1, hw, false, NULL, NULL, y, t, dy, work);
}

double kl_mse_sigmoid(int n, int hw, const float *z, const float *t, float *y, float *dz, KWork work) {
  return batch_loss(n, 1, hw, false, z, y, y, t, dz, work);
}

double kl_dssim(int n, int h, int w, const float *y, const float *t, float *dy, KWork work) {
  return batch_loss(n, h, w, true, NULL, NULL, y, t, dy, work);
}

double kl_dssim_sigmoid(int n, int h, int w, const float *z, const float *t, float *y, float *dz, KWork work) {
  return batch_loss(n, h, w, true, z, y, y, t, dz, work);
}

void kl_metrics(int n, int h, int w, const float *y, const float *t, double *mse, double *dssim, double *psnr) {
  size_t hw = (size_t)h * (size_t)w;
#pragma omp parallel
  {
    double *work = err_calloc(kl_ssim_doubles(h, w), sizeof *work);
#pragma omp for schedule(static)
    for (int i = 0; i < n; i++) {
      size_t at = (size_t)i * hw;
      mse[i] = image_sqerr(hw, y + at, t + at, NULL, 0) / (double)hw;
      dssim[i] = (1 - image_ssim(h, w, y + at, t + at, NULL, 0, work)) / 2;
      psnr[i] = 10 * log10(1 / mse[i]);
    }
    free(work);
  }
}
