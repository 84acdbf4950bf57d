// ref_fwd_test.c: the reference forwards, losses and optimizers against values
// known independently: small cases worked out by hand, a second formulation
// (conv on an explicitly zero-padded copy, convT as conv's adjoint), defining
// properties (normalised statistics, SSIM of an image with itself) and a plain
// transcription of tf.image.ssim run elsewhere.
#include "check.h"
#include "ref.h"

#include <string.h>

#define TOL 1e-12

// ---- conv and convT --------------------------------------------------------------

static void test_conv_by_hand(void) {
  // x = 1..9 in a 3x3 image; the kernel reads the top-left and, doubled, the bottom-right neighbour, so a
  // flipped kernel (a true convolution) or a shifted grid would give other values.
  const double x3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9] = {1, 0, 0, 0, 0, 0, 0, 0, 2}, b = 0.5;
  double y[9];
  // Padding 1: y[i,j] = x[i-1,j-1] + 2 x[i+1,j+1] + 0.5.
  ref_conv_fwd(&(RefConv){1, 1, 3, 3, 1, 3, 3, 3, 1, 1, 1}, x3, w, &b, y);
  const double want3[9] = {10.5, 12.5, 0.5, 16.5, 19.5, 2.5, 0.5, 4.5, 5.5};
  check_values("conv 3x3 k3 s1 pad 1 by hand", 9, y, want3, TOL);

  // TensorFlow's SAME for stride 2 on 4x4 pads 0 before: y[i,j] = x[2i,2j] + 2 x[2i+2,2j+2], with x = 1..16.
  double x4[16];
  for (int i = 0; i < 16; i++)
    x4[i] = i + 1;
  ref_conv_fwd(&(RefConv){1, 1, 4, 4, 1, 2, 2, 3, 2, 0, 0}, x4, w, NULL, y);
  const double want4[4] = {23, 3, 9, 11};
  check_values("conv 4x4 k3 s2 tf-same by hand", 4, y, want4, TOL);
}

// The same conv computed another way: copy x into a zero-padded image large enough for every window, then
// correlate without bounds checks.
static void conv_padded(const RefConv *p, const double *x, const double *w, const double *b, double *y) {
  int ph = (p->oh - 1) * p->stride + p->k, pw = (p->ow - 1) * p->stride + p->k;
  if (ph < p->h + p->pad_top)
    ph = p->h + p->pad_top;
  if (pw < p->w + p->pad_left)
    pw = p->w + p->pad_left;
  double *padded = test_alloc((size_t)p->cin * (size_t)ph * (size_t)pw);
  for (int n = 0; n < p->n; n++) {
    memset(padded, 0, sizeof *padded * (size_t)p->cin * (size_t)ph * (size_t)pw);
    for (int ci = 0; ci < p->cin; ci++)
      for (int r = 0; r < p->h; r++)
        for (int s = 0; s < p->w; s++)
          padded[((size_t)ci * ph + r + p->pad_top) * pw + s + p->pad_left] =
              x[(((size_t)n * p->cin + ci) * p->h + r) * p->w + s];
    for (int co = 0; co < p->cout; co++)
      for (int i = 0; i < p->oh; i++)
        for (int j = 0; j < p->ow; j++) {
          double sum = b[co];
          for (int ci = 0; ci < p->cin; ci++)
            for (int a = 0; a < p->k; a++)
              for (int c = 0; c < p->k; c++)
                sum += padded[((size_t)ci * ph + i * p->stride + a) * pw + j * p->stride + c] *
                       w[(((size_t)co * p->cin + ci) * p->k + a) * p->k + c];
          y[(((size_t)n * p->cout + co) * p->oh + i) * p->ow + j] = sum;
        }
  }
  free(padded);
}

// {n, cin, h, w, cout, oh, ow, k, stride, pad_top, pad_left} of conv; convT's are the same with the input and
// output exchanged.
static const RefConv geoms[] = {
    {2, 3, 7, 7, 5, 7, 7, 3, 1, 1, 1}, {2, 1, 8, 6, 3, 4, 3, 3, 2, 0, 0}, {2, 5, 8, 6, 1, 4, 3, 1, 2, 0, 0},
    {2, 3, 7, 7, 3, 5, 5, 3, 1, 0, 0}, {2, 3, 7, 7, 5, 4, 4, 3, 2, 1, 1}, {2, 3, 8, 6, 1, 4, 3, 3, 2, 1, 1},
    {2, 5, 9, 9, 3, 2, 2, 5, 3, 0, 0},
};

static void test_conv_padded(void) {
  for (size_t g = 0; g < sizeof geoms / sizeof *geoms; g++) {
    const RefConv *p = &geoms[g];
    double *x = random_array(conv_in_count(p), -1, 1), *w = random_array(conv_weight_count(p), -1, 1);
    double *b = random_array((size_t)p->cout, -1, 1), *y = test_alloc(conv_out_count(p)),
           *want = test_alloc(conv_out_count(p));
    ref_conv_fwd(p, x, w, b, y);
    conv_padded(p, x, w, b, want);
    char name[96];
    snprintf(name, sizeof name, "conv %d->%d %dx%d k%d s%d pad %d,%d vs padded copy", p->cin, p->cout, p->h, p->w, p->k,
             p->stride, p->pad_top, p->pad_left);
    check_values(name, conv_out_count(p), y, want, TOL);
    free(x), free(w), free(b), free(y), free(want);
  }
}

static void test_convt_by_hand(void) {
  // x = [1 2; 3 4] scatters w = 1..9 (3x3) with stride 2 into the full 5x5 output
  //   1  2  5  4  6
  //   4  5 14 10 12
  //  10 14 36 24 30
  //  12 15 34 20 24
  //  21 24 55 32 36
  // which TensorFlow's SAME crops to the first 4x4, and PyTorch's padding=1 to the middle 3x3.
  const double x[4] = {1, 2, 3, 4}, w[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, b = 1;
  double y[16];
  ref_convt_fwd(&(RefConv){1, 1, 2, 2, 1, 4, 4, 3, 2, 0, 0}, x, w, &b, y);
  const double same[16] = {2, 3, 6, 5, 5, 6, 15, 11, 11, 15, 37, 25, 13, 16, 35, 21};
  check_values("convT 2x2->4x4 k3 s2 tf-same by hand", 16, y, same, TOL);
  ref_convt_fwd(&(RefConv){1, 1, 2, 2, 1, 3, 3, 3, 2, 1, 1}, x, w, NULL, y);
  const double crop1[9] = {5, 14, 10, 14, 36, 24, 15, 34, 20};
  check_values("convT 2x2->3x3 k3 s2 crop 1 by hand", 9, y, crop1, TOL);
}

// convT is conv's adjoint for the same weights: <convT(x), y> = <x, conv(y)>, where convT maps [cin,h,w] to
// [cout,oh,ow] with weights [cin,cout,k,k], and conv maps [cout,oh,ow] to [cin,h,w] reading the same weights as
// [its cout = cin, its cin = cout, k, k].
static void test_convt_adjoint(void) {
  for (size_t g = 0; g < sizeof geoms / sizeof *geoms; g++) {
    const RefConv *c = &geoms[g]; // conv
    RefConv t = {c->n, c->cout, c->oh, c->ow, c->cin, c->h, c->w, c->k, c->stride, c->pad_top, c->pad_left};
    double *x = random_array(conv_in_count(&t), -1, 1), *y = random_array(conv_out_count(&t), -1, 1);
    double *w = random_array(conv_weight_count(c), -1, 1);
    double *tx = test_alloc(conv_out_count(&t)), *cy = test_alloc(conv_in_count(&t));
    ref_convt_fwd(&t, x, w, NULL, tx);
    ref_conv_fwd(c, y, w, NULL, cy);
    double lhs = dot(conv_out_count(&t), tx, y), rhs = dot(conv_in_count(&t), x, cy), err = fabs(lhs - rhs);
    report(err <= 1e-12 * (1 + fabs(lhs)), err, "convT %d->%d %dx%d->%dx%d k%d s%d pad %d,%d adjoint of conv", t.cin,
           t.cout, t.h, t.w, t.oh, t.ow, t.k, t.stride, t.pad_top, t.pad_left);
    free(x), free(y), free(w), free(tx), free(cy);
  }
}

// ---- batch norm and group norm -------------------------------------------------------

// Mean and variance of the values of images [n0, n1) and channels [c0, c1) of v [n, c, hw], computed directly;
// `unbiased` divides by count - 1.
static void stats(int n0, int n1, int c0, int c1, int c, int hw, const double *v, bool unbiased, double *mean,
                  double *var) {
  double sum = 0, ss = 0, count = (double)(n1 - n0) * (c1 - c0) * hw;
  for (int n = n0; n < n1; n++)
    for (int ch = c0; ch < c1; ch++)
      for (int i = 0; i < hw; i++)
        sum += v[((size_t)n * c + ch) * hw + i];
  *mean = sum / count;
  for (int n = n0; n < n1; n++)
    for (int ch = c0; ch < c1; ch++)
      for (int i = 0; i < hw; i++)
        ss += (v[((size_t)n * c + ch) * hw + i] - *mean) * (v[((size_t)n * c + ch) * hw + i] - *mean);
  *var = ss / (unbiased ? count - 1 : count);
}

// (y - beta) / gamma per channel: the normalised values before the affine step.
static double *unscale(int n, int c, int hw, const double *y, const double *gamma, const double *beta) {
  double *z = test_alloc((size_t)n * c * hw);
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < c; ch++)
      for (int k = 0; k < hw; k++)
        z[((size_t)i * c + ch) * hw + k] = (y[((size_t)i * c + ch) * hw + k] - beta[ch]) / gamma[ch];
  return z;
}

static void test_bn(int n, int c, int hw) {
  size_t count = (size_t)n * c * hw;
  double *x = random_array(count, -2, 5), *gamma = random_array((size_t)c, 0.5, 2),
         *beta = random_array((size_t)c, -1, 1);
  double *y = test_alloc(count), *mean = test_alloc((size_t)c), *invstd = test_alloc((size_t)c);
  double *rm = test_alloc((size_t)c), *rv = test_alloc((size_t)c), *y_eval = test_alloc(count);
  for (int ch = 0; ch < c; ch++)
    rm[ch] = 0.5, rv[ch] = 2;
  // eps 0, so that the normalised values have variance exactly 1.
  ref_bn_fwd_train(n, c, hw, 0, 0.9, x, gamma, beta, rm, rv, y, mean, invstd);
  double *z = unscale(n, c, hw, y, gamma, beta);
  double err_norm = 0, err_saved = 0, err_running = 0;
  for (int ch = 0; ch < c; ch++) {
    double m, v, xm, xv, xv_unbiased;
    stats(0, n, ch, ch + 1, c, hw, z, false, &m, &v);
    err_norm = fmax(err_norm, fmax(fabs(m), fabs(v - 1)));
    stats(0, n, ch, ch + 1, c, hw, x, false, &xm, &xv);
    stats(0, n, ch, ch + 1, c, hw, x, true, &xm, &xv_unbiased);
    err_saved = fmax(err_saved, fmax(fabs(mean[ch] - xm), fabs(invstd[ch] - 1 / sqrt(xv))));
    err_running =
        fmax(err_running, fmax(fabs(rm[ch] - (0.9 * 0.5 + 0.1 * xm)), fabs(rv[ch] - (0.9 * 2 + 0.1 * xv_unbiased))));
    // Inference with the batch's own statistics (biased variance) reproduces training's output.
    rm[ch] = xm, rv[ch] = xv;
  }
  report(err_norm <= TOL, err_norm, "bn train n%d c%d hw%d: per-channel mean 0, variance 1 before the affine", n, c,
         hw);
  report(err_saved <= TOL, err_saved, "bn train n%d c%d hw%d: saved mean and invstd", n, c, hw);
  report(err_running <= TOL, err_running, "bn train n%d c%d hw%d: running mean and unbiased variance", n, c, hw);
  ref_bn_fwd_eval(n, c, hw, 0, x, gamma, beta, rm, rv, y_eval);
  char name[96];
  snprintf(name, sizeof name, "bn eval n%d c%d hw%d with the batch statistics = bn train", n, c, hw);
  check_values(name, count, y_eval, y, 1e-10);
  free(x), free(gamma), free(beta), free(y), free(mean), free(invstd), free(rm), free(rv), free(y_eval), free(z);
}

static void test_bn_eval_by_hand(void) {
  // (x - 1) / sqrt(3 + 1) * 2 + 0.5
  const double x[2] = {1, 3}, gamma = 2, beta = 0.5, rm = 1, rv = 3, want[2] = {0.5, 2.5};
  double y[2];
  ref_bn_fwd_eval(1, 1, 2, 1, x, &gamma, &beta, &rm, &rv, y);
  check_values("bn eval by hand", 2, y, want, TOL);
}

static void test_gn(int n, int c, int hw, int groups) {
  size_t count = (size_t)n * c * hw;
  int cg = c / groups;
  double *x = random_array(count, -2, 5), *gamma = random_array((size_t)c, 0.5, 2),
         *beta = random_array((size_t)c, -1, 1);
  double *y = test_alloc(count), *mean = test_alloc((size_t)n * groups), *invstd = test_alloc((size_t)n * groups);
  ref_gn_fwd(n, c, hw, groups, 0, x, gamma, beta, y, mean, invstd);
  double *z = unscale(n, c, hw, y, gamma, beta);
  double err_norm = 0, err_saved = 0;
  for (int i = 0; i < n; i++)
    for (int g = 0; g < groups; g++) {
      double m, v;
      stats(i, i + 1, g * cg, (g + 1) * cg, c, hw, z, false, &m, &v);
      err_norm = fmax(err_norm, fmax(fabs(m), fabs(v - 1)));
      stats(i, i + 1, g * cg, (g + 1) * cg, c, hw, x, false, &m, &v);
      err_saved = fmax(err_saved, fmax(fabs(mean[i * groups + g] - m), fabs(invstd[i * groups + g] - 1 / sqrt(v))));
    }
  report(err_norm <= TOL, err_norm, "gn n%d c%d hw%d groups %d: per-group mean 0, variance 1 before the affine", n, c,
         hw, groups);
  report(err_saved <= TOL, err_saved, "gn n%d c%d hw%d groups %d: saved mean and invstd", n, c, hw, groups);
  free(x), free(gamma), free(beta), free(y), free(mean), free(invstd), free(z);
}

// ---- pointwise --------------------------------------------------------------------------

static void test_pointwise(void) {
  const double x[5] = {-2, -0.5, 0, 0.5, 3};
  double y[5];
  ref_relu_fwd(5, x, y);
  check_values("relu by hand", 5, y, (const double[5]){0, 0, 0, 0.5, 3}, 0);
  ref_leaky_relu_fwd(5, 0.1, x, y);
  check_values("leaky_relu alpha 0.1 by hand", 5, y, (const double[5]){-0.2, -0.05, 0, 0.5, 3}, TOL);
  // sigmoid(log 3) = 3/4; far out it saturates without overflow.
  const double s[5] = {0, log(3), -log(3), 800, -800};
  ref_sigmoid_fwd(5, s, y);
  check_values("sigmoid by hand", 5, y, (const double[5]){0.5, 0.75, 0.25, 1, 0}, TOL);
  ref_add_fwd(5, x, s, y);
  check_values("add", 3, y, (const double[3]){-2, log(3) - 0.5, -log(3)}, TOL);

  // Two images, hw 2: a has 1 channel, b has 2.
  const double a[4] = {1, 2, 3, 4}, b[8] = {10, 11, 12, 13, 14, 15, 16, 17};
  double cat[12], da[4], db[8];
  ref_concat_fwd(2, 2, 2, (const int[2]){1, 2}, (const double *const[2]){a, b}, cat);
  check_values("concat by hand", 12, cat, (const double[12]){1, 2, 10, 11, 12, 13, 3, 4, 14, 15, 16, 17}, 0);
  ref_concat_bwd(2, 2, 2, (const int[2]){1, 2}, cat, (double *const[2]){da, db});
  check_values("concat backward splits", 4, da, a, 0);
  check_values("concat backward splits (second input)", 8, db, b, 0);

  const uint8_t keep[2] = {1, 0};
  ref_spatial_dropout(1, 2, 2, 0.75, keep, a, y);
  check_values("spatial_dropout rate 0.75 by hand", 4, y, (const double[4]){4, 8, 0, 0}, TOL);
}

// ---- losses ------------------------------------------------------------------------------

static void test_losses(void) {
  const double y[3] = {1, 2, 3}, t[3] = {0, 0, 1};
  double dy[3];
  // (1^2 + 2^2 + 2^2) / 3 = 3, and dy = 2 (y - t) / 3.
  double mse = ref_mse(3, y, t, dy);
  check_values("mse by hand", 1, &mse, (const double[1]){3}, TOL);
  check_values("mse gradient by hand", 3, dy, (const double[3]){2.0 / 3, 4.0 / 3, 4.0 / 3}, TOL);

  // Every pixel off by 0.1: mse 0.01, PSNR 20 dB.
  double p[64], q[64];
  for (int i = 0; i < 64; i++)
    p[i] = 0.5, q[i] = 0.6;
  double psnr = ref_psnr(64, p, q);
  check_values("psnr of mse 0.01 = 20 dB", 1, &psnr, (const double[1]){20}, 1e-10);

  enum { H = 16, W = 12 };
  double img[2 * H * W], tgt[2 * H * W], g[2 * H * W];
  for (int i = 0; i < 2 * H * W; i++)
    img[i] = uniform(0, 1);
  double self = ref_ssim(H, W, img, img, NULL);
  check_values("ssim of an image with itself = 1", 1, &self, (const double[1]){1}, TOL);
  double dself = ref_dssim(2, H, W, img, img, g);
  check_values("dssim of images with themselves = 0", 1, &dself, (const double[1]){0}, TOL);
  double zero[2 * H * W] = {0};
  check_values("dssim gradient at its minimum = 0", 2 * H * W, g, zero, TOL);

  // Constant images: no variance, so SSIM is the luminance term (2 m1 m2 + C1) / (m1^2 + m2^2 + C1), which holds
  // only if the window sums to 1.
  for (int i = 0; i < H * W; i++)
    img[i] = 0.5, tgt[i] = 0.25;
  double flat = ref_ssim(H, W, img, tgt, NULL);
  check_values("ssim of constant images = luminance", 1, &flat,
               (const double[1]){(2 * 0.5 * 0.25 + 1e-4) / (0.25 + 0.0625 + 1e-4)}, TOL);

  // Against a plain-Python transcription of tf.image.ssim (_fspecial_gauss, _ssim_helper, _ssim_per_channel with
  // max_val 1) on the same images.
  for (int i = 0; i < H; i++)
    for (int j = 0; j < W; j++) {
      img[i * W + j] = ((i * 7 + j * 3) % 11) / 10.0;
      tgt[i * W + j] = ((i * 5 + j * 2) % 13) / 12.0;
      img[H * W + i * W + j] = 0.5 + 0.4 * sin(0.3 * i + 0.2 * j);
      tgt[H * W + i * W + j] = 0.5 + 0.35 * sin(0.3 * i + 0.25 * j + 0.1);
    }
  double got[2] = {ref_ssim(H, W, img, tgt, NULL), ref_ssim(H, W, img + H * W, tgt + H * W, NULL)};
  check_values("ssim vs tf.image.ssim transcription", 2, got,
               (const double[2]){0.05733412668371091, 0.9028274532650075}, 1e-12);
  double swapped = ref_ssim(H, W, tgt + H * W, img + H * W, NULL);
  check_values("ssim is symmetric", 1, &swapped, &got[1], TOL);
  double dssim = ref_dssim(2, H, W, img, tgt, NULL);
  check_values("dssim = mean of (1 - ssim) / 2", 1, &dssim,
               (const double[1]){((1 - 0.05733412668371091) / 2 + (1 - 0.9028274532650075) / 2) / 2}, 1e-12);
}

// ---- optimizers ---------------------------------------------------------------------------

// Two steps from w = (1, -2, 0.5) with zero state and gradients g1 = (0.5, -1, 2), g2 = (0.1, 0.3, -1); the
// expected values follow the formulas in ref.h step by step (evaluated in double precision elsewhere).
static const double w0[3] = {1, -2, 0.5}, g1[3] = {0.5, -1, 2}, g2[3] = {0.1, 0.3, -1};

static void test_optimizers(void) {
  double w[3], s[3], m[3], v[3];

  // RMSprop lr 0.01, rho 0.9, eps 1e-7. Step 1: ms = 0.1 g1^2 = (0.025, 0.1, 0.4), w -= 0.01 g1 / (sqrt(ms) + eps).
  memcpy(w, w0, sizeof w);
  memset(s, 0, sizeof s);
  ref_rmsprop(3, 0.01, 0.9, 1e-7, w, g1, s);
  check_values("rmsprop step 1: ms", 3, s, (const double[3]){0.025, 0.1, 0.4}, TOL);
  check_values("rmsprop step 1: w", 3, w, (const double[3]){0.9683772433983036, -1.968377233398313, 0.4683772283983154},
               TOL);
  ref_rmsprop(3, 0.01, 0.9, 1e-7, w, g2, s);
  check_values("rmsprop step 2: ms", 3, s, (const double[3]){0.0235, 0.099, 0.46}, TOL);
  check_values("rmsprop step 2: w", 3, w,
               (const double[3]){0.9618539669230856, -1.9779118562604667, 0.48312142183989243}, TOL);

  // Adam lr 0.1, b1 0.9, b2 0.999, eps 1e-7. At t = 1 the bias corrections make the step lr g / (|g| + eps'), just
  // under 0.1 per element.
  memcpy(w, w0, sizeof w);
  memset(m, 0, sizeof m);
  memset(v, 0, sizeof v);
  ref_adam(3, 0.1, 0.9, 0.999, 1e-7, 1, w, g1, m, v);
  check_values("adam t=1: m", 3, m, (const double[3]){0.05, -0.1, 0.2}, TOL);
  check_values("adam t=1: v", 3, v, (const double[3]){0.00025, 0.001, 0.004}, TOL);
  check_values("adam t=1: w", 3, w, (const double[3]){0.900000632451532, -1.900000316226766, 0.40000015811363293}, TOL);
  ref_adam(3, 0.1, 0.9, 0.999, 1e-7, 2, w, g2, m, v);
  check_values("adam t=2: m", 3, m, (const double[3]){0.055, -0.06, 0.08}, TOL);
  check_values("adam t=2: v", 3, v, (const double[3]){0.00025975, 0.001089, 0.004996}, TOL);
  check_values("adam t=2: w", 3, w, (const double[3]){0.8196970328698239, -1.8572155867270155, 0.37336649182836024},
               TOL);

  // SGD lr 0.1, momentum 0.9: v = -0.1 g1, then v = 0.9 v - 0.1 g2.
  memcpy(w, w0, sizeof w);
  memset(v, 0, sizeof v);
  ref_sgd(3, 0.1, 0.9, w, g1, v);
  check_values("sgd step 1: w", 3, w, (const double[3]){0.95, -1.9, 0.3}, TOL);
  ref_sgd(3, 0.1, 0.9, w, g2, v);
  check_values("sgd step 2: v", 3, v, (const double[3]){-0.055, 0.06, -0.08}, TOL);
  check_values("sgd step 2: w", 3, w, (const double[3]){0.895, -1.84, 0.22}, TOL);
}

int main(void) {
  test_conv_by_hand();
  test_conv_padded();
  test_convt_by_hand();
  test_convt_adjoint();
  test_bn(2, 1, 7 * 7);
  test_bn(2, 3, 8 * 6);
  test_bn(2, 5, 7 * 7);
  test_bn_eval_by_hand();
  test_gn(2, 6, 7 * 7, 1);
  test_gn(2, 6, 8 * 6, 2);
  test_gn(2, 6, 7 * 7, 6);
  test_gn(2, 5, 8 * 6, 5);
  test_gn(2, 1, 7 * 7, 1);
  test_pointwise();
  test_losses();
  test_optimizers();
  return summary();
}
