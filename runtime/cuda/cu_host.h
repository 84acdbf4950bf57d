// cu_host.h: the host side of a generated CUDA trainer. caec emits the two
// programs as tables of launches (CuLaunch) over the kernels of NAME.cu;
// cu_host.c gives the CaecModel's entry points for them: the state in device
// memory, the batch in, the programs run, the output and loss out. Where the
// kernels run is the device layer's business (cu_device.h): a GPU, or the
// emulator on the CPU, chosen when the trainer is linked.
#ifndef CAEC_CU_HOST_H
#define CAEC_CU_HOST_H

#include "cu.h"
#include "trainer.h"

typedef struct CuLaunch {
  const char *name; // the kernel's name in NAME.cu (for NVRTC and messages)
  CuKernelFn *fn;   // its host stub (nvcc) or its C function (the emulator)
  unsigned grid[3];
} CuLaunch;

typedef struct CuProgram {
  const CuLaunch *launches;
  int n;
} CuProgram;

typedef struct CuModel {
  CuProgram train, forward;
  int64_t work_bytes; // the largest workspace of any op
} CuModel;

bool cu_state_new(const CuModel *cm, const CaecModel *m, CaecState *s); // false when out of memory
void cu_state_free(CaecState *s);
double cu_train_step(const CuModel *cm, CaecState *s, const CaecHyper *h, const float *x, float *y);
void cu_forward(const CuModel *cm, CaecState *s, const float *x, float *y);
const char *cu_backend(void); // for `NAME info`

#endif
