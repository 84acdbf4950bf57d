// ref.h: reference kernels, the oracle that every fast kernel is tested
// against. Plain loops over NCHW tensors in double precision, so that they can
// also be checked by central finite differences. Each op's forward has its
// backward; a backward writes (=) its input gradients, never accumulates.
// Pointers marked "nullable" may be NULL to skip that output.
#ifndef CAEC_REF_H
#define CAEC_REF_H

#include <stddef.h>
#include <stdint.h>

// ---- ref_conv.c: convolution and transposed convolution ----------------------

// conv: x [n,cin,h,w], w [cout,cin,k,k], b [cout], y [n,cout,oh,ow].
//   y[n,co,i,j] = b[co] + sum_{ci,a,c} x[n,ci, i*stride+a-pad_top, j*stride+c-pad_left] * w[co,ci,a,c]
// with x outside the image read as 0.
// convT: x [n,cin,h,w], w [cin,cout,k,k], b [cout], y [n,cout,oh,ow]. Every input pixel
// scatters a k x k patch: y[n,co, i*stride+a-pad_top, j*stride+c-pad_left] += x[n,ci,i,j] * w[ci,co,a,c]
// (pad_* crop the full output; writes outside [0,oh) x [0,ow) are dropped), then y += b[co].
// convT's forward is conv's data gradient and the reverse; the kernels share that code.
typedef struct RefConv {
  int n, cin, h, w;     // input
  int cout, oh, ow;     // output
  int k, stride;
  int pad_top, pad_left;
} RefConv;

void ref_conv_fwd(const RefConv *p, const double *x, const double *w, const double *b /*nullable*/, double *y);
void ref_conv_bwd(const RefConv *p, const double *x, const double *w, const double *dy, double *dx /*nullable*/,
                  double *dw, double *db /*nullable*/);
void ref_convt_fwd(const RefConv *p, const double *x, const double *w, const double *b /*nullable*/, double *y);
void ref_convt_bwd(const RefConv *p, const double *x, const double *w, const double *dy, double *dx /*nullable*/,
                   double *dw, double *db /*nullable*/);

// ---- ref_norm.c: batch norm and group norm -------------------------------------

// Batch norm, training: statistics over (n, h, w) per channel; y = gamma * (x - mean) * invstd + beta with
// invstd = 1/sqrt(var + eps) and var the biased batch variance. Saves mean and invstd [c] for the backward
// and updates the running statistics as Keras does (running = momentum*running + (1-momentum)*batch),
// with the unbiased variance (count/(count-1)) in running_var, as PyTorch and TensorFlow's fused kernel do.
void ref_bn_fwd_train(int n, int c, int hw, double eps, double momentum, const double *x, const double *gamma,
                      const double *beta, double *running_mean, double *running_var, double *y, double *save_mean,
                      double *save_invstd);
// Batch norm, inference: the running statistics instead of the batch's.
void ref_bn_fwd_eval(int n, int c, int hw, double eps, const double *x, const double *gamma, const double *beta,
                     const double *running_mean, const double *running_var, double *y);
void ref_bn_bwd(int n, int c, int hw, const double *x, const double *gamma, const double *save_mean,
                const double *save_invstd, const double *dy, double *dx, double *dgamma, double *dbeta);

// Group norm: statistics over (c/groups channels, h, w) per image and group; per-channel gamma and beta.
// save_mean and save_invstd are [n*groups].
void ref_gn_fwd(int n, int c, int hw, int groups, double eps, const double *x, const double *gamma,
                const double *beta, double *y, double *save_mean, double *save_invstd);
void ref_gn_bwd(int n, int c, int hw, int groups, const double *x, const double *gamma, const double *save_mean,
                const double *save_invstd, const double *dy, double *dx, double *dgamma, double *dbeta);

// ---- ref_pointwise.c: activations, add, concat, spatial dropout -----------------

void ref_relu_fwd(size_t count, const double *x, double *y);
void ref_relu_bwd(size_t count, const double *y, const double *dy, double *dx); // from the output: y > 0
void ref_leaky_relu_fwd(size_t count, double alpha, const double *x, double *y);
void ref_leaky_relu_bwd(size_t count, double alpha, const double *x, const double *dy, double *dx);
void ref_sigmoid_fwd(size_t count, const double *x, double *y);
void ref_sigmoid_bwd(size_t count, const double *y, const double *dy, double *dx); // y (1 - y) dy
void ref_tanh_fwd(size_t count, const double *x, double *y);
void ref_tanh_bwd(size_t count, const double *y, const double *dy, double *dx); // (1 - y^2) dy
void ref_add_fwd(size_t count, const double *a, const double *b, double *y);
// concat along channels of nin inputs xs[i] [n,cs[i],hw] into y [n,sum cs,hw]; the backward splits dy.
void ref_concat_fwd(int n, int hw, int nin, const int *cs, const double *const *xs, double *y);
void ref_concat_bwd(int n, int hw, int nin, const int *cs, const double *dy, double *const *dxs);
// Spatial dropout with a given mask keep [n*c] (1 keeps the channel): y = keep ? x / (1 - rate) : 0.
// The backward is the same map applied to dy.
void ref_spatial_dropout(int n, int c, int hw, double rate, const uint8_t *keep, const double *x, double *y);

// ---- ref_loss.c: losses (with their gradients) and metrics ----------------------

// MSE over all count values (Keras: the mean over pixels and images). dy (nullable) = 2 (y - t) / count.
double ref_mse(size_t count, const double *y, const double *t, double *dy);
// SSIM of one single-channel image [h,w] as tf.image.ssim(max_val=1): an 11x11 Gaussian window with sigma 1.5
// (normalised to sum 1), k1 0.01, k2 0.03, over the valid region only (h, w >= 11), averaged over that
// region. dy (nullable) is d ssim / d y.
double ref_ssim(int h, int w, const double *y, const double *t, double *dy);
// DSSIM loss of a batch [n,1,h,w]: the mean over images of (1 - ssim) / 2. dy (nullable): its gradient.
double ref_dssim(int n, int h, int w, const double *y, const double *t, double *dy);
// PSNR of one image of count values with max 1: 10 log10(1 / mse).
double ref_psnr(size_t count, const double *y, const double *t);

// ---- ref_optim.c: optimizer updates, in place ----------------------------------

// Keras RMSprop (momentum 0, not centred): ms = rho ms + (1 - rho) g^2; w -= lr g / (sqrt(ms) + eps).
void ref_rmsprop(size_t count, double lr, double rho, double eps, double *w, const double *g, double *ms);
// Keras Adam at step t >= 1: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)   (eps outside the root, as Keras).
void ref_adam(size_t count, double lr, double b1, double b2, double eps, int64_t t, double *w, const double *g,
              double *m, double *v);
// Keras SGD with momentum: v = momentum v - lr g; w += v.
void ref_sgd(size_t count, double lr, double momentum, double *w, const double *g, double *v);

#endif
