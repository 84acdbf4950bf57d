// cu_host.c: a CUDA trainer's entry points (cu_host.h) over the device layer.
#include "cu_device.h"

#include <stdlib.h>
#include <string.h>

// What a CaecState's device field holds: the arenas and batch buffers as the
// kernels see them, and each program's cached graph.
typedef struct CuState {
  CuArenas A;
  CuHyper *hyper;   // device copies of the step's settings
  double *loss;     // [2]: the loss, and the L2 kernels' sum of squares
  float *x, *target, *y;
  size_t image_bytes; // of x, target and y: [batch][height][width]
  void *graph[2];   // train, forward
} CuState;

bool cu_state_new(const CuModel *cm, const CaecModel *m, CaecState *s) {
  memset(s, 0, sizeof *s);
  CuState *d = calloc(1, sizeof *d);
  if (!d)
    return false;
  s->device = d;
  const int64_t *b = m->arena_bytes;
  d->image_bytes = (size_t)m->batch * (size_t)m->height * (size_t)m->width * sizeof(float);
  s->params = cu_dev_alloc((size_t)b[0]), s->grads = cu_dev_alloc((size_t)b[1]);
  s->optim = cu_dev_alloc((size_t)b[2]), s->acts = cu_dev_alloc((size_t)b[3]);
  s->scratch = cu_dev_alloc((size_t)b[4]);
  d->hyper = cu_dev_alloc(sizeof(CuHyper)), d->loss = cu_dev_alloc(2 * sizeof(double));
  d->x = cu_dev_alloc(d->image_bytes), d->target = cu_dev_alloc(d->image_bytes);
  d->y = cu_dev_alloc(d->image_bytes);
  void *work = cu_dev_alloc((size_t)cm->work_bytes);
  d->A = (CuArenas){s->params, s->grads, s->optim, s->acts, s->scratch, work, d->x, d->target, d->y, d->hyper,
                    d->loss};
  if (s->params && s->grads && s->optim && s->acts && s->scratch && d->hyper && d->loss && d->x && d->target &&
      d->y && work)
    return true;
  cu_state_free(s);
  return false;
}

void cu_state_free(CaecState *s) {
  CuState *d = s->device;
  if (d) {
    for (int p = 0; p < 2; p++)
      cu_dev_forget(d->graph[p]);
    void *bufs[] = {d->hyper, d->loss, d->x, d->target, d->y, d->A.work};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
      cu_dev_free(bufs[i]);
    free(d);
  }
  void *arenas[] = {s->params, s->grads, s->optim, s->acts, s->scratch};
  for (size_t i = 0; i < sizeof arenas / sizeof *arenas; i++)
    cu_dev_free(arenas[i]);
  memset(s, 0, sizeof *s);
}

double cu_train_step(const CuModel *cm, CaecState *s, const CaecHyper *h, const float *x, float *y) {
  CuState *d = s->device;
  CuHyper hyper = {(int)h->loss, (int)h->optimizer, h->lr, h->rho, h->eps, h->beta1, h->beta2, h->momentum, h->l2,
                   h->dropout, h->update, h->seed, s->step};
  cu_dev_upload(d->hyper, &hyper, sizeof hyper);
  cu_dev_upload(d->x, x, d->image_bytes);
  // The target has a buffer of its own, so that the captured program reads one place whatever the caller
  // gives; without one it is x, copied on the device rather than sent from the host a second time.
  cu_dev_upload(d->target, s->target ? s->target : d->x, d->image_bytes);
  cu_dev_run(&cm->train, &d->A, &d->graph[0]);
  double loss[2];
  cu_dev_download(loss, d->loss, sizeof loss);
  cu_dev_download(y, d->y, d->image_bytes);
  if (h->update)
    s->step++;
  return loss[0] + (h->l2 != 0 ? h->l2 * loss[1] : 0); // as the C step adds its L2 term
}

void cu_forward(const CuModel *cm, CaecState *s, const float *x, float *y) {
  CuState *d = s->device;
  cu_dev_upload(d->x, x, d->image_bytes);
  cu_dev_run(&cm->forward, &d->A, &d->graph[1]);
  cu_dev_download(y, d->y, d->image_bytes);
}

const char *cu_backend(void) { return cu_dev_describe(); }
