// kern.h: the fast fp32 kernels that generated trainers call. caec emits one
// small function per fused kernel of a model, with literal shapes, that calls
// these; ref.h holds the naive double-precision kernels they are tested against.
//
// Layout. Activations are channel-blocked for the whole network: a tensor of n
// images, c channels and h x w pixels is stored [n][ceil(c/16)][h][w][16]
// ("NCHW16c"); lanes of channels >= c are kept zero. A 1-channel tensor (the
// model's input and output) is stored plain, [n][h][w]. Parameters, gradients
// and optimizer state stay in the front end's (PyTorch) layouts.
//
// Determinism. Every output value is computed by one thread in a fixed order,
// and every reduction (batch-norm statistics, bias gradients, losses) sums
// fixed-size chunks and combines them in a fixed order: results are bitwise
// the same for any number of OpenMP threads.
//
// Writes. Kernels that produce an activation gradient either assign it or add
// to it (`acc`), as caec decides statically; nothing is zeroed per step.
#ifndef CAEC_KERN_H
#define CAEC_KERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kern_types.h"
#include "kern_work.h"

// ---- kern_work.c: workspaces ------------------------------------------------------
//
// Every kernel that needs scratch takes a KWork (kern_work.h) sized by its k*_work function.
// The team a kernel runs: OpenMP's thread count, but no more threads than the workspace has slices.
int kwork_team(KWork w);
// The calling thread's slice of w, which must hold `bytes` (NULL for 0); aborts, saying so, when it does not.
unsigned char *kwork_mine(KWork w, size_t bytes);
// For callers outside a trainer (tests, bench): a zeroed workspace of `need` for omp_get_max_threads()
// threads, freed by kwork_free.
KWork kwork_alloc(KWorkSize need);
void kwork_free(KWork *w);

// ---- kern_layout.c: layout conversion -------------------------------------------

// Canonical NCHW [n][c][hw] <-> blocked; the blocked padding lanes are written as 0.
void kb_to_blocked(int n, int c, int hw, const float *x, float *xb);
void kb_from_blocked(int n, int c, int hw, const float *xb, float *x);

// ---- kern_conv.c: convolution and transposed convolution --------------------------
//
// The geometry (KConv, kern_types.h) and its meaning are shared with the CUDA kernels,
// and so is the size of the packed weights (kc_packed_floats).
// Canonical weights w [gc][ic][k][k] -> the layouts gather and scatter read.
void kc_pack_gather(const KConv *g, const float *w, float *wp);
void kc_pack_scatter(const KConv *g, const float *w, float *wp);
// grid = gather(image) (+ bias[gc], nullable).
// work: kc_conv_work(g, false, the image has a prologue).
void kc_gather(const KConv *g, KIn image, const float *wp, const float *bias, KOut grid, KWork work);
// image = scatter(grid) (+ bias[ic], nullable).
// work: kc_conv_work(g, true, the grid has a prologue).
void kc_scatter(const KConv *g, KIn grid, const float *wp, const float *bias, KOut image, KWork work);
// dw [gc][ic][k][k] = sum grid * image (assigned). db (nullable) = the
// per-channel sum of the grid (bias_of_grid, conv's bias gradient) or of the
// image (convT's). work: kc_wgrad_work(g, the grid has a prologue, the image has one).
void kc_wgrad(const KConv *g, KIn grid, KIn image, float *dw, float *db, bool bias_of_grid, KWork work);

// ---- kern_wino.c: Winograd F(4x4, 3x3) for the layers kw_fits (kern_types.h) ------------
//
// The same maps as kc_gather and kc_scatter, with 4x fewer multiplications and other rounding
// (within the same tolerance of the reference); weights packed by kw_pack_* (kw_packed_floats), work
// sized by kw_conv_work (kern_work.h).
void kw_pack_gather(const KConv *g, const float *w, float *u);
void kw_pack_scatter(const KConv *g, const float *w, float *u);
void kw_gather(const KConv *g, KIn image, const float *u, const float *bias, KOut grid, KWork work);
void kw_scatter(const KConv *g, KIn grid, const float *u, const float *bias, KOut image, KWork work);
// dw [gc][ic][3][3] = sum grid * image (assigned) and db as kc_wgrad, by F(4x4, 3x3)'s adjoint; work sized
// by kw_wgrad_work.
void kw_wgrad(const KConv *g, KIn grid, KIn image, float *dw, float *db, bool bias_of_grid, KWork work);

// ---- kern_norm.c: batch norm and group norm ----------------------------------------
//
// Both as in ref_norm.c (biased variance for normalising, Keras's momentum and
// the unbiased variance for the running statistics), statistics accumulated in
// double. `relu` fuses a following ReLU: the forward writes relu(bn(x)), and
// the backward takes dy of relu's output and recomputes the mask from x.
// mean, invstd: [c] for bn, [n*groups] for gn, saved by the forward for the backward.
// work: kn_work(n, c, hw, groups (0 for bn), x or dx has two pieces); kn_bn_from_sums: kn_work(0, c, 0, 0, false).
void kn_bn_train(int n, int c, int hw, float eps, float momentum, KIn x, const float *gamma, const float *beta,
                 float *running_mean, float *running_var, float *mean, float *invstd, bool relu, float *y,
                 KWork work);
void kn_bn_eval(int n, int c, int hw, float eps, KIn x, const float *gamma, const float *beta,
                const float *running_mean, const float *running_var, bool relu, float *y, KWork work);
void kn_bn_bwd(int n, int c, int hw, KIn x, const float *gamma, const float *beta, const float *mean,
               const float *invstd, bool relu, const float *dy, float *dgamma, float *dbeta, KOut dx, KWork work);
// Batch-norm training statistics from per-part sums (stats as a KOut epilogue
// writes them: parts = images * rows, each [2][16 * blocks]) of count values
// per channel: running statistics updated as kn_bn_train does, mean and invstd
// saved, and a consumer's prologue: scale = gamma * invstd, shift = beta - mean * scale.
void kn_bn_from_sums(int c, int parts, int64_t count, const double *stats, float eps, float momentum,
                     const float *gamma, const float *beta, float *running_mean, float *running_var, float *mean,
                     float *invstd, float *scale, float *shift, KWork work);
// The same from the tensor itself (when no kernel's epilogue summed it), without writing y.
void kn_bn_stats(int n, int c, int hw, float eps, float momentum, KIn x, const float *gamma, const float *beta,
                 float *running_mean, float *running_var, float *mean, float *invstd, float *scale, float *shift,
                 KWork work);
// Inference: the prologue from the running statistics.
void kn_bn_eval_coeffs(int c, float eps, const float *gamma, const float *beta, const float *running_mean,
                       const float *running_var, float *scale, float *shift);
void kn_gn_fwd(int n, int c, int hw, int groups, float eps, KIn x, const float *gamma, const float *beta,
               float *mean, float *invstd, bool relu, float *y, KWork work);
void kn_gn_bwd(int n, int c, int hw, int groups, KIn x, const float *gamma, const float *beta, const float *mean,
               const float *invstd, bool relu, const float *dy, float *dgamma, float *dbeta, KOut dx, KWork work);

// ---- kern_pointwise.c: elementwise ops on whole blocked tensors of `count` floats ----

void kp_relu(size_t count, const float *x, float *y);
void kp_relu_bwd(size_t count, const float *y, const float *dy, KOut dx);                 // mask from the output
void kp_leaky_relu(size_t count, float alpha, const float *x, float *y);
void kp_leaky_relu_bwd(size_t count, float alpha, const float *x, const float *dy, KOut dx); // mask from the input
void kp_sigmoid(size_t count, const float *x, float *y);
void kp_sigmoid_bwd(size_t count, const float *y, const float *dy, KOut dx);
void kp_tanh(size_t count, const float *x, float *y);
void kp_tanh_bwd(size_t count, const float *y, const float *dy, KOut dx); // (1 - y^2) dy
// y = a + b, then relu when asked.
void kp_add(size_t count, const float *a, const float *b, bool relu, float *y);
// dx (=|+=) dy: a gradient that caec could not alias (a copy or an accumulation).
void kp_copy(size_t count, const float *dy, KOut dx);
// Spatial dropout over blocked [n, c, hw]: y = keep[i*c + ch] ? x / (1 - rate) : 0; the
// backward is the same map (kp_dropout with dy, dx).
void kp_dropout(int n, int c, int hw, float rate, const uint8_t *keep, const float *x, KOut y);
// Copies channels of a blocked tensor into a channel range of another: the
// concatenation caec falls back to when a piece does not start on a 16-channel block.
void kp_concat_piece(int n, int hw, int c_from, int c_to, int offset, const float *x, float *y);
void kp_split_piece(int n, int hw, int c_from, int c_to, int offset, const float *dy, KOut dx);

// ---- kern_loss.c: losses with their gradients, and metrics -----------------------
//
// Images are 1-channel, plain [n][h][w]. Sums are per image, in double, in a
// fixed order. The *_sigmoid variants take the logits z of the model's final
// sigmoid: they write y = sigmoid(z) and the gradient with respect to z, in
// one kernel. work: kl_loss_work(n, h, w) (h = 1, w = hw for MSE).
double kl_mse(int n, int hw, const float *y, const float *t, float *dy /*nullable*/, KWork work);
double kl_mse_sigmoid(int n, int hw, const float *z, const float *t, float *y, float *dz, KWork work);
double kl_dssim(int n, int h, int w, const float *y, const float *t, float *dy /*nullable*/, KWork work);
double kl_dssim_sigmoid(int n, int h, int w, const float *z, const float *t, float *y, float *dz, KWork work);
// Per image: MSE, DSSIM and PSNR (max 1.0), each array [n].
void kl_metrics(int n, int h, int w, const float *y, const float *t, double *mse, double *dssim, double *psnr);

// ---- kern_optim.c: optimizer updates in place, with L2 ------------------------------
//
// Each first adds the L2 term to the gradient in place (g += 2 l2 w; l2 may
// be 0), so the gradient a step reports is the one applied, then updates w
// as Keras does (see ref.h).
void ko_rmsprop(size_t count, float lr, float rho, float eps, float l2, float *w, float *g, float *ms);
void ko_adam(size_t count, float lr, float b1, float b2, float eps, int64_t t, float l2, float *w, float *g,
             float *m, float *v);
void ko_sgd(size_t count, float lr, float momentum, float l2, float *w, float *g, float *v);
void ko_l2_grad(size_t count, float l2, const float *w, float *g); // g += 2 l2 w (no update)
// sum w^2 in double, in a fixed order (the L2 term of the loss). work: ko_sumsq_work(count).
double ko_sumsq(size_t count, const float *w, KWork work);

#endif
