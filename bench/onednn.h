// onednn.h: a problem on oneDNN (Debian's libdnnl-dev), the optimised library
// our kernels are held against. conv runs on oneDNN's convolution primitives,
// convt on its deconvolution primitives, each pass on its own (forward,
// backward data, backward weights), with format_tag any so that oneDNN picks
// its blocked layouts; the reorders into and out of them happen outside the
// timed runs. Forward passes get the epilogue as post-ops (a residual or an
// accumulation as a sum, relu as an eltwise).
#ifndef CAEC_BENCH_ONEDNN_H
#define CAEC_BENCH_ONEDNN_H

#include "data.h"

#include <stddef.h>

// The part of p that oneDNN computes: the op, its bias, and the epilogue its
// post-ops fuse. It reads the inputs after their prologues (Data's in_eff,
// dy_eff), prepared untimed, and writes one tensor; prologues, batch-norm sums,
// split outputs and backward accumulation would be other kernels, not timed here.
Problem onednn_fused(const Problem *p);

typedef struct Onednn Onednn;

// NULL, with the reason in why, when oneDNN is not built in or rejects the problem.
Onednn *onednn_new(const Data *d, char *why, size_t size);
void onednn_run(void *o); // one execution, waited for
void onednn_result(Onednn *o, Result *r);
// The implementation oneDNN chose ("jit:avx2"...).
const char *onednn_impl(const Onednn *o);
void onednn_free(Onednn *o);
// "oneDNN 2.6.3", or "not built".
const char *onednn_version(void);

#endif
