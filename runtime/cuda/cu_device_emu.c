// cu_device_emu.c: the device layer of an emulated CUDA trainer: device
// memory is host memory and every launch runs on the emulator (cu_emu.c).
#include "cu_device.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *cu_dev_alloc(size_t bytes) {
  size_t size = (bytes + 255) / 256 * 256;
  void *p = aligned_alloc(256, size ? size : 256);
  if (p)
    memset(p, 0, size ? size : 256);
  return p;
}

void cu_dev_free(void *p) { free(p); }
void cu_dev_upload(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
void cu_dev_download(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }

void cu_dev_run(const CuProgram *p, const CuArenas *A, void **graph) {
  (void)graph; // nothing to capture: launches cost little here
  for (int i = 0; i < p->n; i++)
    cu_emu_launch(p->launches[i].fn, p->launches[i].name, p->launches[i].grid, CU_THREADS, *A);
}

void cu_dev_forget(void *graph) { (void)graph; }

const char *cu_dev_describe(void) {
  static char line[160];
  snprintf(line, sizeof line,
           "CUDA kernels emulated on the CPU (each block's threads as user-level threads; blocks on %d OpenMP "
           "threads)", omp_get_max_threads());
  return line;
}
