// kernels.c: the convolution kernels of the generated trainers, each checked
// against the naive reference, then timed: ours (runtime/kernels/kern_conv.c), oneDNN
// (onednn.h), LIBXSMM (xsmm.h) and the naive reference itself
// (runtime/kernels/ref_conv.c, double).
//
// usage: kernels [options] (GENERATED.c | NAME)...
//   GENERATED.c   a trainer source from caec compile: all its training-step
//                 convolution kernels, repeats merged (problem.h)
//   NAME          one problem by its canonical name, e.g.
//                 conv_fwd_mb32_ic32oc64_ih64oh32_k3s2p0+in_bnrelu+bias+stats
// options:
//   --impl LIST     of caec, onednn, libxsmm, naive (default all four)
//   --check-batch N the batch of the correctness check and of the naive
//                   reference's one timed run (default 2; the naive kernel is
//                   too slow for batch 32)
//   --reps R, --min-seconds S   timed runs after one warm-up (default 5, 0.2)
//   --threads LIST  thread counts to time at, e.g. 2,1 (default: OMP_NUM_THREADS's);
//                   oneDNN follows them when it shares our OpenMP runtime (gcc builds);
//                   LIBXSMM runs in our OpenMP threads
//   --cold-mib M    problems of at most M MiB of compulsory traffic, which
//                   caches can hold between runs, are timed again (at the
//                   first thread count) with the caches flushed before every
//                   run, as in a trainer where other kernels ran in between:
//                   rows caec_cold, onednn_cold, libxsmm_cold (default 0: none)
//   --list          print the problems and where they occur; time nothing
// Each problem is checked once, then timed at each thread count. Output: raw
// CSV rows (harness.h) on stdout.
#include "data.h"
#include "harness.h"
#include "tune.h"
#include "onednn.h"
#include "problem.h"
#include "xsmm.h"

#include <libgen.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TOLERANCE_PPM = 2000 }; // 2e-3 of each tensor's largest value, as the trainers' tests

// ---- ours: the runtime's kernels on blocked tensors ----------------------------------------------

typedef struct Ours {
  Problem p;
  float *in[2], *dy[2], *out[2], *res, *wp;
  double *stats;
  KIn kin, kdy;
  KOut kout;
  const float *bias;
  float *dw, *db;
  KWork work;
} Ours;

// Channels [c0, c1) of each of n images of x, NCHW, into a blocked tensor of c1 - c0 channels (x is only
// read), or out of one into x.
static void convert_piece(int n, Shape s, int c0, int c1, float *x, float *blocked, bool to_blocked) {
  const size_t hw = (size_t)s.h * (size_t)s.w, piece = (size_t)(c1 - c0) * hw, image = (size_t)s.c * hw;
  float *tmp = bench_alloc(sizeof *tmp * (size_t)n * piece);
  if (to_blocked) {
    for (int i = 0; i < n; i++)
      memcpy(tmp + (size_t)i * piece, x + (size_t)i * image + (size_t)c0 * hw, sizeof *tmp * piece);
    kb_to_blocked(n, c1 - c0, (int)hw, tmp, blocked);
  } else {
    kb_from_blocked(n, c1 - c0, (int)hw, blocked, tmp);
    for (int i = 0; i < n; i++)
      memcpy(x + (size_t)i * image + (size_t)c0 * hw, tmp + (size_t)i * piece, sizeof *tmp * piece);
  }
  free(tmp);
}

// A canonical tensor split at channel cat (0: one piece) into blocked pieces, or back (x NULL: zeros).
static void to_pieces(int n, Shape s, int cat, const float *x, float *piece[2]) {
  for (int k = 0; k < 1 + (cat > 0); k++) {
    int c0 = k ? cat : 0, c1 = k || !cat ? s.c : cat;
    piece[k] = bench_alloc(sizeof(float) * kb_elems(n, c1 - c0, s.h, s.w));
    if (x)
      convert_piece(n, s, c0, c1, (float *)x, piece[k], true);
  }
}

static void from_pieces(int n, Shape s, int cat, float *const piece[2], float *x) {
  for (int k = 0; k < 1 + (cat > 0); k++)
    convert_piece(n, s, k ? cat : 0, k || !cat ? s.c : cat, x, piece[k], false);
}

static KIn kin(const Side *s, float *const piece[2], const float *scale, const float *shift) {
  KIn k = {.a = piece[0], .b = piece[1], .ca = s->cat};
  k.pro_a = (KPro){s->bn[0] ? scale : NULL, s->bn[0] ? shift : NULL, s->relu[0]};
  k.pro_b = (KPro){s->bn[1] ? scale + s->cat : NULL, s->bn[1] ? shift + s->cat : NULL, s->relu[1]};
  return k;
}

// Whether a side is read through a prologue (what the kernels' workspaces are sized by).
static bool side_pro(const Side *s) { return s->bn[0] || s->relu[0] || s->bn[1] || s->relu[1]; }

static void *ours_new(const Data *d, char *why, size_t size) {
  (void)why, (void)size;
  Ours *o = bench_alloc(sizeof *o);
  const Problem *p = &o->p;
  *o = (Ours){.p = d->p};
  const KConv *g = &p->g;
  const Shape in = problem_input(p), out = problem_output(p);
  to_pieces(g->n, in, p->in.cat, d->in, o->in);
  o->kin = kin(&p->in, o->in, d->in_scale, d->in_shift);
  // The kernel's workspace, made here so that the timed runs do not allocate.
  const bool conv = p->op == OP_CONV;
  const bool scatter = problem_kernel(p) == KERNEL_SCATTER;
  const bool wgrad = problem_kernel(p) == KERNEL_WGRAD;
  o->work = kwork_alloc(wgrad && p->wino ? kw_wgrad_work(g)
                        : wgrad   ? kc_wgrad_work(g, side_pro(conv ? &p->dy : &p->in), side_pro(conv ? &p->in : &p->dy))
                        : p->wino ? kw_conv_work(g, scatter)
                                  : kc_conv_work(g, scatter, side_pro(&p->in)));
  if (problem_kernel(p) == KERNEL_WGRAD) {
    to_pieces(g->n, out, p->dy.cat, d->dy, o->dy);
    o->kdy = kin(&p->dy, o->dy, d->dy_scale, d->dy_shift);
    o->dw = bench_alloc(sizeof(float) * (size_t)g->gc * (size_t)g->ic * (size_t)(g->k * g->k));
    o->db = p->bias ? bench_alloc(sizeof(float) * (size_t)problem_bias_channels(p)) : NULL;
    return o;
  }
  const bool gather = problem_kernel(p) == KERNEL_GATHER;
  o->wp = bench_alloc(sizeof(float) * (p->wino ? kw_packed_floats(g) : kc_packed_floats(g)));
  (p->wino ? (gather ? kw_pack_gather : kw_pack_scatter) : gather ? kc_pack_gather : kc_pack_scatter)(g, d->w, o->wp);
  o->bias = d->bias;
  to_pieces(g->n, out, p->out_cat, d->old, o->out);
  float *res[2] = {NULL, NULL};
  if (p->res)
    to_pieces(g->n, out, 0, d->res, res);
  o->res = res[0];
  if (p->stats)
    o->stats = bench_alloc(sizeof(double) * (size_t)(g->n * out.h) * 2 * KB * (size_t)kb_blocks(out.c));
  o->kout = (KOut){.a = o->out[0],
                   .b = o->out[1],
                   .ca = p->out_cat,
                   .acc_a = p->acc[0],
                   .acc_b = p->acc[1],
                   .res = o->res,
                   .relu = p->relu,
                   .stats = o->stats};
  return o;
}

static void ours_run(void *arg) {
  Ours *o = arg;
  const KConv *g = &o->p.g;
  switch (problem_kernel(&o->p)) {
  case KERNEL_GATHER:
    (o->p.wino ? kw_gather : kc_gather)(g, o->kin, o->wp, o->bias, o->kout, o->work);
    break;
  case KERNEL_SCATTER:
    (o->p.wino ? kw_scatter : kc_scatter)(g, o->kin, o->wp, o->bias, o->kout, o->work);
    break;
  case KERNEL_WGRAD: {
    // conv's grid is dy and its image x; convT's the reverse.
    const bool conv = o->p.op == OP_CONV;
    (o->p.wino ? kw_wgrad : kc_wgrad)(g, conv ? o->kdy : o->kin, conv ? o->kin : o->kdy, o->dw, o->db, conv, o->work);
    break;
  }
  }
}

static void ours_result(void *arg, Result *r) {
  Ours *o = arg;
  const Problem *p = &o->p;
  if (problem_kernel(p) == KERNEL_WGRAD) {
    memcpy(r->dw, o->dw, sizeof(float) * (size_t)p->g.gc * (size_t)p->g.ic * (size_t)(p->g.k * p->g.k));
    if (p->bias)
      memcpy(r->db, o->db, sizeof(float) * (size_t)problem_bias_channels(p));
    return;
  }
  const Shape out = problem_output(p);
  from_pieces(p->g.n, out, p->out_cat, o->out, r->out);
  if (!p->stats)
    return;
  // stats: [image][row][sum, sum of squares][16 x blocks], summed here per channel.
  const size_t lanes = KB * (size_t)kb_blocks(out.c);
  for (int ch = 0; ch < out.c; ch++) {
    r->sum[ch] = r->sumsq[ch] = 0;
    for (size_t part = 0; part < (size_t)(p->g.n * out.h); part++) {
      r->sum[ch] += o->stats[part * 2 * lanes + (size_t)ch];
      r->sumsq[ch] += o->stats[(part * 2 + 1) * lanes + (size_t)ch];
    }
  }
}

static void ours_free(void *arg) {
  Ours *o = arg;
  free(o->in[0]), free(o->in[1]), free(o->dy[0]), free(o->dy[1]), free(o->out[0]), free(o->out[1]);
  kwork_free(&o->work);
  free(o->res), free(o->wp), free(o->stats), free(o->dw), free(o->db), free(o);
}

static Problem same(const Problem *p) { return *p; }

// ---- implementations -------------------------------------------------------------------------------

// What the check and the timing need of an implementation.
typedef struct Impl {
  const char *name;
  void *(*make)(const Data *d, char *why, size_t size); // NULL with the reason in why
  void (*run)(void *);
  void (*result)(void *, Result *);
  void (*free)(void *);
  Problem (*computes)(const Problem *p); // the part of p it computes
  const char *(*describe)(void *);       // what runs it (NULL: nothing to say)
  bool fuses_prologues;                  // false: it reads Data's in_eff, prologues applied untimed
} Impl;

static void *dnnl_make(const Data *d, char *why, size_t size) { return onednn_new(d, why, size); }
static void dnnl_result(void *o, Result *r) { onednn_result(o, r); }
static void dnnl_free(void *o) { onednn_free(o); }
static const char *dnnl_describe(void *o) {
  static char text[128];
  snprintf(text, sizeof text, "%s %s", onednn_version(), onednn_impl(o));
  return text;
}

static const char *ours_describe(void *o) { return ((Ours *)o)->p.wino ? "Winograd F(4x4, 3x3)" : "direct"; }

static void *xsmm_make(const Data *d, char *why, size_t size) { return xsmm_new(d, why, size); }
static void xsmm_result_of(void *x, Result *r) { xsmm_result(x, r); }
static void xsmm_free_of(void *x) { xsmm_free(x); }
static const char *xsmm_describe(void *x) {
  static char text[128];
  snprintf(text, sizeof text, "%s %s", xsmm_version(), xsmm_impl(x));
  return text;
}

// The checked and timed implementations come first, in impls' order; the naive reference last.
enum { CAEC, ONEDNN, LIBXSMM, NAIVE, IMPLS };
static const Impl impls[NAIVE] = {
    {"caec", ours_new, ours_run, ours_result, ours_free, same, ours_describe, true},
    {"onednn", dnnl_make, onednn_run, dnnl_result, dnnl_free, onednn_fused, dnnl_describe, false},
    {"libxsmm", xsmm_make, xsmm_run, xsmm_result_of, xsmm_free_of, xsmm_computes, xsmm_describe, false},
};
static const char *const impl_names[IMPLS] = {"caec", "onednn", "libxsmm", "naive"};

enum { MAX_THREAD_COUNTS = 8 };

typedef struct Options {
  bool impl[IMPLS], list;
  int wrong; // test-only (--wrong IMPL): that implementation's results are spoilt before the check; -1: none
  int check_batch;
  Protocol protocol;
  double cold_mib;
  int threads[MAX_THREAD_COUNTS], nthreads;
} Options;

// A check's outcome: the error, or why the implementation could not run.
typedef struct Check {
  bool ran, ok;
  double error;
  char text[256];
} Check;

static int failed_checks;

// spoil: add 1 to the first value, as a wrong kernel would (so that the test of a failing bench has one).
static Check check(const Impl *impl, const Data *d, const Ref *ref, bool spoil) {
  Check c = {0};
  void *state = impl->make(d, c.text, sizeof c.text);
  if (!state)
    return c;
  impl->run(state);
  Problem q = impl->computes(&d->p);
  Result r = result_new(&q);
  impl->result(state, &r);
  impl->free(state);
  if (spoil)
    (r.out ? r.out : r.dw)[0] += 1;
  const char *worst;
  c.ran = true, c.error = ref_error(ref, d, &q, &r, &worst);
  c.ok = c.error <= TOLERANCE_PPM * 1e-6;
  snprintf(c.text, sizeof c.text, "%serror %.1e (%s) at batch %d", c.ok ? "" : "WRONG: ", c.error, worst, d->p.g.n);
  if (!c.ok) {
    char name[NAME_BYTES];
    problem_name(&d->p, name);
    fprintf(stderr, "bench kernels: WRONG: %s %s: %s\n", impl->name, name, c.text + strlen("WRONG: "));
    failed_checks++;
  }
  result_free(&r);
  return c;
}

// The feature tokens of p's name that an implementation computing q leaves to other kernels: the prologues
// (it reads their results), and the epilogue features q lacks.
static void unfused(const Problem *p, const Problem *q, char *out, size_t size) {
  char name[NAME_BYTES], fused[NAME_BYTES + 1];
  problem_name(p, name), problem_name(q, fused);
  strcat(fused, "+"); // every token of it now ends in '+'
  out[0] = 0;
  for (const char *t = strchr(name, '+'); t; t = strchr(t + 1, '+')) {
    char token[NAME_BYTES + 1];
    int len = (int)strcspn(t + 1, "+");
    snprintf(token, sizeof token, "+%.*s+", len, t + 1);
    if (!strncmp(t + 1, "in_", 3) || !strncmp(t + 1, "dy_", 3) || !strstr(fused, token)) {
      size_t at = strlen(out);
      snprintf(out + at, size - at, "%s%.*s", at ? " " : "", len, t + 1);
    }
  }
}

static void emit(const char *name, const char *impl, int threads, int batch, Timing t, double flops, double bytes,
                 const char *note) {
  Row r = bench_ms_row("kernel", name, impl, t);
  r.threads = threads, r.batch = batch, r.flops = flops, r.bytes = bytes, r.note = note;
  bench_row(&r);
}

static void time_impl(const Protocol *protocol, const Impl *impl, const Data *d, const Check *c, const char *where) {
  char name[NAME_BYTES], label[32], note[WHERE_BYTES + 1024], why[256] = "", info[160] = "", left[NAME_BYTES] = "";
  problem_name(&d->p, name);
  snprintf(label, sizeof label, "%s%s", impl->name, protocol->cold ? "_cold" : "");
  const Problem q = impl->computes(&d->p);
  void *state = c->ok ? impl->make(d, why, sizeof why) : NULL;
  Timing t = {0};
  if (state) {
    t = bench_time(protocol, impl->run, state);
    if (impl->describe)
      snprintf(info, sizeof info, "; %s", impl->describe(state));
    impl->free(state);
  }
  if (!impl->fuses_prologues)
    unfused(&d->p, &q, left, sizeof left);
  snprintf(note, sizeof note, "%s%s%s%s%s%s%s", c->ran ? c->text : "", why[0] ? "; " : "", why, info,
           left[0] ? "; untimed: " : "", left, where);
  emit(name, label, bench_threads(), d->p.g.n, t, problem_flops(&q), problem_bytes(&q), note);
}

static void run_problem(const Options *o, const Found *f) {
  const int small = f->p.g.n < o->check_batch ? f->p.g.n : o->check_batch;
  const Problem p = problem_at_batch(&f->p, small);
  Data d = data_new(&p, 1);
  Ref ref = ref_new(&d);
  Check checks[NAIVE] = {{0}};
  bool timed = false;
  for (int i = 0; i < NAIVE; i++)
    timed |= o->impl[i];
  for (int i = 0; i < NAIVE; i++)
    if (o->impl[i])
      checks[i] = check(&impls[i], &d, &ref, o->wrong == i);
  char name[NAME_BYTES], where[WHERE_BYTES + 64] = "";
  problem_name(&f->p, name);
  if (f->where[0])
    snprintf(where, sizeof where, "; %d call%s: %s", f->count, f->count == 1 ? "" : "s", f->where);
  if (o->impl[NAIVE]) // serial code: 1 thread
    emit(name, "naive", 1, small, (Timing){ref.seconds, ref.seconds, 1}, problem_flops(&d.p), problem_bytes(&d.p),
         "one run, double precision");
  ref_free(&ref);
  data_free(&d);
  if (!timed)
    return;
  Data big = data_new(&f->p, 2);
  const Protocol cold = {o->protocol.warmup, o->protocol.reps, o->protocol.min_seconds, true};
  const bool fits = problem_bytes(&f->p) <= o->cold_mib * (1 << 20);
  for (int k = 0; k < o->nthreads; k++) {
    omp_set_num_threads(o->threads[k]); // before make: oneDNN and LIBXSMM size their work split at creation
    for (int i = 0; i < NAIVE; i++)
      if (o->impl[i]) {
        time_impl(&o->protocol, &impls[i], &big, &checks[i], i == CAEC && k == 0 ? where : "");
        if (k == 0 && fits)
          time_impl(&cold, &impls[i], &big, &checks[i], "");
      }
  }
  data_free(&big);
}

// ---- caec tune: both of caec's algorithms where Winograd fits --------------------------------------

// Whether the Winograd kernels compute p: a problem of their geometry whose pieces are blocked.
static bool wino_fits(const Problem *p) {
  const Shape in = problem_input(p), out = problem_output(p);
  return kw_fits(&p->g) && (!p->in.cat || in.c - p->in.cat > 1) && (!p->dy.cat || out.c - p->dy.cat > 1) &&
         (!p->out_cat || out.c - p->out_cat > 1);
}

int tune_problems(const FoundList *list, const Protocol *protocol, int check_batch, Tuned *out) {
  int n = 0;
  for (int i = 0; i < list->count; i++) {
    const Found *f = &list->items[i];
    if (!wino_fits(&f->p))
      continue;
    char name[NAME_BYTES];
    kc_problem_name(name, sizeof name, f->p.op == OP_CONVT, (int)f->p.pass, &f->p.g);
    int k = 0;
    while (k < n && strcmp(out[k].name, name))
      k++;
    if (k == n)
      memset(&out[n], 0, sizeof *out), snprintf(out[n++].name, NAME_BYTES, "%s", name);
    // One problem's data and reference serve both algorithms (ours_new reads the algorithm from p.wino).
    const Problem small = problem_at_batch(&f->p, f->p.g.n < check_batch ? f->p.g.n : check_batch);
    Data d = data_new(&small, 1), big = data_new(&f->p, 2);
    Ref ref = ref_new(&d);
    bool ok = true;
    for (int wino = 0; wino < 2 && ok; wino++) {
      d.p.wino = big.p.wino = wino;
      ok = check(&impls[CAEC], &d, &ref, false).ok; // check() says why not
      char why[256];
      void *state = ok ? ours_new(&big, why, sizeof why) : NULL;
      if (state)
        out[k].ms[wino] += 1e3 * bench_time(protocol, ours_run, state).min * f->count, ours_free(state);
    }
    ref_free(&ref), data_free(&d), data_free(&big);
    if (!ok)
      return -1;
  }
  return n;
}

// ---- main ----------------------------------------------------------------------------------------

static bool parse_impls(const char *list, bool impl[IMPLS]) {
  char copy[64];
  snprintf(copy, sizeof copy, "%s", list);
  memset(impl, 0, sizeof(bool) * IMPLS);
  for (char *t = strtok(copy, ","); t; t = strtok(NULL, ",")) {
    int i = 0;
    while (i < IMPLS && strcmp(t, impl_names[i]))
      i++;
    if (i == IMPLS)
      return false;
    impl[i] = true;
  }
  return true;
}

// --wrong's implementation: one of those that are checked.
static bool parse_wrong(const char *name, int *wrong) {
  for (*wrong = 0; *wrong < NAIVE; ++*wrong)
    if (!strcmp(name, impl_names[*wrong]))
      return true;
  return false;
}

// A model's convolution FLOPs per training step: the work its trainer's GFLOP/s are counted in.
typedef struct ModelWork {
  char model[64];
  double flops;
} ModelWork;

static void print_work(const ModelWork *w) {
  bench_row(&(Row){.section = "model_flops",
                   .name = w->model,
                   .impl = "caec",
                   .threads = bench_threads(),
                   .median = w->flops / 1e9,
                   .min = w->flops / 1e9,
                   .unit = "GFLOP",
                   .flops = w->flops,
                   .note = "convolution FLOPs of one training step"});
}

static bool parse_threads(const char *list, Options *o) {
  char copy[64];
  snprintf(copy, sizeof copy, "%s", list);
  o->nthreads = 0;
  for (char *t = strtok(copy, ","); t; t = strtok(NULL, ","))
    if (o->nthreads == MAX_THREAD_COUNTS || (o->threads[o->nthreads++] = atoi(t)) < 1)
      return false;
  return o->nthreads > 0;
}

static int usage(void) {
  fputs("usage: kernels [--impl caec,onednn,libxsmm,naive] [--threads LIST] [--check-batch N] [--reps R]\n"
        "               [--min-seconds S] [--cold-mib M] [--list] [--wrong caec|onednn|libxsmm]"
        " (GENERATED.c | NAME)...\n"
        "Exits 1 when any implementation fails its check, after the whole report (--wrong, for tests: that\n"
        "implementation's results are spoilt first).\n",
        stderr);
  return 2;
}

int main(int argc, char **argv) {
  char self[4096];
  snprintf(self, sizeof self, "%s", argv[0]);
  if (!strcmp(basename(self), "caec-tune")) // the same program as caec's tool
    return tune_command(argc, argv);
  Options o = {{true, true, true, true}, false, -1, 2, {1, 5, 0.2, false}, 0, {omp_get_max_threads()}, 1};
  FoundList list = {0};
  ModelWork work[64];
  int nwork = 0;
  bool ok = true;
  for (int i = 1; i < argc && ok; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    size_t len = strlen(a);
    Problem p;
    if (!strcmp(a, "--impl") && v)
      ok = parse_impls(argv[++i], o.impl);
    else if (!strcmp(a, "--wrong") && v)
      ok = parse_wrong(argv[++i], &o.wrong);
    else if (!strcmp(a, "--threads") && v)
      ok = parse_threads(argv[++i], &o);
    else if (!strcmp(a, "--check-batch") && v)
      ok = (o.check_batch = atoi(argv[++i])) > 0;
    else if (!strcmp(a, "--reps") && v)
      ok = (o.protocol.reps = atoi(argv[++i])) > 0;
    else if (!strcmp(a, "--min-seconds") && v)
      o.protocol.min_seconds = atof(argv[++i]);
    else if (!strcmp(a, "--cold-mib") && v)
      o.cold_mib = atof(argv[++i]);
    else if (!strcmp(a, "--list"))
      o.list = true;
    else if (len > 2 && !strcmp(a + len - 2, ".c") && nwork < 64) {
      problem_model_of(a, work[nwork].model, sizeof work[nwork].model);
      ok = problem_scan(a, &list, &work[nwork++].flops);
    } else if ((ok = a[0] != '-' && problem_parse(a, &p)))
      found_add(&list, &p, "");
  }
  if (!ok || !list.count)
    return usage();
  if (!o.list)
    bench_header();
  for (int m = 0; m < nwork && !o.list; m++)
    print_work(&work[m]);
  for (int i = 0; i < list.count; i++)
    if (o.list) {
      char name[NAME_BYTES];
      problem_name(&list.items[i].p, name);
      printf("%s\t%d\t%s\n", name, list.items[i].count, list.items[i].where);
    } else
      run_problem(&o, &list.items[i]);
  found_free(&list);
  if (failed_checks)
    fprintf(stderr, "bench kernels: %d failed correctness check%s\n", failed_checks, failed_checks == 1 ? "" : "s");
  return failed_checks ? 1 : 0;
}
