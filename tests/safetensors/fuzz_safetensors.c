// fuzz_safetensors.c: the safetensors reader on arbitrary bytes. Beyond the
// sanitizers it checks that a parsed file keeps the promises of safetensors.h
// (sizes match shapes, the tensors tile the data buffer, data is copied and
// aligned), that a rejected one says why in one line, and that writing a
// parsed file back and parsing it again gives the same tensors.
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

static void check_parsed(const StFile *f, const unsigned char *data, uint64_t data_len) {
  uint64_t covered = 0;
  for (int i = 0; i < f->count; i++) {
    const StTensor *t = &f->tensors[i];
    size_t size = st_dtype_size(t->dtype);
    uint64_t bytes = size;
    if (!t->name || !size || t->ndim < 0 || t->ndim > ST_MAX_DIMS || !t->data || (uintptr_t)t->data % size)
      abort();
    for (int d = 0; d < t->ndim; d++) {
      if (t->shape[d] < 0)
        abort();
      bytes *= (uint64_t)t->shape[d]; // the parser ruled out overflow
    }
    if (bytes != t->nbytes || t->offset > data_len || t->nbytes > data_len - t->offset ||
        memcmp(t->data, data + t->offset, t->nbytes) || st_find(f, t->name) != t)
      abort();
    covered += t->nbytes;
  }
  if (covered != data_len)
    abort();
  for (int i = 0; i < f->nmeta; i++)
    if (!f->meta[i].key || !f->meta[i].value || strcmp(st_meta(f, f->meta[i].key), f->meta[i].value))
      abort();
}

static void check_same(const StFile *a, const StFile *b) {
  if (a->count != b->count || a->nmeta != b->nmeta)
    abort();
  for (int i = 0; i < a->count; i++) {
    const StTensor *x = &a->tensors[i], *y = &b->tensors[i];
    if (strcmp(x->name, y->name) || x->dtype != y->dtype || x->ndim != y->ndim || x->nbytes != y->nbytes ||
        memcmp(x->shape, y->shape, sizeof x->shape) || memcmp(x->data, y->data, x->nbytes))
      abort();
  }
  for (int i = 0; i < a->nmeta; i++)
    if (strcmp(a->meta[i].key, b->meta[i].key) || strcmp(a->meta[i].value, b->meta[i].value))
      abort();
}

static void run(const unsigned char *file, size_t size) {
  StFile f, g;
  char err[512];
  if (st_parse(file, size, "fuzz", &f, err, sizeof err)) {
    if (strncmp(err, "fuzz: ", 6) || !err[6] || strchr(err, '\n'))
      abort();
    return;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | file[i];
  check_parsed(&f, file + 8 + n, size - 8 - n);

  const char **kv = malloc((2 * (size_t)f.nmeta + 1) * sizeof *kv);
  for (int i = 0; i < f.nmeta; i++)
    kv[2 * i] = f.meta[i].key, kv[2 * i + 1] = f.meta[i].value;
  kv[2 * f.nmeta] = NULL;
  unsigned char *buf;
  size_t len;
  if (st_encode(f.tensors, f.count, kv, &buf, &len, err, sizeof err) ||
      st_parse(buf, len, "again", &g, err, sizeof err))
    abort();
  check_same(&f, &g);
  st_free(&g);
  free(buf);
  free(kv);
  st_free(&f);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  run(data, size);
  // Most mutations of a whole file break its length prefix, so also read the
  // input as "header JSON, NUL, data" with the prefix computed: that spends
  // the fuzzer's time on the JSON and the offsets. (JSON has no raw NUL.)
  const unsigned char *nul = memchr(data, 0, size);
  if (nul) {
    size_t n = (size_t)(nul - data);
    unsigned char *file = malloc(size + 7);
    for (int i = 0; i < 8; i++)
      file[i] = (unsigned char)((uint64_t)n >> 8 * i);
    memcpy(file + 8, data, n);
    memcpy(file + 8 + n, nul + 1, size - n - 1);
    run(file, size + 7);
    free(file);
  }
  return 0;
}
