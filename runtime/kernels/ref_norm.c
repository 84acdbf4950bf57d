// ref_norm.c: batch norm and group norm. Both normalise sets of values by the
// set's own mean and biased variance, then scale and shift per channel. They
// differ only in the sets: one channel across the batch (bn), or a group of
// channels within one image (gn). Either is a box of images x channels of
// whole [hw] planes, so one forward and one backward over a box serve both.
#include "ref.h"

#include <math.h>
#include <string.h>

typedef struct Box {
  int c, hw;  // the tensor [n, c, hw]
  int n0, n1; // images [n0, n1)
  int c0, c1; // channels [c0, c1)
} Box;

static size_t box_count(const Box *b) { return (size_t)(b->n1 - b->n0) * (size_t)(b->c1 - b->c0) * (size_t)b->hw; }

// Offset of the plane of image n, channel ch.
static size_t plane(const Box *b, int n, int ch) { return ((size_t)n * (size_t)b->c + (size_t)ch) * (size_t)b->hw; }

// The box's mean and biased variance, in two passes so that a large mean does not cost precision.
static void moments(const Box *b, const double *x, double *mean, double *var) {
  double sum = 0, ss = 0;
  for (int n = b->n0; n < b->n1; n++)
    for (int ch = b->c0; ch < b->c1; ch++)
      for (int i = 0; i < b->hw; i++)
        sum += x[plane(b, n, ch) + i];
  *mean = sum / (double)box_count(b);
  for (int n = b->n0; n < b->n1; n++)
    for (int ch = b->c0; ch < b->c1; ch++)
      for (int i = 0; i < b->hw; i++) {
        double d = x[plane(b, n, ch) + i] - *mean;
        ss += d * d;
      }
  *var = ss / (double)box_count(b);
}

static void normalise(const Box *b, double mean, double invstd, const double *x, const double *gamma,
                      const double *beta, double *y) {
  for (int n = b->n0; n < b->n1; n++)
    for (int ch = b->c0; ch < b->c1; ch++)
      for (int i = 0; i < b->hw; i++) {
        size_t k = plane(b, n, ch) + i;
        y[k] = gamma[ch] * (x[k] - mean) * invstd + beta[ch];
      }
}

// The box's share of the backward: dx on the box, and dgamma, dbeta added to per channel. The mean and
// variance depend on every x of the box, so with xhat = (x - mean) invstd and g = gamma dy,
// dx = invstd (g - mean(g) - xhat mean(g xhat)).
static void normalise_bwd(const Box *b, double mean, double invstd, const double *x, const double *gamma,
                          const double *dy, double *dx, double *dgamma, double *dbeta) {
  double sum_g = 0, sum_gx = 0;
  for (int n = b->n0; n < b->n1; n++)
    for (int ch = b->c0; ch < b->c1; ch++)
      for (int i = 0; i < b->hw; i++) {
        size_t k = plane(b, n, ch) + i;
        double xhat = (x[k] - mean) * invstd;
        sum_g += gamma[ch] * dy[k];
        sum_gx += gamma[ch] * dy[k] * xhat;
        dgamma[ch] += dy[k] * xhat;
        dbeta[ch] += dy[k];
      }
  double mean_g = sum_g / (double)box_count(b), mean_gx = sum_gx / (double)box_count(b);
  for (int n = b->n0; n < b->n1; n++)
    for (int ch = b->c0; ch < b->c1; ch++)
      for (int i = 0; i < b->hw; i++) {
        size_t k = plane(b, n, ch) + i;
        double xhat = (x[k] - mean) * invstd;
        dx[k] = invstd * (gamma[ch] * dy[k] - mean_g - xhat * mean_gx);
      }
}

void ref_bn_fwd_train(int n, int c, int hw, double eps, double momentum, const double *x, const double *gamma,
                      const double *beta, double *running_mean, double *running_var, double *y, double *save_mean,
                      double *save_invstd) {
  for (int ch = 0; ch < c; ch++) {
    Box b = {c, hw, 0, n, ch, ch + 1};
    double mean, var;
    moments(&b, x, &mean, &var);
    double invstd = 1 / sqrt(var + eps);
    normalise(&b, mean, invstd, x, gamma, beta, y);
    save_mean[ch] = mean;
    save_invstd[ch] = invstd;
    // TensorFlow's fused kernel takes count - 1 as 1 for a single value rather than dividing by zero.
    size_t count = box_count(&b);
    double unbiased = var * (double)count / (double)(count > 1 ? count - 1 : 1);
    running_mean[ch] = momentum * running_mean[ch] + (1 - momentum) * mean;
    running_var[ch] = momentum * running_var[ch] + (1 - momentum) * unbiased;
  }
}

void ref_bn_fwd_eval(int n, int c, int hw, double eps, const double *x, const double *gamma, const double *beta,
                     const double *running_mean, const double *running_var, double *y) {
  for (int ch = 0; ch < c; ch++) {
    Box b = {c, hw, 0, n, ch, ch + 1};
    normalise(&b, running_mean[ch], 1 / sqrt(running_var[ch] + eps), x, gamma, beta, y);
  }
}

void ref_bn_bwd(int n, int c, int hw, const double *x, const double *gamma, const double *save_mean,
                const double *save_invstd, const double *dy, double *dx, double *dgamma, double *dbeta) {
  memset(dgamma, 0, sizeof *dgamma * (size_t)c);
  memset(dbeta, 0, sizeof *dbeta * (size_t)c);
  for (int ch = 0; ch < c; ch++) {
    Box b = {c, hw, 0, n, ch, ch + 1};
    normalise_bwd(&b, save_mean[ch], save_invstd[ch], x, gamma, dy, dx, dgamma, dbeta);
  }
}

void ref_gn_fwd(int n, int c, int hw, int groups, double eps, const double *x, const double *gamma, const double *beta,
                double *y, double *save_mean, double *save_invstd) {
  int cg = c / groups;
  for (int i = 0; i < n; i++)
    for (int g = 0; g < groups; g++) {
      Box b = {c, hw, i, i + 1, g * cg, (g + 1) * cg};
      double mean, var;
      moments(&b, x, &mean, &var);
      double invstd = 1 / sqrt(var + eps);
      normalise(&b, mean, invstd, x, gamma, beta, y);
      save_mean[(size_t)i * (size_t)groups + (size_t)g] = mean;
      save_invstd[(size_t)i * (size_t)groups + (size_t)g] = invstd;
    }
}

void ref_gn_bwd(int n, int c, int hw, int groups, const double *x, const double *gamma, const double *save_mean,
                const double *save_invstd, const double *dy, double *dx, double *dgamma, double *dbeta) {
  int cg = c / groups;
  memset(dgamma, 0, sizeof *dgamma * (size_t)c);
  memset(dbeta, 0, sizeof *dbeta * (size_t)c);
  for (int i = 0; i < n; i++)
    for (int g = 0; g < groups; g++) {
      Box b = {c, hw, i, i + 1, g * cg, (g + 1) * cg};
      size_t k = (size_t)i * (size_t)groups + (size_t)g;
      normalise_bwd(&b, save_mean[k], save_invstd[k], x, gamma, dy, dx, dgamma, dbeta);
    }
}
