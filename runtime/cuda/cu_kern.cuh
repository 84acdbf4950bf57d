// cu_kern.cuh: the device ops of the CUDA back end, one header per op family;
// a generated trainer's kernels call them with literal shapes. Each op has the
// semantics of its namesake in kern.h (the C back end's kernels, which the
// tests compare them with), layouts included (NCHW16c, padding lanes zero;
// 1-channel tensors plain), and a host-side plan function (cu.h's CuPlan) for
// its launches.
//
// Determinism. No atomics: every output value and every partial sum is
// computed by one thread in a fixed order, and partial sums are combined in a
// fixed order (in shared memory within a block, across blocks by a second
// stage through the op's workspace), so results do not depend on scheduling.
#ifndef CAEC_CU_KERN_CUH
#define CAEC_CU_KERN_CUH

#include "cu.h"

#include "cu_conv.cuh"      // weight packing, gather, scatter, weight gradients
#include "cu_norm.cuh"      // batch norm, group norm, batch-norm row sums
#include "cu_pointwise.cuh" // activations, add, copies, dropout, concatenation pieces
#include "cu_train.cuh"     // losses with their gradients, sums of squares, optimizer updates

#endif
