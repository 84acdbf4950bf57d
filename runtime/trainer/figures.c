// figures.c: the `figures` command, the seed's qualitative figures: for chosen
// slices of a split, the clean slice, its corruption, the model's
// reconstruction of the corrupted input and the absolute residual against the
// clean slice, side by side in PNG panels.
#include "augment.h"
#include "kern.h"
#include "loader.h"
#include "plot.h"
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_COUNT = 64, COLUMNS = 4, GAP = 8, HEADER = 28, ROW_LABEL = 18 };
static const float RESIDUAL_MAX = 0.25f; // the colour scale's top: residuals above it saturate
static const Rgb WHITE = {255, 255, 255}, BLACK = {0, 0, 0};

typedef struct FigureOptions {
  CaecStepArgs step; // --weights, --out (DIR), --seed
  const char *data;
  SplitSet set;
  int count;
  int64_t slices[MAX_COUNT]; // --slices: these cache indices (nslices > 0) instead of --count
  int nslices;
} FigureOptions;

static void figures_usage(const CaecModel *m) {
  printf("usage: %s figures --weights W.safetensors --data DATASET --out DIR [--split test|val|train]\n"
         "            [--count K] [--slices I,J,...] [--seed S]\n\n"
         "Draws the seed's qualitative figures for model '%s': per slice of a split of\n"
         "DATASET/slices.bin (default test), the clean slice, the seed's corruption of it (drawn as\n"
         "eval --corrupt draws it, at (seed, epoch 0, cache index)), the reconstruction of the corrupted\n"
         "input (inference, batch norm on the running statistics) and |reconstruction - clean| on a\n"
         "colour scale from 0 to %g. Each row names the slice and the PSNR of the corrupted input and\n"
         "of the reconstruction against the clean slice.\n"
         "--count K (default 4, at most %d): K slices evenly spaced through the split, in the cache's\n"
         "order; --slices I,J,...: these cache indices instead (eval's per_image.csv 'index').\n"
         "--seed S: the corruption's seed (default %llu, the train section's).\n\n"
         "DIR/figures.png     all the slices, one row each\n"
         "DIR/slice_I.png     each slice's row alone (I its cache index)\n"
         "Exit status: 0 done, 1 error, 2 bad usage.\n",
         m->name, m->name, (double)RESIDUAL_MAX, MAX_COUNT, (unsigned long long)m->defaults.seed);
}

// --slices' value, comma-separated decimal indices, into o->slices; false when it is not such a list of
// 1 to MAX_COUNT. Whether the cache has them is for choose to say.
static bool parse_slices(const char *v, void *options) {
  FigureOptions *o = options;
  for (o->nslices = 0;; v++) {
    size_t digits = strspn(v, "0123456789");
    if (!digits || digits > 18 || o->nslices == MAX_COUNT)
      return false;
    o->slices[o->nslices++] = strtoll(v, NULL, 10);
    v += digits;
    if (*v != ',')
      return !*v;
  }
}

// -1: go on; otherwise the exit status.
static int figures_options(const CaecModel *m, int argc, char **argv, FigureOptions *o) {
  static const char *const step_options[] = {"--weights", "--out", "--seed", NULL};
  *o = (FigureOptions){.step = CAEC_STEP_ARGS_INIT, .set = SET_TEST, .count = 4};
  const CaecOption options[] = {
      {"--data", CAEC_OPT_TEXT, &o->data, 0, 0, NULL, NULL},
      {"--split", CAEC_OPT_SPLIT, &o->set, 0, 0, NULL, NULL},
      {"--count", CAEC_OPT_INT, &o->count, 1, MAX_COUNT, NULL, NULL},
      {"--slices", CAEC_OPT_CALL, o, 0, 0, parse_slices, "a list of at most 64 cache indices (I,J,...)"},
  };
  const CaecCommandLine c = {.command = "figures", .step = step_options, .options = options, .noptions = 4,
                             .usage = figures_usage, .required = {&o->step.weights, &o->data, &o->step.out},
                             .needs = "--weights W, --data DATASET and --out DIR", .model_seed = true};
  return caec_parse_command(m, &c, argc, argv, &o->step);
}

// The cache indices to draw into pick; returns how many, or -1 after a message.
static int choose(const CaecModel *m, const FigureOptions *o, const SliceCache *c, int64_t *pick) {
  if (o->nslices) {
    for (int k = 0; k < o->nslices; k++)
      if (o->slices[k] >= c->count) {
        fprintf(stderr, "%s: error: --slices: %lld is not a cache index: %s/slices.bin has %lld slices\n", m->name,
                (long long)o->slices[k], o->data, (long long)c->count);
        return -1;
      }
    memcpy(pick, o->slices, sizeof(int64_t) * (size_t)o->nslices);
    return o->nslices;
  }
  int64_t count = cache_count(c, o->set);
  int64_t *order = malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
  if (!order)
    return caec_fail(m, "%s", "out of memory"), -1;
  loader_order(c, o->set, o->step.seed, 0, false, order);
  int n = count < o->count ? (int)count : o->count;
  for (int k = 0; k < n; k++) // the middle of each of n equal parts
    pick[k] = order[(2 * k + 1) * count / (2 * n)];
  free(order);
  if (n == 0)
    fprintf(stderr, "%s: error: %s: no %s slices\n", m->name, o->data, split_set_name(o->set));
  return n ? n : -1;
}

// The four images of each slice, [4][n][h][w]: clean, corrupted, reconstruction, |residual|; and the PSNRs.
static int compute(const CaecModel *m, const FigureOptions *o, const SliceCache *c, CaecState *s, const int64_t *pick,
                   int n, float *img, double *psnr_in, double *psnr_out) {
  size_t pixels = (size_t)m->height * (size_t)m->width, images = (size_t)m->batch * pixels;
  float *x = malloc(images * sizeof(float)), *y = malloc(images * sizeof(float));
  double *mse = malloc((size_t)m->batch * sizeof(double)), *dssim = malloc((size_t)m->batch * sizeof(double));
  int rc = x && y && mse && dssim ? 0 : caec_fail(m, "%s", "out of memory");
  AugmentParams aug = augment_for_size(m->width);
  float *clean = img, *noisy = img + n * pixels, *recon = img + 2 * n * pixels, *resid = img + 3 * n * pixels;
  for (int first = 0; !rc && first < n; first += m->batch) {
    int b = n - first < m->batch ? n - first : m->batch;
    for (int k = first; k < first + b; k++) {
      cache_decode(c, pick[k], clean + k * pixels);
      augment_image(&aug, o->step.seed, 0, (uint64_t)pick[k], m->height, m->width, clean + k * pixels,
                    noisy + k * pixels, NULL);
    }
    memcpy(x, noisy + first * pixels, (size_t)b * pixels * sizeof(float));
    caec_forward_padded(m, s, b, x, y);
    memcpy(recon + first * pixels, y, (size_t)b * pixels * sizeof(float));
    kl_metrics(b, m->height, m->width, noisy + first * pixels, clean + first * pixels, mse, dssim, psnr_in + first);
    kl_metrics(b, m->height, m->width, y, clean + first * pixels, mse, dssim, psnr_out + first);
  }
  for (size_t i = 0; !rc && i < n * pixels; i++)
    resid[i] = fabsf(recon[i] - clean[i]);
  free(x), free(y), free(mse), free(dssim);
  return rc;
}

// Draws slices [first, first + rows) of the computed images, one row each, and writes path.
static int draw(const CaecModel *m, const SliceCache *c, const int64_t *pick, int n, const float *img,
                const double *psnr_in, const double *psnr_out, int first, int rows, const char *path) {
  static const char *const titles[COLUMNS] = {"clean", "corrupted (input)", "reconstruction", "|residual|"};
  int h = m->height, w = m->width, zoom = h < 128 ? (256 + h - 1) / h : w < 128 ? (256 + w - 1) / w : 1;
  size_t pixels = (size_t)h * (size_t)w;
  int cell_w = zoom * w + GAP, row_h = ROW_LABEL + zoom * h + GAP;
  Canvas cv;
  if (!canvas_new(&cv, GAP + COLUMNS * cell_w, HEADER + rows * row_h, WHITE))
    return caec_fail(m, "%s", "out of memory");
  char text[256];
  for (int col = 0; col < COLUMNS; col++) {
    snprintf(text, sizeof text, col == 3 ? "%s 0-%g" : "%s", titles[col], (double)RESIDUAL_MAX);
    canvas_text(&cv, GAP + col * cell_w, 10, 1, BLACK, text);
  }
  for (int r = 0; r < rows; r++) {
    int k = first + r, top = HEADER + r * row_h;
    snprintf(text, sizeof text, "slice %lld (volume %d, slice %d): PSNR input %.2f dB, reconstruction %.2f dB",
             (long long)pick[k], cache_volume_of(c, pick[k]), cache_slice_of(c, pick[k]), psnr_in[k], psnr_out[k]);
    canvas_text(&cv, GAP, top + 4, 1, BLACK, text);
    for (int col = 0; col < COLUMNS; col++)
      canvas_image(&cv, GAP + col * cell_w, top + ROW_LABEL, img + (col * (size_t)n + k) * pixels, h, w, zoom, 0.0f,
                   col == 3 ? RESIDUAL_MAX : 1.0f, col == 3);
  }
  char err[CAEC_PATH_BYTES + 256];
  int rc = canvas_write_png(&cv, path, err, sizeof err) ? caec_fail(m, "%s", err) : 0;
  canvas_free(&cv);
  return rc;
}

int caec_figures_main(const CaecModel *m, int argc, char **argv) {
  FigureOptions o;
  int rc = figures_options(m, argc, argv, &o);
  if (rc >= 0)
    return rc;
  SliceCache c = {0};
  char path[CAEC_PATH_BYTES];
  int64_t pick[MAX_COUNT];
  // The weights and the data set before DIR is made: a mistake in either leaves no folder behind.
  CaecState s;
  bool state = caec_state_new(m, &s);
  rc = state ? caec_read_weights(m, o.step.weights, &s) : caec_fail(m, "%s", "out of memory for the arenas");
  rc = rc ? rc : caec_open_cache(m, o.data, &c, path, sizeof path);
  int n = rc ? 0 : choose(m, &o, &c, pick);
  rc = rc ? rc : n < 0 ? 1 : caec_make_folder(m, o.step.out);
  size_t pixels = (size_t)m->height * (size_t)m->width;
  float *img = rc ? NULL : malloc(COLUMNS * (size_t)n * pixels * sizeof(float));
  double psnr_in[MAX_COUNT], psnr_out[MAX_COUNT];
  if (!rc && !img)
    rc = caec_fail(m, "%s", "out of memory");
  rc = rc ? rc : compute(m, &o, &c, &s, pick, n, img, psnr_in, psnr_out);
  if (!rc && snprintf(path, sizeof path, "%s/figures.png", o.step.out) >= CAEC_PATH_BYTES)
    rc = caec_fail(m, "--out is too long: %s", o.step.out);
  rc = rc ? rc : draw(m, &c, pick, n, img, psnr_in, psnr_out, 0, n, path);
  for (int k = 0; !rc && k < n; k++) {
    snprintf(path, sizeof path, "%s/slice_%lld.png", o.step.out, (long long)pick[k]);
    rc = draw(m, &c, pick, n, img, psnr_in, psnr_out, k, 1, path);
  }
  if (!rc)
    printf("%s: wrote %s/figures.png and %d slice_I.png panels (clean, corrupted, reconstruction, |residual|)\n",
           m->name, o.step.out, n);
  free(img);
  if (c.map)
    cache_close(&c);
  if (state)
    caec_state_free(m, &s);
  return rc;
}
