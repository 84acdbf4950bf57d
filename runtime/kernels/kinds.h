// kinds.h: the losses, optimizers and evaluation metrics, each defined once for caec, its
// tools, the trainers and the device code, with the names the train section, the command
// lines and the result files use. It compiles as
// C, as CUDA C++ and under NVRTC (which sees only the enums).
#ifndef CAEC_KINDS_H
#define CAEC_KINDS_H

// X(ID, name, es_min_delta, rl_min_delta): the min_deltas are the seed's Keras callbacks'
// defaults for that loss (`auto` in a train section, -1 in a CaecSchedule).
#define CAEC_LOSSES(X)               \
  X(CAEC_MSE, "mse", 2e-7, 1e-7)     \
  X(CAEC_DSSIM, "dssim", 5e-5, 2e-5)

// X(ID, name, lr): lr is the default learning rate (Keras's).
#define CAEC_OPTIMS(X)             \
  X(CAEC_RMSPROP, "rmsprop", 1e-3) \
  X(CAEC_ADAM, "adam", 1e-3)       \
  X(CAEC_SGD, "sgd", 1e-2)

// X(ID, name): the metrics eval scores each slice by, in the order of the columns of its
// per_image.csv and summary.csv, which caec compare and caec experiment read.
#define CAEC_METRICS(X)         \
  X(CAEC_METRIC_MSE, "mse")     \
  X(CAEC_METRIC_DSSIM, "dssim") \
  X(CAEC_METRIC_PSNR, "psnr")
// per_image.csv's header: a slice's cache index, volume and slice, then the metrics.
#define CAEC_PER_IMAGE_HEADER "index,volume,slice,mse,dssim,psnr"

#define CAEC_KIND_ID(id, ...) id,
#define CAEC_KIND_SPELLING(id, ...) #id, // as generated source names it
#define CAEC_KIND_ONE(...) +1
typedef enum { CAEC_LOSSES(CAEC_KIND_ID) } CaecLoss;
typedef enum { CAEC_OPTIMS(CAEC_KIND_ID) } CaecOptim;
typedef enum { CAEC_METRICS(CAEC_KIND_ID) } CaecMetric;
// Counts, outside the enums so that switches stay complete.
enum {
  CAEC_NLOSSES = 0 CAEC_LOSSES(CAEC_KIND_ONE),
  CAEC_NOPTIMS = 0 CAEC_OPTIMS(CAEC_KIND_ONE),
  CAEC_NMETRICS = 0 CAEC_METRICS(CAEC_KIND_ONE)
};

#if !defined(__CUDACC_RTC__)
#include <string.h>

#define CAEC_KIND_NAME(id, name, ...) name,
static inline const char *caec_loss_name(CaecLoss l) {
  static const char *const names[] = {CAEC_LOSSES(CAEC_KIND_NAME)};
  return names[l];
}
static inline const char *caec_optim_name(CaecOptim o) {
  static const char *const names[] = {CAEC_OPTIMS(CAEC_KIND_NAME)};
  return names[o];
}
static inline const char *caec_metric_name(CaecMetric k) {
  static const char *const names[] = {CAEC_METRICS(CAEC_KIND_NAME)};
  return names[k];
}
// The kind called name, or -1.
static inline int caec_loss_lookup(const char *name) {
  for (int l = 0; l < CAEC_NLOSSES; l++)
    if (!strcmp(caec_loss_name((CaecLoss)l), name))
      return l;
  return -1;
}
static inline int caec_optim_lookup(const char *name) {
  for (int o = 0; o < CAEC_NOPTIMS; o++)
    if (!strcmp(caec_optim_name((CaecOptim)o), name))
      return o;
  return -1;
}

#define CAEC_KIND_ES(id, name, es, rl) es,
#define CAEC_KIND_RL(id, name, es, rl) rl,
#define CAEC_KIND_LR(id, name, lr) lr,
static inline double caec_es_min_delta(CaecLoss l) {
  static const double v[] = {CAEC_LOSSES(CAEC_KIND_ES)};
  return v[l];
}
static inline double caec_rl_min_delta(CaecLoss l) {
  static const double v[] = {CAEC_LOSSES(CAEC_KIND_RL)};
  return v[l];
}
static inline double caec_default_lr(CaecOptim o) {
  static const double v[] = {CAEC_OPTIMS(CAEC_KIND_LR)};
  return v[o];
}
#endif

#endif
