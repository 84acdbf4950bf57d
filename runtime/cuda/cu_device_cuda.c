// cu_device_cuda.c: the device layer of a GPU trainer, on the CUDA runtime.
// The arenas are managed memory, so the trainer's commands read and write
// parameters in place; each program is captured into a CUDA graph on its
// first run and replayed after (its kernels take only the arenas, which stay
// put), so a step costs one graph launch instead of hundreds of kernel launches.
#include "cu_device.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

static cudaStream_t stream;

static void check(cudaError_t e, const char *what) {
  if (e == cudaSuccess)
    return;
  fprintf(stderr, "caec: CUDA error in %s: %s\n", what, cudaGetErrorString(e));
  exit(1);
}

static cudaStream_t the_stream(void) {
  if (!stream)
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  return stream;
}

void *cu_dev_alloc(size_t bytes) {
  void *p = NULL;
  cudaError_t e = cudaMallocManaged(&p, bytes ? bytes : 256, cudaMemAttachGlobal);
  if (e == cudaErrorMemoryAllocation)
    return NULL;
  check(e, "cudaMallocManaged"); // no device, no driver: said once, plainly
  check(cudaMemset(p, 0, bytes ? bytes : 256), "cudaMemset");
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  return p;
}

void cu_dev_free(void *p) {
  if (p)
    cudaFree(p);
}

void cu_dev_upload(void *dst, const void *src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, the_stream()), "cudaMemcpyAsync (upload)");
}

void cu_dev_download(void *dst, const void *src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, the_stream()), "cudaMemcpyAsync (download)");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

void cu_dev_run(const CuProgram *p, const CuArenas *A, void **graph) {
  cudaStream_t st = the_stream();
  if (!*graph) {
    cudaGraph_t g;
    check(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    CuArenas arenas = *A;
    void *args[] = {&arenas};
    for (int i = 0; i < p->n; i++) {
      const CuLaunch *l = &p->launches[i];
      dim3 grid = {l->grid[0], l->grid[1], l->grid[2]}, block = {CU_THREADS, 1, 1};
      cudaError_t e = cudaLaunchKernel((const void *)l->fn, grid, block, args, 0, st);
      if (e != cudaSuccess) {
        fprintf(stderr, "caec: CUDA error launching kernel %s: %s\n", l->name, cudaGetErrorString(e));
        exit(1);
      }
    }
    check(cudaStreamEndCapture(st, &g), "cudaStreamEndCapture");
    cudaGraphExec_t exec;
    check(cudaGraphInstantiate(&exec, g, 0), "cudaGraphInstantiate");
    cudaGraphDestroy(g);
    *graph = exec;
  }
  check(cudaGraphLaunch((cudaGraphExec_t)*graph, st), "cudaGraphLaunch");
  check(cudaStreamSynchronize(st), "a kernel of the step");
}

void cu_dev_forget(void *graph) {
  if (graph)
    cudaGraphExecDestroy((cudaGraphExec_t)graph);
}

const char *cu_dev_describe(void) {
  static char line[1024];
  int dev = 0, runtime = 0;
  struct cudaDeviceProp p;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
  cudaRuntimeGetVersion(&runtime);
  snprintf(line, sizeof line, "CUDA on %s (sm_%d%d, %d SMs, %.0f GiB), runtime %d.%d, each program a CUDA graph",
           p.name, p.major, p.minor, p.multiProcessorCount, (double)p.totalGlobalMem / (1 << 30), runtime / 1000,
           runtime % 1000 / 10);
  return line;
}
