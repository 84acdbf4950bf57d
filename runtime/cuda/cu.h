// cu.h: what a generated CUDA trainer's device code shares with its host code
// and with the runtime. One source serves three compilers:
//   nvcc     the GPU trainer (__CUDACC__)
//   NVRTC    the compile checks (tests/cuda; __CUDACC_RTC__ too: no standard headers)
//   a C compiler, the emulator: the same kernels as host C (neither defined).
// Device code is written in the subset of C and CUDA C++ that all three take:
// no templates, compound literals, designated initialisers or implicit
// conversions from void *; functions marked CU_DEVICE, shared memory
// CU_SHARED, barriers CU_SYNC(), no warp shuffles or atomics.
//
// Kernels. Every kernel of a generated trainer is CU_KERNEL(name): it takes the
// arenas (CuArenas) by value and finds its buffers at offsets compiled in, so
// all kernels have one signature, a launch needs no argument packing, and a
// CUDA graph of the step replays unchanged. Every launch has CU_THREADS
// threads per block (one-dimensional); grids are up to three-dimensional.
//
// Device ops (cu_*.cuh) are run by every thread of their launch. An op that
// needs several launches (a reduction and its second stage) takes the stage
// as its first argument; its plan function (host code, cu_plan.h) gives the
// stages' grids and the workspace it needs, which lives only during the op's
// launches (CuArenas.work).
#ifndef CAEC_CU_H
#define CAEC_CU_H

#include "cu_plan.h" // CU_THREADS, the grid limits, the plans, and the standard integer types

// Resources hold by construction, so no launch can fail for them at run time:
// every kernel is compiled for CU_THREADS threads (__launch_bounds__), so
// ptxas keeps it within the register file (spilling rather than failing), and
// all shared memory is static and checked here, at compile time, against the
// static limit of every architecture caec targets (48 KiB on sm_80 and sm_90;
// more would need dynamic shared memory and an opt-in).
enum { CU_STATIC_SHARED_MAX = 48 * 1024 };
#if defined(__cplusplus)
#define CU_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define CU_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

// One step's settings on the device (runtime/trainer/trainer.h's CaecHyper, with the
// optimizer steps taken before this one: spatial dropout draws with step, the
// updates run as step + 1).
typedef struct CuHyper {
  int loss, optimizer; // a CaecLoss, a CaecOptim
  double lr, rho, eps, beta1, beta2, momentum, l2;
  int dropout, update;
  uint64_t seed;
  int64_t step;
} CuHyper;

// The device memory of a trainer. The five arenas are the C back end's, with
// the same offsets (the same memory plan); x, target and y are the batch, the
// loss's target (x when denoising is not asked for) and the output, each
// [batch][height][width]; loss holds one double per loss kernel.
typedef struct CuArenas {
  float *params, *grads, *optim;
  unsigned char *acts, *scratch;
  void *work; // the largest workspace any op of the model needs
  const float *x, *target;
  float *y;
  const CuHyper *hyper;
  double *loss;
} CuArenas;

#if defined(__CUDACC__)
#define CU_DEVICE static __device__ __forceinline__
#define CU_SHARED __shared__
#define CU_SYNC() __syncthreads()
#define CU_KERNEL(name) extern "C" __global__ void __launch_bounds__(CU_THREADS) name(CuArenas A)
#else
// The emulator (cu_emu.c). Each block's threads run as user-level threads on
// one host thread, switching at barriers; blocks run in parallel on OpenMP
// threads. Per-thread indices are thread-local variables that the scheduler
// sets before resuming a thread; shared memory is thread-local static storage,
// one copy per host thread and so per running block.
#define CU_DEVICE static inline
#define CU_SHARED static _Thread_local
#define CU_SYNC() cu_emu_sync()
#define CU_KERNEL(name) void name(CuArenas A)
typedef struct CuDim3 {
  unsigned x, y, z;
} CuDim3;
extern _Thread_local CuDim3 cu_emu_thread_idx, cu_emu_block_idx, cu_emu_block_dim, cu_emu_grid_dim;
#define threadIdx cu_emu_thread_idx
#define blockIdx cu_emu_block_idx
#define blockDim cu_emu_block_dim
#define gridDim cu_emu_grid_dim
// __syncthreads(): suspends the calling thread until every thread of its block
// has reached a barrier. A block whose threads finish while others wait at a
// barrier (a divergent barrier, undefined in CUDA) is reported and aborts.
void cu_emu_sync(void);
typedef void CuKernelFn(CuArenas A);
// Runs fn on grid[0] x grid[1] x grid[2] blocks of `threads` (1..1024) threads,
// as kernel `name` (for messages), and returns when all have finished.
void cu_emu_launch(CuKernelFn *fn, const char *name, const unsigned grid[3], unsigned threads, CuArenas A);
#endif

#if !defined(NULL)
#define NULL 0
#endif

// Tensor views for device code, which has no compound literals (kern_types.h's KIn and KOut).
CU_DEVICE KPro cu_pro(const float *scale, const float *shift, bool relu) {
  KPro p;
  p.scale = scale, p.shift = shift, p.relu = relu;
  return p;
}
#define CU_NO_PRO cu_pro(NULL, NULL, false)
CU_DEVICE KIn cu_in(const float *a, const float *b, int ca, KPro pro_a, KPro pro_b) {
  KIn v;
  v.a = a, v.b = b, v.ca = ca, v.pro_a = pro_a, v.pro_b = pro_b;
  return v;
}
// The CUDA ops take no stats: a separate op sums rows (cu_row_sums).
CU_DEVICE KOut cu_out(float *a, float *b, int ca, bool acc_a, bool acc_b, const float *res, bool relu) {
  KOut v;
  v.a = a, v.b = b, v.ca = ca, v.acc_a = acc_a, v.acc_b = acc_b, v.res = res, v.relu = relu, v.stats = NULL;
  return v;
}

#endif
