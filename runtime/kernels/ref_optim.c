// ref_optim.c: the Keras optimizer updates, one parameter tensor at a time.
#include "ref.h"

#include <math.h>

void ref_rmsprop(size_t count, double lr, double rho, double eps, double *w, const double *g, double *ms) {
  for (size_t i = 0; i < count; i++) {
    ms[i] = rho * ms[i] + (1 - rho) * g[i] * g[i];
    w[i] -= lr * g[i] / (sqrt(ms[i]) + eps);
  }
}

void ref_adam(size_t count, double lr, double b1, double b2, double eps, int64_t t, double *w, const double *g,
              double *m, double *v) {
  double step = lr * sqrt(1 - pow(b2, (double)t)) / (1 - pow(b1, (double)t));
  for (size_t i = 0; i < count; i++) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    w[i] -= step * m[i] / (sqrt(v[i]) + eps);
  }
}

void ref_sgd(size_t count, double lr, double momentum, double *w, const double *g, double *v) {
  for (size_t i = 0; i < count; i++) {
    v[i] = momentum * v[i] - lr * g[i];
    w[i] += v[i];
  }
}
