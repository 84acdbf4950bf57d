// resize_interop.c: the C half of the PyTorch cross-check (interop.py is the
// other). Reads IN, whose tensors come in pairs "K.image" (F32, h x w) and
// "K.size" (I64, {out_h, out_w}), and writes OUT with "K.resized"
// (resize_bilinear) and "K.prepared" (slice_prepare) for each pair.
#include "resize.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: resize_interop IN OUT\n");
    return 2;
  }
  StFile f;
  char err[512];
  if (st_read(argv[1], &f, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int n = f.count / 2;
  StTensor *outs = calloc((size_t)n * 2 + 1, sizeof *outs);
  char (*names)[64] = calloc((size_t)n * 2 + 1, sizeof *names);
  int rc = !outs || !names;
  for (int k = 0; k < n && !rc; k++) {
    const StTensor *img = &f.tensors[2 * k], *size = &f.tensors[2 * k + 1];
    const int64_t *hw = size->data;
    if (img->dtype != ST_F32 || img->ndim != 2 || size->dtype != ST_I64 || size->ndim != 1 || size->shape[0] != 2 ||
        hw[0] < 1 || hw[1] < 1 || hw[0] > 4096 || hw[1] > 4096) {
      fprintf(stderr, "%s: tensors %d and %d are not an F32 image and its I64 output size\n", argv[1], 2 * k,
              2 * k + 1);
      rc = 1;
      break;
    }
    int h = (int)img->shape[0], w = (int)img->shape[1], oh = (int)hw[0], ow = (int)hw[1];
    size_t len = strcspn(img->name, ".");
    for (int j = 0; j < 2; j++) {
      StTensor *t = &outs[2 * k + j];
      snprintf(names[2 * k + j], sizeof names[0], "%.*s.%s", (int)len, img->name, j ? "prepared" : "resized");
      *t = (StTensor){.name = names[2 * k + j], .dtype = ST_F32, .ndim = 2, .shape = {oh, ow},
                      .nbytes = (size_t)oh * ow * sizeof(float)};
      t->data = malloc(t->nbytes);
    }
    float *slice = malloc(img->nbytes);
    if (!slice || !outs[2 * k].data || !outs[2 * k + 1].data ||
        resize_bilinear(img->data, h, w, outs[2 * k].data, oh, ow) ||
        slice_prepare(memcpy(slice, img->data, img->nbytes), h, w, outs[2 * k + 1].data, oh, ow)) {
      fputs("resize_interop: out of memory\n", stderr);
      rc = 1;
    }
    free(slice);
  }
  if (!rc && st_write(argv[2], outs, 2 * n, NULL, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    rc = 1;
  }
  for (int i = 0; outs && i < 2 * n; i++)
    free(outs[i].data);
  free(outs);
  free(names);
  st_free(&f);
  return rc;
}
