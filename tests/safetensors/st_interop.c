// st_interop.c: the C half of the PyTorch interop test (interop.py is the
// other). Reads IN, written by PyTorch, and checks every value; then writes OUT
// with the tensors in reverse order and each value changed in a known way, for
// PyTorch to check: F32 x*2, F64 x+1, I64 x+1, U8 255-x.
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "st_interop: %s\n", what);
    failures++;
  }
}

static const StTensor *expect(const StFile *f, int index, const char *name, StDtype dtype, int ndim,
                              const int64_t *shape) {
  const StTensor *t = index < f->count ? &f->tensors[index] : NULL;
  if (!t || strcmp(t->name, name) || t->dtype != dtype || t->ndim != ndim ||
      memcmp(t->shape, shape, (size_t)ndim * sizeof *shape)) {
    fprintf(stderr, "st_interop: tensor %d is not '%s' of the expected dtype and shape\n", index, name);
    failures++;
    return NULL;
  }
  return t;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: st_interop IN OUT\n");
    return 2;
  }
  StFile f;
  char err[512];
  if (st_read(argv[1], &f, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  check(f.count == 6, "want 6 tensors");
  check(f.nmeta == 2 && st_meta(&f, "format") && !strcmp(st_meta(&f, "format"), "pt") && st_meta(&f, "model") &&
            !strcmp(st_meta(&f, "model"), "res_unet"), "metadata");
  const StTensor *t;
  if ((t = expect(&f, 0, "enc.conv1.weight", ST_F32, 4, (int64_t[]){4, 1, 3, 3})))
    for (int i = 0; i < 36; i++)
      check(((float *)t->data)[i] == i * 0.5f - 3, "enc.conv1.weight values");
  if ((t = expect(&f, 1, "bn.running_var", ST_F64, 1, (int64_t[]){4})))
    for (int i = 0; i < 4; i++)
      check(((double *)t->data)[i] == 1.0 / (i + 1), "bn.running_var values");
  if ((t = expect(&f, 2, "step", ST_I64, 0, (int64_t[]){0})))
    check(*(int64_t *)t->data == 123456789012, "step value");
  if ((t = expect(&f, 3, "mask", ST_U8, 2, (int64_t[]){2, 3})))
    check(!memcmp(t->data, (unsigned char[]){0, 1, 2, 253, 254, 255}, 6), "mask values");
  if ((t = expect(&f, 4, "empty", ST_F32, 2, (int64_t[]){0, 3})))
    check(t->nbytes == 0, "empty size");
  if ((t = expect(&f, 5, "d\xc3\xa9" "codeur.poids", ST_F32, 1, (int64_t[]){2})))
    check(((float *)t->data)[0] == 1e-30f && ((float *)t->data)[1] == -7.5f, "d\xc3\xa9" "codeur.poids values");
  if (failures || f.count != 6) {
    st_free(&f);
    return 1;
  }

  StTensor out[6];
  for (int i = 0; i < 6; i++) {
    StTensor *o = &out[i];
    *o = f.tensors[5 - i]; // the data is ours to change
    size_t n = o->nbytes / st_dtype_size(o->dtype);
    for (size_t k = 0; k < n; k++)
      switch (o->dtype) {
      case ST_F32: ((float *)o->data)[k] *= 2; break;
      case ST_F64: ((double *)o->data)[k] += 1; break;
      case ST_I64: ((int64_t *)o->data)[k] += 1; break;
      case ST_U8: ((unsigned char *)o->data)[k] = (unsigned char)(255 - ((unsigned char *)o->data)[k]); break;
      }
  }
  const char *meta[] = {"written_by", "caec", "source", st_meta(&f, "model"), NULL};
  int rc = st_write(argv[2], out, 6, meta, err, sizeof err);
  if (rc)
    fprintf(stderr, "%s\n", err);
  st_free(&f);
  return rc != 0;
}
