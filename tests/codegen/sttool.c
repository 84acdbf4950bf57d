// sttool.c: the test suite's safetensors helper.
//   sttool batch N H W SEED OUT      a batch 'x' [N,1,H,W] of float32 uniform in [0, 1)
//   sttool compare GOT WANT [--exact] [--rtol R] [--atol A]
// compare checks every tensor of WANT against GOT's tensor of the same name and
// shape: |got - want| <= atol + rtol * max|want| per tensor, or bitwise
// equality with --exact. It prints the worst tensor of each kind (y, loss,
// grad.*, parameters) and exits 1 on any mismatch.
#include "rng.h"
#include "safetensors.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double value(const StTensor *t, size_t i) {
  return t->dtype == ST_F32 ? ((const float *)t->data)[i] : ((const double *)t->data)[i];
}

static int batch(char **argv) {
  int n = atoi(argv[0]), h = atoi(argv[1]), w = atoi(argv[2]);
  uint64_t seed = strtoull(argv[3], NULL, 10);
  size_t count = (size_t)n * (size_t)h * (size_t)w;
  float *x = malloc(count * sizeof(float));
  if (n < 1 || h < 1 || w < 1 || !x)
    return fprintf(stderr, "sttool: bad batch size\n"), 2;
  for (size_t i = 0; i < count; i++)
    x[i] = (float)rng_uniform(seed, 0, i);
  StTensor t = {.name = "x", .dtype = ST_F32, .ndim = 4, .shape = {n, 1, h, w}, .nbytes = count * 4, .data = x};
  char err[512];
  int rc = st_write(argv[4], &t, 1, NULL, err, sizeof err);
  if (rc)
    fprintf(stderr, "sttool: %s\n", err);
  free(x);
  return rc ? 1 : 0;
}

static const char *kind(const char *name) {
  return !strcmp(name, "y") ? "output" : !strcmp(name, "loss") ? "loss" : !strncmp(name, "grad.", 5) ? "gradients"
                                                                                                     : "parameters";
}

static int compare(int argc, char **argv) {
  bool exact = false;
  double rtol = 1e-5, atol = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--exact"))
      exact = true;
    else if (!strcmp(argv[i], "--rtol") && i + 1 < argc)
      rtol = atof(argv[++i]);
    else if (!strcmp(argv[i], "--atol") && i + 1 < argc)
      atol = atof(argv[++i]);
    else
      return fprintf(stderr, "sttool: unknown option '%s'\n", argv[i]), 2;
  }
  StFile got = {0}, want = {0};
  char err[512];
  if (st_read(argv[0], &got, err, sizeof err) || st_read(argv[1], &want, err, sizeof err))
    return fprintf(stderr, "sttool: %s\n", err), 2;
  static const char *const kinds[] = {"output", "loss", "gradients", "parameters"};
  double worst[4] = {0};
  const char *worst_name[4] = {0};
  int bad = 0;
  for (int i = 0; i < want.count; i++) {
    const StTensor *w = &want.tensors[i], *g = st_find(&got, w->name);
    bool same = g && g->ndim == w->ndim;
    for (int d = 0; same && d < w->ndim; d++)
      same = g->shape[d] == w->shape[d];
    if (!same || (g->dtype != ST_F32 && g->dtype != ST_F64) || (w->dtype != ST_F32 && w->dtype != ST_F64)) {
      fprintf(stderr, "%s: missing, or another shape or dtype, in %s\n", w->name, argv[0]);
      bad++;
      continue;
    }
    size_t count = w->nbytes / st_dtype_size(w->dtype);
    double scale = 0, diff = 0;
    for (size_t j = 0; j < count; j++) {
      scale = fmax(scale, fabs(value(w, j)));
      double d = fabs(value(g, j) - value(w, j));
      diff = isnan(d) ? INFINITY : fmax(diff, d);
    }
    bool ok = exact ? g->dtype == w->dtype && !memcmp(g->data, w->data, w->nbytes) : diff <= atol + rtol * scale;
    if (!ok) {
      fprintf(stderr, "%s: max |difference| %.3g, max |want| %.3g\n", w->name, diff, scale);
      bad++;
    }
    int k = 0;
    while (strcmp(kinds[k], kind(w->name)))
      k++;
    double rel = diff / (scale > 0 ? scale : 1);
    if (!worst_name[k] || rel > worst[k])
      worst[k] = rel, worst_name[k] = w->name;
  }
  for (int k = 0; k < 4; k++)
    if (worst_name[k])
      printf("%-10s worst %-40s %.3g of its max\n", kinds[k], worst_name[k], worst[k]);
  printf("%d of %d tensors %s\n", want.count - bad, want.count, exact ? "bitwise equal" : "within tolerance");
  st_free(&got);
  st_free(&want);
  return bad ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc == 7 && !strcmp(argv[1], "batch"))
    return batch(argv + 2);
  if (argc >= 4 && !strcmp(argv[1], "compare"))
    return compare(argc - 2, argv + 2);
  fprintf(stderr, "usage: sttool batch N H W SEED OUT | sttool compare GOT WANT [--exact] [--rtol R] [--atol A]\n");
  return 2;
}
