// sttool.c: the test suite's safetensors helper.
//   sttool batch N H W SEED OUT      a batch 'x' [N,1,H,W] of float32 uniform in [0, 1)
//   sttool compare GOT WANT --exact | --tol GLOB=RTOL,ATOL[,FLOOR]...
// compare checks every tensor of WANT against GOT's tensor of the same name and
// shape, element by element: |got - want| <= ATOL + FLOOR * rms(want) + RTOL *
// |want| with the first --tol whose GLOB (fnmatch) matches the tensor's name (a
// tensor no rule matches fails), or bitwise equality with --exact. It prints the
// worst element of each failing tensor and of each kind (y, loss, grad.*,
// running statistics, parameters) and exits 1 on any mismatch.
#include "rng.h"
#include "safetensors.h"

#include <fnmatch.h>
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

static bool ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && !strcmp(s + n - m, tail);
}

static const char *const kinds[] = {"output", "loss", "gradients", "statistics", "parameters"};
enum { NKINDS = 5 };

// The index in kinds of a tensor of a step's file.
static int kind(const char *name) {
  if (!strcmp(name, "y"))
    return 0;
  if (!strcmp(name, "loss"))
    return 1;
  if (!strncmp(name, "grad.", 5))
    return 2;
  return ends_with(name, ".running_mean") || ends_with(name, ".running_var") ? 3 : 4;
}

// A tolerance: element i of a tensor passes when |got_i - want_i| <= atol +
// floor * rms(want) + rtol * |want_i|. rtol bounds the rounding of large
// elements; a gradient's element is a sum of terms of both signs, so its
// rounding error scales with the terms (of the size of the tensor's elements,
// its RMS), not with the element: the floor, in units of the RMS, covers the
// elements that cancel to near zero. atol covers tensors that are zero but for
// rounding (the gradient of a conv's bias before a batch norm), whose RMS
// says nothing about the terms.
typedef struct {
  const char *glob; // fnmatch pattern on the tensor's name
  double rtol, atol, floor;
} Tol;

enum { MAX_TOLS = 32 };

// A number >= 0 at s, ending at *end; false when there is none.
static bool number(const char *s, char **end, double *v) {
  *v = strtod(s, end);
  return *end != s && *v >= 0;
}

// GLOB=RTOL,ATOL[,FLOOR] into *t; false when malformed.
static bool parse_tol(char *spec, Tol *t) {
  char *eq = strchr(spec, '='), *at;
  if (!eq || eq == spec)
    return false;
  *eq = 0;
  t->glob = spec;
  if (!number(eq + 1, &at, &t->rtol) || *at != ',' || !number(at + 1, &at, &t->atol))
    return false;
  t->floor = 0;
  if (*at == ',' && !number(at + 1, &at, &t->floor))
    return false;
  return !*at;
}

// The first rule whose glob matches name, or NULL.
static const Tol *tol_for(const Tol *tols, int ntols, const char *name) {
  for (int i = 0; i < ntols; i++)
    if (!fnmatch(tols[i].glob, name, 0))
      return &tols[i];
  return NULL;
}

// A tensor's worst element: the largest |got - want| as a fraction of its
// bound (infinite for NaN or a nonzero difference against a zero bound).
typedef struct {
  double ratio, got, want, bound;
  size_t index;
} Worst;

static double rms(const StTensor *t, size_t count) {
  double sum = 0;
  for (size_t i = 0; i < count; i++)
    sum += value(t, i) * value(t, i);
  return count ? sqrt(sum / (double)count) : 0;
}

static Worst worst_element(const StTensor *g, const StTensor *w, size_t count, const Tol *tol) {
  double base = tol->atol + tol->floor * rms(w, count);
  Worst worst = {0};
  for (size_t i = 0; i < count; i++) {
    double gv = value(g, i), wv = value(w, i), d = fabs(gv - wv), bound = base + tol->rtol * fabs(wv);
    double ratio = isnan(d) ? INFINITY : d == 0 ? 0 : bound > 0 ? d / bound : INFINITY;
    if (i == 0 || ratio > worst.ratio)
      worst = (Worst){ratio, gv, wv, bound, i};
  }
  return worst;
}

// "[n,c,h,w]" of the flat index i in t, into buf.
static const char *coords(const StTensor *t, size_t i, char *buf, size_t size) {
  size_t at = 0, stride = 1;
  for (int d = 0; d < t->ndim; d++)
    stride *= (size_t)t->shape[d];
  buf[0] = 0;
  for (int d = 0; d < t->ndim && at < size; d++) {
    stride /= (size_t)t->shape[d];
    at += (size_t)snprintf(buf + at, size - at, "%s%zu", d ? "," : "[", i / stride);
    i %= stride;
  }
  if (t->ndim && at < size)
    snprintf(buf + at, size - at, "]");
  return buf;
}

static void print_worst(const char *what, const StTensor *t, const Worst *w) {
  char at[96];
  printf("%-10s %s%s: got %.9g want %.9g, |difference| %.3g is %.3g of its bound %.3g\n", what, t->name,
         coords(t, w->index, at, sizeof at), w->got, w->want, fabs(w->got - w->want), w->ratio, w->bound);
}

static bool same_shape(const StTensor *g, const StTensor *w) {
  bool same = g && g->ndim == w->ndim && (g->dtype == ST_F32 || g->dtype == ST_F64) &&
              (w->dtype == ST_F32 || w->dtype == ST_F64);
  for (int d = 0; same && d < w->ndim; d++)
    same = g->shape[d] == w->shape[d];
  return same;
}

// One tensor of WANT against got (NULL when GOT lacks it) under tol (NULL when
// no rule matched): false, after saying why, on a mismatch; *e is its worst
// element.
static bool check(const StTensor *g, const StTensor *w, const Tol *tol, bool exact, Worst *e) {
  if (!same_shape(g, w)) {
    fprintf(stderr, "%s: missing, or another shape or dtype, in GOT\n", w->name);
    return false;
  }
  if (!tol) {
    fprintf(stderr, "%s: no --tol rule matches\n", w->name);
    return false;
  }
  *e = worst_element(g, w, w->nbytes / st_dtype_size(w->dtype), tol);
  bool ok = exact ? g->dtype == w->dtype && !memcmp(g->data, w->data, w->nbytes) : e->ratio <= 1;
  if (!ok)
    print_worst("MISMATCH", w, e);
  return ok;
}

static int compare(int argc, char **argv) {
  bool exact = false;
  Tol tols[MAX_TOLS];
  int ntols = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--exact"))
      exact = true;
    else if (!strcmp(argv[i], "--tol") && i + 1 < argc) {
      if (ntols == MAX_TOLS || !parse_tol(argv[++i], &tols[ntols++]))
        return fprintf(stderr, "sttool: --tol needs GLOB=RTOL,ATOL[,FLOOR], at most %d of them\n", MAX_TOLS), 2;
    } else
      return fprintf(stderr, "sttool: unknown option '%s'\n", argv[i]), 2;
  }
  StFile got = {0}, want = {0};
  char err[512];
  if (st_read(argv[0], &got, err, sizeof err) || st_read(argv[1], &want, err, sizeof err))
    return fprintf(stderr, "sttool: %s\n", err), 2;
  Worst worst[NKINDS] = {0};
  const StTensor *worst_of[NKINDS] = {0};
  int bad = 0;
  for (int i = 0; i < want.count; i++) {
    const StTensor *w = &want.tensors[i], *g = st_find(&got, w->name);
    static const Tol bitwise = {0};
    const Tol *tol = exact ? &bitwise : tol_for(tols, ntols, w->name);
    Worst e;
    if (!check(g, w, tol, exact, &e)) {
      bad++;
      continue;
    }
    int k = kind(w->name);
    if (!worst_of[k] || e.ratio > worst[k].ratio)
      worst[k] = e, worst_of[k] = w;
  }
  for (int k = 0; k < NKINDS; k++)
    if (worst_of[k])
      print_worst(kinds[k], worst_of[k], &worst[k]);
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
  fprintf(stderr, "usage: sttool batch N H W SEED OUT | sttool compare GOT WANT --exact "
                  "| --tol GLOB=RTOL,ATOL[,FLOOR]...\n");
  return 2;
}
