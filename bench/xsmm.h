// xsmm.h: a problem on LIBXSMM (Debian's libxsmm-dev, 1.17), the second
// optimised library our kernels are shown beside. LIBXSMM 1.17 still has its
// convolution API (libxsmm_dnn_create_conv_layer: JIT-generated direct
// convolutions on blocked layouts, Georganas et al., SC18); it knows one op,
// the convolution from image to grid, with one symmetric padding per axis, in
// three passes (FWD, BWD, UPD) and fuses nothing. So a problem's kernel picks
// the pass (gather: FWD, scatter: BWD, wgrad: UPD; convt is the same
// convolution run the other way), its padding is split into LIBXSMM's
// symmetric part and zero rows and columns added to the image buffer, and
// bias, epilogue and prologues stay untimed. The copies into and out of its
// layouts happen outside the timed runs.
#ifndef CAEC_BENCH_XSMM_H
#define CAEC_BENCH_XSMM_H

#include "data.h"

#include <stddef.h>

// The part of p that LIBXSMM computes: the op alone, without bias (bwd_weights: dw alone).
Problem xsmm_computes(const Problem *p);

typedef struct Xsmm Xsmm;

// NULL, with the reason in why, when LIBXSMM is not built in or rejects the problem. It runs on the
// OpenMP thread count current at creation.
Xsmm *xsmm_new(const Data *d, char *why, size_t size);
void xsmm_run(void *x); // one execution
void xsmm_result(Xsmm *x, Result *r);
// The code it runs ("JIT for skx").
const char *xsmm_impl(const Xsmm *x);
void xsmm_free(Xsmm *x);
// "LIBXSMM 1.17", or "not built".
const char *xsmm_version(void);

#endif
