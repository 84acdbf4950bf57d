// kern_optim.c: the Keras optimizer updates (ref_optim.c) in float, with the
// L2 term added to the gradient first. Updates are elementwise, so any split
// among threads gives the same bits; ko_sumsq sums fixed chunks.
#include "kern.h"

#include <math.h>
#include <string.h>

// Below this many floats a loop is not worth waking the threads for.
#define PAR_MIN ((size_t)1 << 15)

void ko_l2_grad(size_t count, float l2, const float *restrict w, float *restrict g) {
  float k = 2 * l2;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++)
    g[i] += k * w[i];
}

void ko_rmsprop(size_t count, float lr, float rho, float eps, float l2, float *restrict w, float *restrict g,
                float *restrict ms) {
  float k = 2 * l2;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++) {
    g[i] += k * w[i];
    ms[i] = rho * ms[i] + (1 - rho) * g[i] * g[i];
    w[i] -= lr * g[i] / (sqrtf(ms[i]) + eps);
  }
}

void ko_adam(size_t count, float lr, float b1, float b2, float eps, int64_t t, float l2, float *restrict w,
             float *restrict g, float *restrict m, float *restrict v) {
  float k = 2 * l2, step = (float)(lr * sqrt(1 - pow(b2, (double)t)) / (1 - pow(b1, (double)t)));
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++) {
    g[i] += k * w[i];
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    w[i] -= step * m[i] / (sqrtf(v[i]) + eps);
  }
}

void ko_sgd(size_t count, float lr, float momentum, float l2, float *restrict w, float *restrict g,
            float *restrict v) {
  float k = 2 * l2;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t i = 0; i < count; i++) {
    g[i] += k * w[i];
    v[i] = momentum * v[i] - lr * g[i];
    w[i] += v[i];
  }
}

// Chunks of CHUNK values, each summed on 16 lanes (a fixed order that vectorises), then added in order;
// the chunks' sums in the workspace.
enum { CHUNK = KO_CHUNK };

double ko_sumsq(size_t count, const float *restrict w, KWork work) {
  size_t nchunk = (count + CHUNK - 1) / CHUNK;
  double *part = work.shared, sum = 0;
  memset(part, 0, nchunk * sizeof *part);
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t c = 0; c < nchunk; c++) {
    size_t end = (c + 1) * CHUNK < count ? (c + 1) * CHUNK : count;
    double lane[KB] = {0};
    for (size_t i = c * CHUNK; i < end; i += KB)
      for (size_t l = 0; l < KB && i + l < end; l++)
        lane[l] += (double)w[i + l] * w[i + l];
    for (int l = 0; l < KB; l++)
      part[c] += lane[l];
  }
  for (size_t c = 0; c < nchunk; c++)
    sum += part[c];
  return sum;
}
