// ref_loss.c: MSE and DSSIM with their gradients, and the SSIM and PSNR metrics.
#include "ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

double ref_mse(size_t count, const double *y, const double *t, double *dy) {
  double sum = 0;
  for (size_t i = 0; i < count; i++) {
    double d = y[i] - t[i];
    sum += d * d;
    if (dy)
      dy[i] = 2 * d / (double)count;
  }
  return sum / (double)count;
}

enum { WIN = 11 }; // tf.image.ssim's filter_size

// exp(-(u^2 + v^2) / (2 sigma^2)) over offsets u, v from the window's centre. TensorFlow normalises it with a
// softmax of the exponents, which is the same as dividing by the sum.
static void gaussian_window(double win[WIN * WIN]) {
  const double sigma = 1.5;
  double sum = 0;
  for (int a = 0; a < WIN; a++)
    for (int c = 0; c < WIN; c++) {
      double u = a - (WIN - 1) / 2.0, v = c - (WIN - 1) / 2.0;
      win[a * WIN + c] = exp(-(u * u + v * v) / (2 * sigma * sigma));
      sum += win[a * WIN + c];
    }
  for (int i = 0; i < WIN * WIN; i++)
    win[i] /= sum;
}

static double *scratch(size_t count) {
  double *p = malloc(sizeof *p * count);
  if (!p) {
    fputs("ref_ssim: out of memory\n", stderr);
    abort();
  }
  return p;
}

// out = the local means of a * b: `filter` is the window as the kernel of a one-channel valid conv.
static void product_mean(const RefConv *filter, const double *win, const double *a, const double *b, double *tmp,
                         double *out) {
  for (size_t i = 0; i < (size_t)filter->h * (size_t)filter->w; i++)
    tmp[i] = a[i] * b[i];
  ref_conv_fwd(filter, tmp, win, NULL, out);
}

// Each position p of the valid map has ssim_p = (2 my mt + C1) (2 cov + C2) / ((my^2 + mt^2 + C1) (vy + vt + C2)),
// a function of the local means my = <y>, mt = <t> and of <y^2>, <t^2>, <y t> (vy = <y^2> - my^2, and so on). y
// enters <y> linearly, <y^2> as y^2 and <y t> as y t, so the gradient of the mean over p is spread back from the
// partials d ssim_p / d(<y>, <y^2>, <y t>) by the filter's adjoint, the transposed conv `spread`.
double ref_ssim(int h, int w, const double *y, const double *t, double *dy) {
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03; // (k1 max_val)^2 and (k2 max_val)^2 with max_val 1
  double win[WIN * WIN];
  gaussian_window(win);
  int oh = h - WIN + 1, ow = w - WIN + 1;
  RefConv filter = {1, 1, h, w, 1, oh, ow, WIN, 1, 0, 0};
  RefConv spread = {1, 1, oh, ow, 1, h, w, WIN, 1, 0, 0};
  size_t npix = (size_t)h * (size_t)w, nmap = (size_t)oh * (size_t)ow;

  double *tmp = scratch(npix), *maps = scratch(8 * nmap);
  double *my = maps, *mt = maps + nmap, *eyy = maps + 2 * nmap, *ett = maps + 3 * nmap, *eyt = maps + 4 * nmap;
  double *d_my = maps + 5 * nmap, *d_eyy = maps + 6 * nmap, *d_eyt = maps + 7 * nmap;
  ref_conv_fwd(&filter, y, win, NULL, my);
  ref_conv_fwd(&filter, t, win, NULL, mt);
  product_mean(&filter, win, y, y, tmp, eyy);
  product_mean(&filter, win, t, t, tmp, ett);
  product_mean(&filter, win, y, t, tmp, eyt);

  double sum = 0;
  for (size_t p = 0; p < nmap; p++) {
    double a1 = 2 * my[p] * mt[p] + c1, b1 = my[p] * my[p] + mt[p] * mt[p] + c1;
    double a2 = 2 * (eyt[p] - my[p] * mt[p]) + c2, b2 = (eyy[p] - my[p] * my[p]) + (ett[p] - mt[p] * mt[p]) + c2;
    double s = a1 * a2 / (b1 * b2);
    sum += s;
    // Written without dividing by a1 or a2, which can be 0; b1 >= C1 and b2 >= C2 (variances are >= 0).
    d_my[p] = (2 * mt[p] * (a2 - a1) / (b1 * b2) - 2 * my[p] * s * (1 / b1 - 1 / b2)) / (double)nmap;
    d_eyy[p] = -s / b2 / (double)nmap;
    d_eyt[p] = 2 * a1 / (b1 * b2) / (double)nmap;
  }
  if (dy) {
    ref_convt_fwd(&spread, d_my, win, NULL, dy);
    ref_convt_fwd(&spread, d_eyy, win, NULL, tmp);
    for (size_t i = 0; i < npix; i++)
      dy[i] += 2 * y[i] * tmp[i];
    ref_convt_fwd(&spread, d_eyt, win, NULL, tmp);
    for (size_t i = 0; i < npix; i++)
      dy[i] += t[i] * tmp[i];
  }
  free(tmp);
  free(maps);
  return sum / (double)nmap;
}

double ref_dssim(int n, int h, int w, const double *y, const double *t, double *dy) {
  size_t npix = (size_t)h * (size_t)w;
  double sum = 0;
  for (int i = 0; i < n; i++) {
    double *g = dy ? dy + (size_t)i * npix : NULL;
    sum += (1 - ref_ssim(h, w, y + (size_t)i * npix, t + (size_t)i * npix, g)) / 2;
    if (g)
      for (size_t k = 0; k < npix; k++)
        g[k] *= -0.5 / n;
  }
  return sum / n;
}

double ref_psnr(size_t count, const double *y, const double *t) { return 10 * log10(1 / ref_mse(count, y, t, NULL)); }
