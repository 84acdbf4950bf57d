// conv_test.c: the CUDA back end's convolution ops (runtime/cuda/cu_conv.cuh), compiled
// as C and run on the emulator, against the C back end's kernels (kern_conv.c)
// on awkward shapes: conv and convT geometries (stride 1, 2 and 3, k 1 to 5 and
// 7, 'same', valid, full, explicit and cropping paddings, odd sizes), channel
// counts that are not multiples of 16, plain 1-channel tensors, inputs and
// outputs in two pieces (the second blocked or plain), accumulating pieces,
// biases, prologues on one or both pieces, and residual and relu epilogues;
// then as many random geometries.
//
// Tolerance. Both sides sum the same products in fp32 in different orders, so
// an output may differ by a few roundings of its partial sums: the check is
// |cuda - c| <= 1e-5 * (sum of the |terms| + |the value added to|), the sum of
// |terms| being the C kernel run on the absolute values of the (prologue'd)
// inputs, weights, bias and residual. A wrong tap, channel or offset moves a
// value by a whole term. Padding lanes must be exactly 0, and wgrad must give
// the same bits on 1 and 2 host threads.
#include "cu.h"
#include "cu_conv.cuh"
#include "kern.h"
#include "testutil.h"
#include "testwork.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>

static uint64_t seed = 0x13198a2e03707344u;

static float uniform(void) { return (float)(2 * test_uniform(&seed) - 1); } // [-1, 1)

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    fputs("out of memory\n", stderr);
    exit(2);
  }
  return p;
}

static float *falloc(size_t count) { return xmalloc(count * sizeof(float)); }

// ---- the ops on the emulator: arguments in globals, kernels that ignore the arenas ----

static KConv G;
static KIn IN, IN2;
static KOut OUT;
static const float *W, *BIAS;
static float *WP, *DW, *DB;
static bool OF_GRID;
static void *WORK;
static int STAGE;

CU_KERNEL(k_pack_gather) {
  (void)A;
  cu_pack_gather(&G, W, WP);
}
CU_KERNEL(k_pack_scatter) {
  (void)A;
  cu_pack_scatter(&G, W, WP);
}
CU_KERNEL(k_gather) {
  (void)A;
  cu_gather(&G, IN, WP, BIAS, OUT);
}
CU_KERNEL(k_scatter) {
  (void)A;
  cu_scatter(&G, IN, WP, BIAS, OUT);
}
CU_KERNEL(k_wgrad) {
  (void)A;
  cu_wgrad(STAGE, WORK, &G, IN, IN2, DW, DB, OF_GRID);
}

// Every stage of a plan, with its workspace.
static void launch(CuKernelFn *fn, const char *name, CuPlan plan) {
  static const CuArenas no_arenas;
  WORK = plan.work_bytes ? xmalloc((size_t)plan.work_bytes) : NULL;
  for (STAGE = 0; STAGE < plan.stages; STAGE++)
    cu_emu_launch(fn, name, plan.grid[STAGE], CU_THREADS, no_arenas);
  free(WORK);
}

// ---- tensors: n x c x h x w, blocked, in one piece or two split at ca ----

typedef struct T {
  int n, c, h, w, ca;
  float *p[2];
  size_t size[2]; // floats of each piece
} T;

static int piece_channels(const T *t, int p) { return t->ca ? (p ? t->c - t->ca : t->ca) : (p ? 0 : t->c); }

// Offset of channel ch (of its piece, which has pc channels) at pixel x of image i.
static size_t at(int pc, int hw, int i, int ch, int x) {
  return pc == 1 ? (size_t)i * hw + x : (((size_t)i * kb_blocks(pc) + ch / KB) * hw + x) * KB + ch % KB;
}

static T make(int n, int c, int h, int w, int ca) {
  T t = {n, c, h, w, ca, {NULL, NULL}, {0, 0}};
  for (int p = 0; p < (ca ? 2 : 1); p++) {
    t.size[p] = kb_elems(n, piece_channels(&t, p), h, w);
    t.p[p] = falloc(t.size[p]);
    memset(t.p[p], 0, t.size[p] * sizeof(float));
  }
  return t;
}

static T copy(const T *t) {
  T u = make(t->n, t->c, t->h, t->w, t->ca);
  for (int p = 0; p < 2; p++)
    if (t->p[p])
      memcpy(u.p[p], t->p[p], t->size[p] * sizeof(float));
  return u;
}

static void drop(T *t) {
  free(t->p[0]);
  free(t->p[1]);
}

// Random values in [-1, 1) with zero padding lanes; with `garbage`, padding lanes too (an output assigned).
static void randomize(T *t, bool garbage) {
  for (int p = 0; p < 2; p++) {
    const int pc = t->p[p] ? piece_channels(t, p) : 0, hw = t->h * t->w;
    for (size_t e = 0; t->p[p] && e < t->size[p]; e++)
      t->p[p][e] = garbage ? 1e3f * uniform() : 0.0f;
    for (int i = 0; i < t->n && !garbage; i++)
      for (int ch = 0; ch < pc; ch++)
        for (int x = 0; x < hw; x++)
          t->p[p][at(pc, hw, i, ch, x)] = uniform();
  }
}

// Whether every padding lane of t is exactly 0.
static bool lanes_zero(const T *t) {
  for (int p = 0; p < 2; p++) {
    const int pc = piece_channels(t, p), hw = t->h * t->w;
    for (int i = 0; pc > 1 && i < t->n; i++)
      for (int ch = pc; ch < KB * kb_blocks(pc); ch++)
        for (int x = 0; x < hw; x++)
          if (t->p[p][at(pc, hw, i, ch, x)] != 0.0f)
            return false;
  }
  return true;
}

// Prologues of a tensor's pieces, their arrays exactly as long as the pieces' channels (so that the sanitizer
// sees a read past them). kind 0: none; 1: batch norm + relu on piece a; 2: batch norm on piece a, relu
// alone on piece b; 3: batch norm on both, relu on b.
typedef struct Pro {
  KPro k[2];
  float *arr[4];
} Pro;

static Pro make_pro(const T *t, int kind) {
  Pro p;
  memset(&p, 0, sizeof p);
  for (int q = 0; q < 2 && kind; q++) {
    const int pc = piece_channels(t, q);
    if (!pc || (q == 1 && kind != 3))
      continue;
    p.arr[2 * q] = falloc((size_t)pc), p.arr[2 * q + 1] = falloc((size_t)pc);
    for (int ch = 0; ch < pc; ch++)
      p.arr[2 * q][ch] = 1 + uniform() / 2, p.arr[2 * q + 1][ch] = uniform() / 2;
    p.k[q].scale = p.arr[2 * q], p.k[q].shift = p.arr[2 * q + 1];
  }
  p.k[0].relu = kind == 1;
  p.k[1].relu = kind >= 2 && t->ca;
  return p;
}

static void drop_pro(Pro *p) {
  for (int q = 0; q < 4; q++)
    free(p->arr[q]);
}

static KIn kin(const T *t, const Pro *p) {
  KIn k;
  memset(&k, 0, sizeof k);
  k.a = t->p[0], k.b = t->p[1], k.ca = t->ca;
  if (p)
    k.pro_a = p->k[0], k.pro_b = p->k[1];
  return k;
}

static KOut kout(T *t, bool acc_a, bool acc_b, const float *res, bool relu) {
  KOut k;
  memset(&k, 0, sizeof k);
  k.a = t->p[0], k.b = t->p[1], k.ca = t->ca, k.acc_a = acc_a, k.acc_b = acc_b, k.res = res, k.relu = relu;
  return k;
}

// |the values the kernels read through the prologues|, as a tensor without prologues.
static T abs_through(const T *t, const Pro *pro) {
  T u = copy(t);
  for (int p = 0; p < 2; p++) {
    const int pc = piece_channels(t, p), hw = t->h * t->w;
    const KPro k = pro ? pro->k[p] : (KPro){NULL, NULL, false};
    for (int i = 0; i < t->n; i++)
      for (int ch = 0; ch < pc; ch++)
        for (int x = 0; x < hw; x++) {
          float *v = &u.p[p][at(pc, hw, i, ch, x)];
          float y = k.scale ? k.scale[ch] * *v + k.shift[ch] : *v;
          *v = fabsf(k.relu && !(y > 0) ? 0.0f : y);
        }
  }
  return u;
}

static float *abs_copy(const float *x, size_t count) {
  if (!x)
    return NULL;
  float *y = falloc(count);
  for (size_t e = 0; e < count; e++)
    y[e] = fabsf(x[e]);
  return y;
}

// Every float of the CUDA output against the C one; `mag`: the sums of |terms|, `prev`: the output before
// the op (its pieces added to where they accumulate).
static void compare(const char *what, const char *name, const T *cu, const T *c, const T *mag, const T *prev,
                    const bool acc[2]) {
  double worst = 0; // the largest |diff| / tolerance
  size_t worst_at = 0;
  int worst_piece = 0;
  for (int p = 0; p < 2; p++)
    for (size_t e = 0; cu->p[p] && e < cu->size[p]; e++) {
      const double tol = 1e-5 * (mag->p[p][e] + (acc[p] ? fabs(prev->p[p][e]) : 0.0)),
                   diff = fabs((double)cu->p[p][e] - c->p[p][e]);
      if (!(diff <= tol) && (tol == 0 || !(diff / tol <= worst))) { // NaN counts as the worst
        worst = tol ? diff / tol : INFINITY, worst_at = e, worst_piece = p;
        if (!(worst < INFINITY))
          break;
      }
    }
  CHECK(worst == 0, "%s %s: piece %d float %zu: cuda %.9g, c %.9g (|diff| %.3g x the tolerance)", name, what,
        worst_piece, worst_at, cu->p[worst_piece][worst_at], c->p[worst_piece][worst_at], worst);
  CHECK(lanes_zero(cu), "%s %s: padding lanes not 0", name, what);
}

static void compare_floats(const char *what, const char *name, const float *cu, const float *c, const float *mag,
                           size_t count) {
  double worst = 0;
  size_t worst_at = 0;
  for (size_t e = 0; e < count; e++) {
    const double tol = 1e-5 * mag[e], diff = fabs((double)cu[e] - c[e]);
    if (!(diff <= tol) && (tol == 0 || !(diff / tol <= worst)))
      worst = tol ? diff / tol : INFINITY, worst_at = e;
  }
  CHECK(worst == 0, "%s %s: [%zu]: cuda %.9g, c %.9g (|diff| %.3g x the tolerance)", name, what, worst_at,
        cu[worst_at], c[worst_at], worst);
}

// ---- one geometry ----

typedef struct Case {
  const char *name;
  int n, ic, ih, iw, gc, gh, gw, k, stride, pad_top, pad_left;
  int ica, gca; // image and grid splits (0: one piece)
} Case;

// A data op (gather: image -> grid; scatter: grid -> image) on the C kernels and on the emulator, compared.
// variant bits: 1 bias, 2 acc on piece a, 4 acc on piece b; pro: the input's prologue kind; epi: a residual
// and relu on a single-piece output.
static void data_op(const char *name, bool scatter, const T *in, const Pro *pro, T *out, const float *wc,
                    const float *wca, const float *wcu, const float *bias, int variant, bool epi) {
  const bool acc[2] = {variant & 2, (variant & 4) && out->ca};
  const int oc = scatter ? G.ic : G.gc;
  T prev = copy(out), res = make(out->n, out->c, out->h, out->w, 0), mag = copy(out), c_out = copy(out);
  randomize(&res, false);
  // Assigned pieces start as garbage, padding lanes included; accumulated ones as random values.
  for (int p = 0; p < 2; p++)
    if (out->p[p]) {
      T one = *out;
      one.p[1 - p] = NULL;
      randomize(&one, !acc[p]);
    }
  memcpy(prev.p[0], out->p[0], out->size[0] * sizeof(float));
  if (out->p[1])
    memcpy(prev.p[1], out->p[1], out->size[1] * sizeof(float));
  memcpy(c_out.p[0], out->p[0], out->size[0] * sizeof(float));
  if (out->p[1])
    memcpy(c_out.p[1], out->p[1], out->size[1] * sizeof(float));
  const float *b = variant & 1 ? bias : NULL, *r = epi ? res.p[0] : NULL;
  float *babs = abs_copy(b, (size_t)oc), *rabs = abs_copy(r, res.size[0]);
  T in_abs = abs_through(in, pro);

  if (scatter) {
    kc_scatter(&G, kin(in, pro), wc, b, kout(&c_out, acc[0], acc[1], r, epi), work_of(kc_conv_work(&G, true, true)));
    kc_scatter(&G, kin(&in_abs, NULL), wca, babs, kout(&mag, false, false, rabs, false), work_of(kc_conv_work(&G, true, false)));
  } else {
    kc_gather(&G, kin(in, pro), wc, b, kout(&c_out, acc[0], acc[1], r, epi), work_of(kc_conv_work(&G, false, true)));
    kc_gather(&G, kin(&in_abs, NULL), wca, babs, kout(&mag, false, false, rabs, false), work_of(kc_conv_work(&G, false, false)));
  }
  IN = kin(in, pro), WP = (float *)wcu, BIAS = b, OUT = kout(out, acc[0], acc[1], r, epi);
  if (scatter)
    launch(k_scatter, "scatter", cu_scatter_plan(&G));
  else
    launch(k_gather, "gather", cu_gather_plan(&G));
  compare(scatter ? "scatter" : "gather", name, out, &c_out, &mag, &prev, acc);
  drop(&prev), drop(&res), drop(&mag), drop(&c_out), drop(&in_abs);
  free(babs), free(rabs);
}

// The weight gradient, with db of the grid (conv's) or of the image (convT's), on 1 and 2 host threads.
static void wgrad_op(const char *name, const T *grid, const Pro *pro_g, const T *image, const Pro *pro_i,
                     bool with_db, bool of_grid) {
  const size_t nw = (size_t)G.gc * G.ic * G.k * G.k, nb = (size_t)(of_grid ? G.gc : G.ic);
  float *dw_c = falloc(nw), *db_c = falloc(nb), *dw_m = falloc(nw), *db_m = falloc(nb);
  float *dw_1 = falloc(nw), *db_1 = falloc(nb), *dw_2 = falloc(nw), *db_2 = falloc(nb);
  T grid_abs = abs_through(grid, pro_g), image_abs = abs_through(image, pro_i);
  kc_wgrad(&G, kin(grid, pro_g), kin(image, pro_i), dw_c, with_db ? db_c : NULL, of_grid, work_of(kc_wgrad_work(&G, true, true)));
  kc_wgrad(&G, kin(&grid_abs, NULL), kin(&image_abs, NULL), dw_m, db_m, of_grid, work_of(kc_wgrad_work(&G, false, false)));
  IN = kin(grid, pro_g), IN2 = kin(image, pro_i), OF_GRID = of_grid;
  for (int threads = 1; threads <= 2; threads++) {
    omp_set_num_threads(threads);
    DW = threads == 1 ? dw_1 : dw_2, DB = with_db ? (threads == 1 ? db_1 : db_2) : NULL;
    launch(k_wgrad, "wgrad", cu_wgrad_plan(&G));
  }
  compare_floats("wgrad dw", name, dw_1, dw_c, dw_m, nw);
  CHECK(!memcmp(dw_1, dw_2, nw * sizeof(float)), "%s wgrad: dw differs between 1 and 2 threads", name);
  if (with_db) {
    compare_floats(of_grid ? "wgrad db (of the grid)" : "wgrad db (of the image)", name, db_1, db_c, db_m, nb);
    CHECK(!memcmp(db_1, db_2, nb * sizeof(float)), "%s wgrad: db differs between 1 and 2 threads", name);
  }
  free(dw_c), free(db_c), free(dw_m), free(db_m), free(dw_1), free(db_1), free(dw_2), free(db_2);
  drop(&grid_abs), drop(&image_abs);
}

// variant: bias and acc bits as data_op's; fused: prologue kind (0-3) on both inputs, with the epilogue when
// nonzero.
static void test_case(const Case *cs, int variant, int fused) {
  G = (KConv){cs->n, cs->gc, cs->gh, cs->gw, cs->ic, cs->ih, cs->iw, cs->k, cs->stride, cs->pad_top, cs->pad_left};
  const size_t nw = (size_t)G.gc * G.ic * G.k * G.k;
  char name[192];
  snprintf(name, sizeof name,
           "%s [n %d, image %d:%d %dx%d, grid %d:%d %dx%d, k %d s %d pad %d,%d, bias %d acc %d%d fused %d]", cs->name,
           G.n, G.ic, cs->ica, G.ih, G.iw, G.gc, cs->gca, G.gh, G.gw, G.k, G.stride, G.pad_top, G.pad_left,
           variant & 1, (variant >> 1) & 1, (variant >> 2) & 1, fused);
  float *w = falloc(nw), *wabs = falloc(nw), *bg = falloc((size_t)G.gc), *bi = falloc((size_t)G.ic);
  for (size_t e = 0; e < nw; e++)
    w[e] = uniform(), wabs[e] = fabsf(w[e]);
  for (int c = 0; c < G.gc; c++)
    bg[c] = uniform();
  for (int c = 0; c < G.ic; c++)
    bi[c] = uniform();
  // The C kernels' packings (and of |w|, for the tolerances), and the CUDA ones.
  const size_t kcn = kc_packed_floats(&G);
  float *wg = falloc(kcn), *ws = falloc(kcn), *wga = falloc(kcn), *wsa = falloc(kcn);
  float *cwg = falloc(kcn), *cws = falloc(kcn);
  kc_pack_gather(&G, w, wg), kc_pack_scatter(&G, w, ws);
  kc_pack_gather(&G, wabs, wga), kc_pack_scatter(&G, wabs, wsa);
  W = w, WP = cwg;
  launch(k_pack_gather, "pack_gather", cu_pack_plan(&G));
  WP = cws;
  launch(k_pack_scatter, "pack_scatter", cu_pack_plan(&G));

  T image = make(G.n, G.ic, G.ih, G.iw, cs->ica), grid = make(G.n, G.gc, G.gh, G.gw, cs->gca);
  randomize(&image, false), randomize(&grid, false);
  Pro pro_i = make_pro(&image, fused), pro_g = make_pro(&grid, fused);

  // gather writes the grid from the image, scatter the image from the grid; each output starts prefilled.
  T out_g = make(G.n, G.gc, G.gh, G.gw, cs->gca), out_i = make(G.n, G.ic, G.ih, G.iw, cs->ica);
  data_op(name, false, &image, &pro_i, &out_g, wg, wga, cwg, bg, variant, fused && !cs->gca);
  data_op(name, true, &grid, &pro_g, &out_i, ws, wsa, cws, bi, variant, fused && !cs->ica);
  // wgrad: db of the grid or of the image, alternating with the variant.
  wgrad_op(name, &grid, &pro_g, &image, &pro_i, variant & 1 || fused, (variant >> 1) & 1);

  drop(&image), drop(&grid), drop(&out_g), drop(&out_i);
  drop_pro(&pro_i), drop_pro(&pro_g);
  free(w), free(wabs), free(bg), free(bi), free(wg), free(ws), free(wga), free(wsa), free(cwg), free(cws);
}

int main(void) {
  make_dir("cuda_conv");
  // {name, n, ic, ih, iw, gc, gh, gw, k, stride, pad_top, pad_left, ica, gca}; the grid is conv's output and
  // convT's input.
  const Case cases[] = {
      {"same k3 s1", 2, 3, 7, 9, 16, 7, 9, 3, 1, 1, 1, 0, 0},
      {"same k3 s2 odd", 2, 20, 13, 13, 32, 7, 7, 3, 2, same_pad(13, 7, 3, 2), same_pad(13, 7, 3, 2), 0, 0},
      {"same k5 s1", 1, 16, 16, 16, 20, 16, 16, 5, 1, 2, 2, 0, 0},
      {"tf same k3 s2 even", 2, 32, 16, 16, 48, 8, 8, 3, 2, same_pad(16, 8, 3, 2), same_pad(16, 8, 3, 2), 0, 0},
      {"first layer", 2, 1, 33, 31, 32, 17, 16, 3, 2, same_pad(33, 17, 3, 2), same_pad(31, 16, 3, 2), 0, 0},
      {"first layer k5", 3, 1, 20, 18, 16, 20, 18, 5, 1, 2, 2, 0, 0},
      {"last layer", 2, 16, 13, 13, 1, 13, 13, 3, 1, 1, 1, 0, 0},
      {"last layer partial block", 1, 40, 7, 9, 1, 7, 9, 3, 1, 1, 1, 0, 0},
      {"1 to 1", 2, 1, 7, 9, 1, 7, 9, 3, 1, 1, 1, 0, 0},
      {"projection k1 s2", 2, 32, 16, 16, 16, 8, 8, 1, 2, 0, 0, 0, 0},
      {"k1 s1", 2, 20, 7, 9, 3, 7, 9, 1, 1, 0, 0, 0, 0},
      {"valid k3", 1, 16, 13, 13, 16, 11, 11, 3, 1, 0, 0, 0, 0},
      {"valid k3 s2", 1, 16, 13, 12, 20, 6, 5, 3, 2, 0, 0, 0, 0},
      {"convT k4 s2 pad 1", 2, 16, 16, 14, 32, 8, 7, 4, 2, 1, 1, 0, 0},
      {"convT tf same k3 s2", 1, 16, 32, 32, 32, 16, 16, 3, 2, 0, 0, 0, 0},
      {"convT crop k5 s2", 2, 3, 13, 13, 16, 7, 7, 5, 2, 2, 2, 0, 0},
      {"k5 s2 odd", 1, 20, 33, 31, 16, 17, 16, 5, 2, 2, 2, 0, 0},
      {"wide rows", 1, 48, 19, 37, 20, 19, 37, 3, 1, 1, 1, 0, 0},
      {"many pixels", 3, 16, 24, 40, 16, 24, 40, 3, 1, 1, 1, 0, 0},
      {"image 16+16", 2, 32, 16, 16, 16, 16, 16, 3, 1, 1, 1, 16, 0},
      {"image 32+16 s2", 1, 48, 16, 16, 20, 8, 8, 3, 2, 0, 0, 32, 0},
      {"image 16+1", 1, 17, 7, 9, 16, 7, 9, 3, 1, 1, 1, 16, 0},
      {"image 16+4", 2, 20, 9, 7, 3, 9, 7, 3, 1, 1, 1, 16, 0},
      {"grid 16+16 convT", 1, 16, 16, 16, 32, 8, 8, 3, 2, 0, 0, 0, 16},
      {"grid 32+16 convT crop", 1, 40, 13, 13, 48, 7, 7, 3, 2, 1, 1, 0, 32},
      {"grid 16+1", 2, 20, 9, 7, 17, 9, 7, 3, 1, 1, 1, 0, 16},
      {"both split", 1, 33, 9, 7, 48, 9, 7, 3, 1, 1, 1, 32, 16},
      {"last layer from 16+16", 1, 32, 7, 9, 1, 7, 9, 3, 1, 1, 1, 16, 0},
      {"first layer k1", 1, 1, 9, 7, 20, 9, 7, 1, 1, 0, 0, 0, 0},
      {"k3 s3", 1, 5, 10, 11, 20, 4, 4, 3, 3, 1, 1, 0, 0},
      {"convT k2 s2", 2, 16, 16, 14, 32, 8, 7, 2, 2, 0, 0, 0, 0},
      {"k7 s1", 1, 3, 9, 9, 16, 9, 9, 7, 1, 3, 3, 0, 0},
      {"k1 s2 convT gaps", 1, 16, 9, 9, 16, 5, 5, 1, 2, 0, 0, 0, 0},
      {"full pad", 1, 16, 6, 5, 16, 8, 7, 3, 1, 2, 2, 0, 0},
      {"wide channels", 1, 96, 6, 5, 80, 6, 5, 3, 1, 1, 1, 0, 0},
      // The seed models' full-size layers around the 128 x 128 images.
      {"seed first layer", 2, 1, 128, 128, 32, 64, 64, 3, 2, 0, 0, 0, 0},
      {"seed last layer", 2, 16, 128, 128, 1, 128, 128, 3, 1, 1, 1, 0, 0},
      {"seed output convT 32+32", 2, 16, 128, 128, 64, 64, 64, 3, 2, 0, 0, 0, 32},
  };
  const int ncases = (int)(sizeof cases / sizeof *cases);
  omp_set_num_threads(2);
  for (int i = 0; i < ncases; i++) {
    // Bias and the acc flags (variant bits 0, 1, 2) rotate through the cases, with a plain and a fused run each,
    // the prologue kinds in turn.
    test_case(&cases[i], i % 8, 0);
    test_case(&cases[i], (i * 5 + 3) % 8, 1 + i % 3);
  }
  // Random geometries: the grid is the image's windows (paddings up to k - 1 on each side, so convT's crops
  // too), pieces split where a channel count allows.
  static const int channels[] = {1, 3, 16, 20, 32, 48};
  for (int i = 0; i < 48; i++) {
    Case c = {"random", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    int pick = (int)((uniform() + 1) * 1e6), bottom, right;
    c.n = 1 + pick % 3, c.k = 1 + pick / 3 % 5, c.stride = 1 + pick / 15 % 2;
    c.ic = channels[pick / 30 % 6], c.gc = channels[pick / 180 % 6];
    c.pad_top = pick / 1080 % c.k, c.pad_left = pick / 5400 % c.k;
    bottom = pick / 27000 % c.k, right = pick / 135000 % c.k;
    c.ih = 1 + (int)((uniform() + 1) * 10), c.iw = 1 + (int)((uniform() + 1) * 10);
    c.gh = (c.ih + c.pad_top + bottom - c.k) / c.stride + 1, c.gw = (c.iw + c.pad_left + right - c.k) / c.stride + 1;
    if (c.ih + c.pad_top + bottom < c.k || c.iw + c.pad_left + right < c.k)
      continue; // no window fits
    c.ica = c.ic > 16 && i % 2 ? 16 : 0, c.gca = c.gc > 16 && i % 3 ? 16 : 0;
    test_case(&c, i % 8, i % 4);
  }
  return finish();
}
