// test_kern_conv.c: the fp32 convolution kernels (kern_conv.c) against the
// double-precision reference (ref_conv.c) on awkward shapes: channel counts
// that are not multiples of 16, 1-channel (plain) images and grids, odd and
// even sizes, k 1/3/5, stride 1/2, TensorFlow 'same', explicit and cropping
// paddings, inputs and outputs in two pieces, accumulating outputs, biases.
// Each kernel also runs on 1 and 2 threads and must give the same bits.
// Fused runs add prologues to the inputs (batch norm and relu on the first
// piece only, as a U-Net's skip concatenation reads them, or batch norm on the
// first and relu alone on the second), the reference reading the prologue'd
// values, and epilogues to single-piece outputs (residual, relu, batch-norm
// row sums, checked against the sums of the values stored).
//
// Tolerance: a sum of F products, each at most M in magnitude, carries an fp32
// rounding error of at most about F * eps * M (the worst case of recursive
// summation; random rounding makes the typical error far smaller). With
// inputs in [-1, 1], M <= 1 + max|ref| bounds it, so the check is
// |fast - ref| <= F * eps * (1 + max|ref|): loose for rounding, but a wrong
// tap, channel or offset moves a value by about one product, far more. A
// prologue makes inputs of up to 2 in magnitude, each rounded once: the 1
// becomes 4 for the conv kernels (2 for the products, 2 for their inputs'
// rounding) and 12 for wgrad (products of two such inputs).
//
// The Winograd kernels (kern_wino.c) run the same gather and scatter checks on the shapes they fit. Their
// transforms scale values by up to 100 and back (F(4x4, 3x3)'s points 0, +-1, +-2), which rounds more:
// their tolerance is WINO_TOL times the direct kernels' (they pass at 4 here). A coefficient wrong by
// 1e-4 of itself fails it.
#include "kern.h"
#include "ref.h"
#include "testutil.h"
#include "testwork.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>

enum { WINO_TOL = 8 };

static uint64_t seed = 0x243f6a8885a308d3u;

static float uniform(void) { return (float)(2 * test_uniform(&seed) - 1); } // [-1, 1)

// 64-byte aligned, as the trainers allocate; count rounded up as aligned_alloc wants.
static float *falloc(size_t count) {
  size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
  float *p = aligned_alloc(64, bytes ? bytes : 64);
  if (!p) {
    fputs("out of memory\n", stderr);
    exit(2);
  }
  return p;
}

static double *dalloc(size_t count) {
  double *p = calloc(count ? count : 1, sizeof *p);
  if (!p) {
    fputs("out of memory\n", stderr);
    exit(2);
  }
  return p;
}

// A tensor of n x c x hw held canonically (double, for the reference) and blocked in one or two pieces split
// at ca (0: one piece), as kern.h lays them out.
typedef struct T {
  int n, c, hw, ca;
  double *canon;
  float *piece[2];
  size_t size[2]; // floats of each piece
} T;

static int piece_channels(const T *t, int p) { return t->ca ? (p ? t->c - t->ca : t->ca) : (p ? 0 : t->c); }

// The offset of lane l of pixel x of block cb of image i in a blocked tensor of pc channels.
static size_t blocked_at(int pc, int cb, int x, int l, int hw, int i) {
  return pc == 1 ? (size_t)i * hw + x : (((size_t)i * kb_blocks(pc) + cb) * hw + x) * KB + l;
}

// Where channel ch of pixel x of image i lives: its piece and offset.
static void locate(const T *t, int i, int ch, int x, int *p, size_t *at) {
  *p = t->ca && ch >= t->ca;
  int pc = piece_channels(t, *p), lc = ch - (*p ? t->ca : 0);
  *at = blocked_at(pc, lc / KB, x, lc % KB, t->hw, i);
}

static T make(int n, int c, int hw, int ca) {
  T t = {n, c, hw, ca, dalloc((size_t)n * c * hw), {NULL, NULL}, {0, 0}};
  for (int p = 0; p < (ca ? 2 : 1); p++) {
    t.size[p] = kb_elems(n, piece_channels(&t, p), 1, hw);
    t.piece[p] = falloc(t.size[p]);
  }
  return t;
}

static void drop(T *t) {
  free(t->canon);
  free(t->piece[0]);
  free(t->piece[1]);
}

// Random values (rounded to float, so both sides see the same numbers), blocked with zero padding lanes.
static void randomize(T *t) {
  for (int p = 0; p < 2; p++)
    if (t->piece[p])
      memset(t->piece[p], 0, t->size[p] * sizeof(float));
  for (int i = 0; i < t->n; i++)
    for (int ch = 0; ch < t->c; ch++)
      for (int x = 0; x < t->hw; x++) {
        float v = uniform();
        int p;
        size_t at;
        locate(t, i, ch, x, &p, &at);
        t->piece[p][at] = v;
        t->canon[((size_t)i * t->c + ch) * t->hw + x] = v;
      }
}

static void fill(T *t, float v) {
  for (int p = 0; p < 2; p++)
    for (size_t e = 0; t->piece[p] && e < t->size[p]; e++)
      t->piece[p][e] = v;
}

// Prologues of a tensor's pieces: kind 0 none; 1: batch norm + relu on piece a, piece b raw (a U-Net's skip
// concatenation); 2: batch norm on piece a, relu alone on piece b. Scale and shift have exactly the piece's
// channels, so that the sanitizer sees a read past them.
typedef struct Pro {
  KPro k[2];
  float *scale, *shift;
} Pro;

static Pro make_pro(const T *t, int kind) {
  Pro p = {{{0}, {0}}, NULL, NULL};
  if (!kind)
    return p;
  int pc = piece_channels(t, 0);
  p.scale = malloc((size_t)pc * sizeof *p.scale), p.shift = malloc((size_t)pc * sizeof *p.shift);
  if (!p.scale || !p.shift) {
    fputs("out of memory\n", stderr);
    exit(2);
  }
  for (int ch = 0; ch < pc; ch++)
    p.scale[ch] = 1 + uniform() / 2, p.shift[ch] = uniform() / 2; // |scale x + shift| <= 2
  p.k[0] = (KPro){p.scale, p.shift, kind == 1};
  p.k[1] = (KPro){NULL, NULL, kind == 2};
  return p;
}

static void drop_pro(Pro *p) {
  free(p->scale);
  free(p->shift);
}

// The canonical values of t as the kernels read them through the prologues, in double.
static double *through(const T *t, const Pro *p) {
  double *v = dalloc((size_t)t->n * t->c * t->hw);
  for (int i = 0; i < t->n; i++)
    for (int ch = 0; ch < t->c; ch++) {
      int piece = t->ca && ch >= t->ca, lc = ch - (piece ? t->ca : 0);
      KPro k = p->k[piece];
      for (int x = 0; x < t->hw; x++) {
        size_t e = ((size_t)i * t->c + ch) * t->hw + x;
        double y = t->canon[e];
        if (k.scale)
          y = (double)k.scale[lc] * y + k.shift[lc];
        v[e] = k.relu ? fmax(y, 0) : y;
      }
    }
  return v;
}

static KIn kin(const T *t, const Pro *p) {
  return (KIn){.a = t->piece[0], .b = t->piece[1], .ca = t->ca, .pro_a = p->k[0], .pro_b = p->k[1]};
}
// Whether either piece has a prologue (what the kernels' workspaces are sized by).
static bool has_pro(const Pro *p) { return p->k[0].scale || p->k[0].relu || p->k[1].scale || p->k[1].relu; }
static KOut kout(const T *t, bool acc_a, bool acc_b) { return (KOut){.a = t->piece[0], .b = t->piece[1], .ca = t->ca, .acc_a = acc_a, .acc_b = acc_b}; }

// The blocked output against want (+ the canonical `prev` of t where a piece accumulates); padding lanes must
// be exactly 0.
static void compare(const char *what, const char *name, const T *t, const double *want, const T *prev,
                    const bool acc[2], double fan_in, double bound) {
  double maxref = 0, maxdiff = 0;
  for (size_t e = 0; e < (size_t)t->n * t->c * t->hw; e++)
    maxref = fmax(maxref, fabs(want[e]));
  bool lanes_zero = true;
  for (int i = 0; i < t->n; i++)
    for (int ch = 0; ch < t->c; ch++)
      for (int x = 0; x < t->hw; x++) {
        int p;
        size_t at;
        locate(t, i, ch, x, &p, &at);
        size_t e = ((size_t)i * t->c + ch) * t->hw + x;
        double w = want[e] + (acc[p] ? prev->canon[e] : 0);
        maxdiff = fmax(maxdiff, fabs(t->piece[p][at] - w));
      }
  for (int p = 0; p < 2; p++) {
    int pc = piece_channels(t, p);
    if (pc > 1)
      for (int i = 0; i < t->n; i++)
        for (int x = 0; x < t->hw; x++)
          for (int l = pc % KB ? pc % KB : KB; l < KB; l++)
            lanes_zero &= t->piece[p][blocked_at(pc, kb_blocks(pc) - 1, x, l, t->hw, i)] == 0.0f;
  }
  double tol = fan_in * FLT_EPSILON * (bound + maxref);
  CHECK(maxdiff <= tol, "%s %s: max |diff| %g > tol %g (max |ref| %g)", name, what, maxdiff, tol, maxref);
  CHECK(lanes_zero, "%s %s: padding lanes not 0", name, what);
}

// Runs f on 1 and then 2 threads from the same starting output and requires the same bits.
typedef struct Run {
  const KConv *g;
  bool wino;                  // gather and scatter by kern_wino.c (with ug, us) instead of kern_conv.c
  const float *wg, *ws, *ug, *us, *bias_g, *bias_i;
  T *image, *grid;
  bool acc[2];
  float *dw, *db;
  bool bias_of_grid;
  const Pro *pro_i, *pro_g; // the inputs' prologues
  const float *res;         // the output's epilogue (gather's or scatter's)
  bool relu;
  double *stats;
} Run;

static KOut kout_epi(const Run *r, const T *t) {
  KOut o = kout(t, r->acc[0], r->acc[1]);
  o.res = r->res, o.relu = r->relu, o.stats = r->stats;
  return o;
}

static void run_gather(const Run *r) {
  if (r->wino)
    kw_gather(r->g, kin(r->image, r->pro_i), r->ug, r->bias_g, kout_epi(r, r->grid),
              work_of(kw_conv_work(r->g, false)));
  else
    kc_gather(r->g, kin(r->image, r->pro_i), r->wg, r->bias_g, kout_epi(r, r->grid),
              work_of(kc_conv_work(r->g, false, has_pro(r->pro_i))));
}
static void run_scatter(const Run *r) {
  if (r->wino)
    kw_scatter(r->g, kin(r->grid, r->pro_g), r->us, r->bias_i, kout_epi(r, r->image),
               work_of(kw_conv_work(r->g, true)));
  else
    kc_scatter(r->g, kin(r->grid, r->pro_g), r->ws, r->bias_i, kout_epi(r, r->image),
               work_of(kc_conv_work(r->g, true, has_pro(r->pro_g))));
}
static void run_wgrad(const Run *r) {
  if (r->wino)
    kw_wgrad(r->g, kin(r->grid, r->pro_g), kin(r->image, r->pro_i), r->dw, r->db, r->bias_of_grid,
             work_of(kw_wgrad_work(r->g)));
  else
    kc_wgrad(r->g, kin(r->grid, r->pro_g), kin(r->image, r->pro_i), r->dw, r->db, r->bias_of_grid,
             work_of(kc_wgrad_work(r->g, has_pro(r->pro_g), has_pro(r->pro_i))));
}

// Output pieces (and `extra`: dw, db or stats) are saved after the 1-thread run, restored to `start`, rerun on 2
// threads, compared.
static void deterministic(const char *what, const char *name, void (*f)(const Run *), const Run *r, T *out,
                          void *extra, size_t extra_bytes) {
  float *start[2] = {NULL, NULL}, *one[2] = {NULL, NULL};
  char *one_extra = (char *)falloc((extra_bytes + sizeof(float) - 1) / sizeof(float));
  for (int p = 0; p < 2; p++)
    if (out && out->piece[p]) {
      start[p] = falloc(out->size[p]), one[p] = falloc(out->size[p]);
      memcpy(start[p], out->piece[p], out->size[p] * sizeof(float));
    }
  omp_set_num_threads(1);
  f(r);
  bool same = true;
  for (int p = 0; p < 2; p++)
    if (start[p]) {
      memcpy(one[p], out->piece[p], out->size[p] * sizeof(float));
      memcpy(out->piece[p], start[p], out->size[p] * sizeof(float));
    }
  if (extra_bytes)
    memcpy(one_extra, extra, extra_bytes);
  omp_set_num_threads(2);
  f(r);
  for (int p = 0; p < 2; p++)
    if (start[p])
      same &= memcmp(one[p], out->piece[p], out->size[p] * sizeof(float)) == 0;
  if (extra_bytes)
    same &= memcmp(one_extra, extra, extra_bytes) == 0;
  CHECK(same, "%s %s: 1 and 2 threads differ", name, what);
  for (int p = 0; p < 2; p++)
    free(start[p]), free(one[p]);
  free(one_extra);
}

typedef struct Case {
  const char *name;
  int n, ic, ih, iw, gc, gh, gw, k, stride, pad_top, pad_left;
  int ica, gca; // image and grid splits (0: one piece)
} Case;

// Prefills an output: garbage where it is assigned, known values (in prev) where it accumulates.
static void prefill(T *out, T *prev, const bool acc[2]) {
  randomize(prev);
  for (int p = 0; p < 2; p++)
    if (out->piece[p]) {
      if (acc[p])
        memcpy(out->piece[p], prev->piece[p], out->size[p] * sizeof(float));
      else
        for (size_t e = 0; e < out->size[p]; e++)
          out->piece[p][e] = 1e3f * uniform();
    }
}

// The epilogue's expected values: want (+ res), then relu; stats holds space for the output's row sums.
static void epilogue(T *out, T *res, bool relu, double *want) {
  randomize(res);
  for (size_t e = 0; e < (size_t)out->n * out->c * out->hw; e++) {
    want[e] += res->canon[e];
    if (relu)
      want[e] = fmax(want[e], 0);
  }
}

// The stats an epilogue wrote for an output of h rows, against the sums of the values stored, in double
// (the order differs, hence the tolerance); the entries of channels past the output's are exactly 0.
static void check_stats(const char *what, const char *name, const T *t, int h, const double *stats) {
  const int w = t->hw / h, width = KB * kb_blocks(t->c);
  double maxdiff = 0, tol = 0;
  bool zero = true;
  for (int i = 0; i < t->n; i++)
    for (int row = 0; row < h; row++)
      for (int ch = 0; ch < width; ch++) {
        const double *got = stats + ((size_t)i * h + row) * 2 * width + ch;
        if (ch >= t->c) {
          zero &= got[0] == 0 && got[width] == 0;
          continue;
        }
        double sum = 0, sq = 0;
        for (int x = row * w; x < (row + 1) * w; x++) {
          int p;
          size_t at;
          locate(t, i, ch, x, &p, &at);
          double v = t->piece[p][at];
          sum += v, sq += v * v;
        }
        maxdiff = fmax(maxdiff, fmax(fabs(got[0] - sum), fabs(got[width] - sq)));
        tol = fmax(tol, 1e-13 * (1 + sq)); // sum |v| <= 1 + sum v^2
      }
  CHECK(maxdiff <= tol, "%s %s: stats max |diff| %g > tol %g", name, what, maxdiff, tol);
  CHECK(zero, "%s %s: stats of padding channels not 0", name, what);
}

// fused: the inputs' prologues (make_pro's kinds) and, for single-piece outputs, an epilogue with a residual,
// relu (kind 1) and stats.
static void test_case(const Case *cs, int variant, int fused) {
  const KConv g = {cs->n, cs->gc, cs->gh, cs->gw, cs->ic, cs->ih, cs->iw, cs->k, cs->stride, cs->pad_top, cs->pad_left};
  const RefConv conv = {g.n, g.ic, g.ih, g.iw, g.gc, g.gh, g.gw, g.k, g.stride, g.pad_top, g.pad_left};
  const RefConv convt = {g.n, g.gc, g.gh, g.gw, g.ic, g.ih, g.iw, g.k, g.stride, g.pad_top, g.pad_left};
  const bool with_bias = variant & 1, acc[2] = {variant & 2, variant & 4};
  const size_t ihw = (size_t)g.ih * g.iw, ghw = (size_t)g.gh * g.gw, nw = (size_t)g.gc * g.ic * g.k * g.k;
  const double bound = fused ? 4 : 1, wbound = fused ? 12 : 1; // see the tolerance above
  T image = make(g.n, g.ic, (int)ihw, cs->ica), grid = make(g.n, g.gc, (int)ghw, cs->gca);
  T prev_i = make(g.n, g.ic, (int)ihw, cs->ica), prev_g = make(g.n, g.gc, (int)ghw, cs->gca);
  T res_i = make(g.n, g.ic, (int)ihw, 0), res_g = make(g.n, g.gc, (int)ghw, 0);
  Pro pro_i = make_pro(&image, fused), pro_g = make_pro(&grid, fused);
  double *w = dalloc(nw), *bg = dalloc((size_t)g.gc), *bi = dalloc((size_t)g.ic);
  float *wf = falloc(nw), *bgf = falloc((size_t)g.gc), *bif = falloc((size_t)g.ic);
  for (size_t e = 0; e < nw; e++)
    w[e] = wf[e] = uniform();
  for (int c = 0; c < g.gc; c++)
    bg[c] = bgf[c] = uniform();
  for (int c = 0; c < g.ic; c++)
    bi[c] = bif[c] = uniform();
  float *wg = falloc(kc_packed_floats(&g)), *ws = falloc(kc_packed_floats(&g));
  kc_pack_gather(&g, wf, wg);
  kc_pack_scatter(&g, wf, ws);
  // Winograd where it fits, its pieces blocked (a 1-channel piece is plain).
  const bool wino = kw_fits(&g) && (!cs->ica || g.ic - cs->ica > 1) && (!cs->gca || g.gc - cs->gca > 1);
  float *ug = wino ? falloc(kw_packed_floats(&g)) : NULL, *us = wino ? falloc(kw_packed_floats(&g)) : NULL;
  if (wino)
    kw_pack_gather(&g, wf, ug), kw_pack_scatter(&g, wf, us);
  Run r = {.g = &g,
           .wg = wg,
           .ws = ws,
           .ug = ug,
           .us = us,
           .bias_g = with_bias ? bgf : NULL,
           .bias_i = with_bias ? bif : NULL,
           .image = &image,
           .grid = &grid,
           .acc = {acc[0], acc[1]},
           .pro_i = &pro_i,
           .pro_g = &pro_g};
  char name[192];
  snprintf(name, sizeof name,
           "%s [n %d, image %d:%d %dx%d, grid %d:%d %dx%d, k %d s %d pad %d,%d, bias %d acc %d%d fused %d]", cs->name,
           g.n, g.ic, cs->ica, g.ih, g.iw, g.gc, cs->gca, g.gh, g.gw, g.k, g.stride, g.pad_top, g.pad_left, with_bias,
           acc[0], acc[1], fused);

  double *want_g = dalloc((size_t)g.n * g.gc * ghw), *want_i = dalloc((size_t)g.n * g.ic * ihw);
  const bool epi_g = fused && !cs->gca, epi_i = fused && !cs->ica;
  double *stats = dalloc((size_t)g.n * (g.gh > g.ih ? g.gh : g.ih) * 2 * KB * kb_blocks(g.gc > g.ic ? g.gc : g.ic));
  for (int kw = 0; kw <= (int)wino; kw++) {
    r.wino = kw;
    const double tb = kw ? WINO_TOL * bound : bound;
    char kname[220];
    snprintf(kname, sizeof kname, "%s%s", name, kw ? " winograd" : "");
    // gather: conv's forward, with the epilogue on a single-piece grid.
    randomize(&image);
    prefill(&grid, &prev_g, acc);
    double *in = through(&image, &pro_i);
    ref_conv_fwd(&conv, in, w, with_bias ? bg : NULL, want_g);
    free(in);
    if (epi_g) {
      epilogue(&grid, &res_g, fused == 1, want_g);
      r.res = res_g.piece[0], r.relu = fused == 1, r.stats = stats;
    }
    deterministic("gather", kname, run_gather, &r, &grid, stats,
                  epi_g ? (size_t)g.n * g.gh * 2 * KB * kb_blocks(g.gc) * sizeof *stats : 0);
    compare("gather", kname, &grid, want_g, &prev_g, acc, (double)g.ic * g.k * g.k + 1, tb);
    if (epi_g)
      check_stats("gather", kname, &grid, g.gh, stats);

    // scatter: convT's forward, with the epilogue on a single-piece image.
    randomize(&grid);
    prefill(&image, &prev_i, acc);
    in = through(&grid, &pro_g);
    ref_convt_fwd(&convt, in, w, with_bias ? bi : NULL, want_i);
    free(in);
    r.res = NULL, r.relu = false, r.stats = NULL;
    if (epi_i) {
      epilogue(&image, &res_i, fused == 1, want_i);
      r.res = res_i.piece[0], r.relu = fused == 1, r.stats = stats;
    }
    deterministic("scatter", kname, run_scatter, &r, &image, stats,
                  epi_i ? (size_t)g.n * g.ih * 2 * KB * kb_blocks(g.ic) * sizeof *stats : 0);
    compare("scatter", kname, &image, want_i, &prev_i, acc, (double)g.gc * g.k * g.k + 1, tb);
    if (epi_i)
      check_stats("scatter", kname, &image, g.ih, stats);
    r.res = NULL, r.relu = false, r.stats = NULL;
  }
  r.wino = false;

  // wgrad, with conv's bias gradient (of the grid, conv_bwd) and convT's (of the image, convt_bwd).
  randomize(&image);
  double *dw = dalloc(nw), *db = dalloc((size_t)(g.gc > g.ic ? g.gc : g.ic)), *dx = dalloc((size_t)g.n * g.ic * ihw);
  double *gin = through(&grid, &pro_g), *iin = through(&image, &pro_i);
  float *dwf = falloc(nw + (size_t)g.gc + (size_t)g.ic);
  // db of the image, then of the grid, each direct and by Winograd where it fits; the direct run of the grid's
  // last, as its check of conv's dx overwrites the image.
  for (int run = 0; run < 2 * (1 + wino); run++) {
    const int of_grid = wino ? run >= 2 : run, nb = of_grid ? g.gc : g.ic;
    r.wino = wino && (run == 1 || run == 2);
    char kname[220];
    snprintf(kname, sizeof kname, "%s%s", name, r.wino ? " winograd" : "");
    if (of_grid)
      ref_conv_bwd(&conv, iin, w, gin, dx, dw, db);
    else
      ref_convt_bwd(&convt, gin, w, iin, NULL, dw, db);
    r.dw = dwf, r.db = with_bias || of_grid ? dwf + nw : NULL, r.bias_of_grid = of_grid;
    deterministic(of_grid ? "wgrad (db of grid)" : "wgrad (db of image)", kname, run_wgrad, &r, NULL, dwf,
                  (nw + (r.db ? (size_t)nb : 0)) * sizeof *dwf);
    double maxref = 0, maxdiff = 0;
    for (size_t e = 0; e < nw; e++)
      maxref = fmax(maxref, fabs(dw[e])), maxdiff = fmax(maxdiff, fabs(dwf[e] - dw[e]));
    double tol = (double)g.n * ghw * FLT_EPSILON * (wbound + maxref) * (r.wino ? WINO_TOL : 1);
    CHECK(maxdiff <= tol, "%s wgrad: dw max |diff| %g > tol %g", kname, maxdiff, tol);
    if (r.db) {
      maxref = maxdiff = 0;
      for (int c = 0; c < nb; c++)
        maxref = fmax(maxref, fabs(db[c])), maxdiff = fmax(maxdiff, fabs(r.db[c] - db[c]));
      tol = (double)g.n * (of_grid ? ghw : ihw) * FLT_EPSILON * (bound + maxref);
      CHECK(maxdiff <= tol, "%s wgrad: db (of %s) max |diff| %g > tol %g", name, of_grid ? "grid" : "image", maxdiff,
            tol);
    }
    // conv's data gradient is the scatter without bias, assigned: check it against conv_bwd's dx too.
    if (of_grid && !with_bias && !r.wino) {
      fill(&image, NAN);
      bool assign[2] = {false, false};
      Run s = r;
      s.acc[0] = s.acc[1] = false;
      run_scatter(&s);
      compare("scatter (conv dx)", name, &image, dx, &prev_i, assign, (double)g.gc * g.k * g.k + 1, bound);
    }
  }
  r.wino = false;
  free(dw), free(db), free(dx), free(dwf), free(want_g), free(want_i), free(stats), free(gin), free(iin);
  free(w), free(bg), free(bi), free(wf), free(bgf), free(bif), free(wg), free(ws), free(ug), free(us);
  drop(&image), drop(&grid), drop(&prev_i), drop(&prev_g), drop(&res_i), drop(&res_g);
  drop_pro(&pro_i), drop_pro(&pro_g);
}

int main(void) {
  make_dir("kern_conv");
  // {name, n, ic, ih, iw, gc, gh, gw, k, stride, pad_top, pad_left, ica, gca}; the grid is conv's output and
  // convT's input.
  const Case cases[] = {
      {"same k3 s1", 2, 3, 7, 9, 16, 7, 9, 3, 1, 1, 1, 0, 0},
      {"same k3 s2 odd", 2, 17, 13, 13, 32, 7, 7, 3, 2, same_pad(13, 7, 3, 2), same_pad(13, 7, 3, 2), 0, 0},
      {"same k5 s1", 1, 16, 16, 16, 17, 16, 16, 5, 1, 2, 2, 0, 0},
      {"tf same k3 s2 even", 2, 32, 16, 16, 40, 8, 8, 3, 2, same_pad(16, 8, 3, 2), same_pad(16, 8, 3, 2), 0, 0},
      {"first layer", 2, 1, 33, 31, 32, 17, 16, 3, 2, same_pad(33, 17, 3, 2), same_pad(31, 16, 3, 2), 0, 0},
      {"last layer", 2, 16, 13, 13, 1, 13, 13, 3, 1, 1, 1, 0, 0},
      {"last layer partial block", 1, 40, 7, 9, 1, 7, 9, 3, 1, 1, 1, 0, 0},
      {"1 to 1", 2, 1, 7, 9, 1, 7, 9, 3, 1, 1, 1, 0, 0},
      {"projection k1 s2", 2, 32, 16, 16, 16, 8, 8, 1, 2, 0, 0, 0, 0},
      {"k1 s1", 2, 17, 7, 9, 3, 7, 9, 1, 1, 0, 0, 0, 0},
      {"valid k3", 1, 16, 13, 13, 16, 11, 11, 3, 1, 0, 0, 0, 0},
      {"valid k3 s2", 1, 16, 13, 12, 17, 6, 5, 3, 2, 0, 0, 0, 0},
      {"convT tf same k3 s2", 1, 16, 32, 32, 32, 16, 16, 3, 2, 0, 0, 0, 0},
      {"convT crop k5 s2", 2, 3, 13, 13, 16, 7, 7, 5, 2, 2, 2, 0, 0},
      {"k5 s2 odd", 1, 17, 33, 31, 16, 17, 16, 5, 2, 2, 2, 0, 0},
      {"wide rows", 1, 24, 19, 33, 40, 19, 33, 3, 1, 1, 1, 0, 0},
      {"image 16+16", 2, 32, 16, 16, 16, 16, 16, 3, 1, 1, 1, 16, 0},
      {"image 32+16 s2", 1, 48, 16, 16, 17, 8, 8, 3, 2, 0, 0, 32, 0},
      {"image 16+1", 1, 17, 7, 9, 16, 7, 9, 3, 1, 1, 1, 16, 0},
      {"grid 16+16 convT", 1, 16, 16, 16, 32, 8, 8, 3, 2, 0, 0, 0, 16},
      {"grid 32+16 convT crop", 1, 40, 13, 13, 48, 7, 7, 3, 2, 1, 1, 0, 32},
      {"both split", 1, 33, 9, 7, 40, 9, 7, 3, 1, 1, 1, 32, 16},
      {"last layer from 16+16", 1, 32, 7, 9, 1, 7, 9, 3, 1, 1, 1, 16, 0},
      {"first layer k1", 1, 1, 9, 7, 17, 9, 7, 1, 1, 0, 0, 0, 0},
      {"k7 s1", 1, 3, 9, 9, 16, 9, 9, 7, 1, 3, 3, 0, 0},
      {"k3 s3", 1, 5, 10, 11, 17, 4, 4, 3, 3, 1, 1, 0, 0},
  };
  const int ncases = (int)(sizeof cases / sizeof *cases);
  for (int i = 0; i < ncases; i++) {
    // Rotate bias and the two pieces' acc flags (variant bits 0, 1, 2) through the cases, two per case, and
    // a third fused, alternating the two kinds of prologues.
    for (int v = 0; v < 8; v++)
      if (v == i % 8 || v == (i * 5 + 3) % 8)
        test_case(&cases[i], v, 0);
    test_case(&cases[i], (i * 3 + 1) % 8, 1 + i % 2);
  }
  return finish();
}
