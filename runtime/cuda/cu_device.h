// cu_device.h: where a CUDA trainer's kernels run. Two implementations, one
// linked into each trainer: cu_device_cuda.c (a GPU, through the CUDA
// runtime, each program captured once into a CUDA graph) and cu_device_emu.c
// (the emulator of cu_emu.c, on the CPU). Memory from cu_dev_alloc is
// readable and writable by the host between runs (CUDA managed memory), so
// the trainer's commands read and write parameters in place.
#ifndef CAEC_CU_DEVICE_H
#define CAEC_CU_DEVICE_H

#include "cu_host.h"

// Zeroed memory of bytes, 256-byte aligned; NULL when there is none.
void *cu_dev_alloc(size_t bytes);
void cu_dev_free(void *p);
// Copies between host memory and device memory (or within device memory), in order with the runs.
void cu_dev_upload(void *dst, const void *src, size_t bytes);
void cu_dev_download(void *dst, const void *src, size_t bytes);
// Runs the program's launches in order over the arenas and waits for them.
// *graph caches what the device makes of the program (a CUDA graph); free it with cu_dev_forget.
void cu_dev_run(const CuProgram *p, const CuArenas *A, void **graph);
void cu_dev_forget(void *graph);
const char *cu_dev_describe(void);

#endif
