// data.h: a problem's tensors in canonical layouts (NCHW, weights
// [grid c][image c][k][k]), what every implementation reads and what its
// results are compared in, and the naive reference (runtime/kernels/ref_conv.c, in
// double) that checks them.
#ifndef CAEC_BENCH_DATA_H
#define CAEC_BENCH_DATA_H

#include "problem.h"

typedef struct Data {
  Problem p;
  float *in, *dy;             // the kernel's inputs (dy: bwd_weights only)
  float *in_scale, *in_shift; // prologue coefficients per channel of in
  float *dy_scale, *dy_shift; // ... and of dy
  float *in_eff, *dy_eff;     // after their prologues: the values the op itself reads
  float *w, *bias;            // bias [problem_bias_channels] (NULL without)
  float *res, *old;           // gather/scatter: residual, the output's prior value (for out_acc)
} Data;

// What an implementation produced, canonical; NULL where the problem has no such output.
typedef struct Result {
  float *out;          // gather/scatter
  double *sum, *sumsq; // stats, per output channel
  float *dw, *db;      // bwd_weights
} Result;

Data data_new(const Problem *p, uint64_t seed);
void data_free(Data *d);
Result result_new(const Problem *p);
void result_free(Result *r);

// The reference: the op alone (bias included) in double, the slow part, then
// the epilogue of any variant of the problem (ours, what oneDNN fuses, or
// LIBXSMM's op without its bias).
typedef struct Ref {
  double *z;       // gather/scatter: the op's output with bias
  double *dw, *db; // bwd_weights
  double seconds;  // time of the op (the naive kernel)
} Ref;

Ref ref_new(const Data *d);
void ref_free(Ref *r);

// The largest error of r against the reference of variant q of the problem
// (its epilogue features; same shapes), relative to each tensor's largest
// value; the tensor that has it in *worst.
double ref_error(const Ref *ref, const Data *d, const Problem *q, const Result *r, const char **worst);

#endif
