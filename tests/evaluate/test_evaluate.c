// test_evaluate.c: the trainer's eval and reconstruct commands (argv[1],
// tiny.cae's trainer at batch 4) after a short training run on a slice cache
// written here: eval's files against train's validation and a recomputation,
// corruption, and reconstruct on volumes stored in non-canonical orders, whose
// output must line up voxel for voxel with the input. Geometry is checked
// through the model itself: with 16x16 sagittal slices (no resizing), each
// output slice cut from the written file must score against its input slice
// exactly as eval scores that slice from a cache, which fails for any
// misplaced row, column or slice.
#include "cache.h"
#include "kern.h"
#include "resize.h"
#include "testcache.h"
#include "volume.h"

#include <math.h>
#include <nifti2_io.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>

enum { S = 16, PER_VOLUME = 7 };
static const char *trainer;

// Runs `trainer ARGS...` (NULL-terminated) with its output in out.txt; its exit status.
#define RUN(...) exit_status(start_program(trainer, NULL, (const char *[]){__VA_ARGS__, NULL}))

// A CSV file's numbers: up to max rows (the header skipped) of cols columns; the rows read.
static int read_csv(const char *path, int cols, double *v, int max) {
  char *text = slurp(path, NULL), *p = text ? strchr(text, '\n') : NULL;
  int rows = 0;
  for (; p && p[1] && rows < max; rows++) {
    for (int c = 0; c < cols; c++) {
      char *end;
      v[rows * cols + c] = strtod(p + 1, &end);
      p = end;
    }
    p = strchr(p, '\n');
  }
  free(text);
  return rows;
}

// per_image.csv's rows: index, volume, slice, mse, dssim, psnr.
enum { COLS = 6, SUMMARY_COLS = 10, MAX_ROWS = 64 };

static int per_image(const char *out, double *rows) {
  char path[600];
  snprintf(path, sizeof path, "%s/per_image.csv", out);
  return read_csv(path, COLS, rows, MAX_ROWS);
}

// summary.csv's row: split (unparsed, 0), corrupt, seed, n, then mean and sd of mse, dssim, psnr.
static void summary(const char *out, double *row) {
  char path[600];
  snprintf(path, sizeof path, "%s/summary.csv", out);
  char *text = slurp(path, NULL);
  CHECK(text && !strncmp(text, "split,corrupt,seed,n,mse_mean,mse_sd,dssim_mean,dssim_sd,psnr_mean,psnr_sd\n", 75),
        "%s: header", path);
  free(text);
  // The split is a word: read the rest after it.
  memset(row, 0, sizeof(double) * SUMMARY_COLS);
  text = slurp(path, NULL);
  char *p = text ? strchr(text, '\n') : NULL;
  p = p ? strchr(p, ',') : NULL;
  for (int c = 1; p && c < SUMMARY_COLS; c++)
    row[c] = strtod(p + 1, &p);
  free(text);
}

static bool close_to(double a, double b) { return fabs(a - b) <= 1e-6 * fmax(1, fabs(b)); }

static void test_eval(const char *data, const char *run_dir, const char *out) {
  char weights[600], log[600];
  snprintf(weights, sizeof weights, "%s/last.safetensors", run_dir);
  snprintf(log, sizeof log, "%s/log.csv", run_dir);
  SliceCache c;
  char cache[600], err[512];
  snprintf(cache, sizeof cache, "%s/slices.bin", data);
  CHECK(cache_open(cache, &c, err, sizeof err) == 0, "%s", err);

  // The test split, clean: a row per slice, in the cache's order, and a summary that agrees with the rows.
  CHECK(RUN("eval", "--weights", weights, "--data", data, "--out", out) == 0, "eval: %s", output());
  CHECK(strstr(output(), "14 test slices, clean inputs: mse"), "eval prints the summary: %s", output());
  double rows[MAX_ROWS * COLS], sum[SUMMARY_COLS];
  int n = per_image(out, rows);
  CHECK(n == cache_count(&c, SET_TEST) && n == 14, "per_image.csv has %d rows", n);
  bool listed = true;
  for (int i = 0; i < n; i++) {
    const double *r = rows + i * COLS;
    listed &= cache_set_of(&c, (int64_t)r[0]) == SET_TEST && (i == 0 || r[0] > r[-COLS]) &&
              r[1] == cache_volume_of(&c, (int64_t)r[0]) && r[2] == cache_slice_of(&c, (int64_t)r[0]);
  }
  CHECK(listed, "per_image.csv lists the test slices in order with their volumes and slices");
  summary(out, sum);
  CHECK(sum[1] == 0 && sum[2] == 11 && sum[3] == n, "summary: corrupt %g, seed %g (tiny.cae's is 11), n %g", sum[1],
        sum[2], sum[3]);
  for (int k = 0; k < 3; k++) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++)
      mean += rows[i * COLS + 3 + k] / n;
    for (int i = 0; i < n; i++)
      var += pow(rows[i * COLS + 3 + k] - mean, 2) / n;
    CHECK(close_to(sum[4 + 2 * k], mean) && close_to(sum[5 + 2 * k], sqrt(var)),
          "metric %d: summary %g (sd %g), rows %g (sd %g)", k, sum[4 + 2 * k], sum[5 + 2 * k], mean, sqrt(var));
  }
  double clean_mse = sum[4];

  // The validation split through eval scores as train's validation of the same weights (7 slices: a padded batch).
  CHECK(RUN("eval", "--weights", weights, "--data", data, "--out", out, "--split", "val") == 0, "eval val: %s",
        output());
  double logged[8 * 8];
  int epochs = read_csv(log, 8, logged, 8);
  summary(out, sum);
  CHECK(epochs == 3 && sum[3] == 7 && close_to(sum[4], logged[(epochs - 1) * 8 + 3]) &&
            close_to(sum[6], logged[(epochs - 1) * 8 + 4]) && close_to(sum[8], logged[(epochs - 1) * 8 + 5]),
        "eval --split val: mse %g dssim %g psnr %g; log.csv: %g %g %g", sum[4], sum[6], sum[8],
        logged[(epochs - 1) * 8 + 3], logged[(epochs - 1) * 8 + 4], logged[(epochs - 1) * 8 + 5]);

  // Corrupted inputs: worse reconstructions of the clean slices, the same for the same seed, others for another.
  char *first = NULL;
  for (int pass = 0; pass < 3; pass++) {
    CHECK(RUN("eval", "--weights", weights, "--data", data, "--out", out, "--corrupt", "--seed",
              pass == 2 ? "8" : "7") == 0,
          "eval --corrupt: %s", output());
    summary(out, sum);
    CHECK(sum[1] == 1 && sum[2] == (pass == 2 ? 8 : 7) && sum[4] > clean_mse,
          "corrupted mse %g, clean %g", sum[4], clean_mse);
    char path[600];
    snprintf(path, sizeof path, "%s/per_image.csv", out);
    char *text = slurp(path, NULL);
    if (pass == 0) {
      first = text;
    } else {
      CHECK(text && first && (strcmp(text, first) != 0) == (pass == 2), "--corrupt --seed: pass %d", pass);
      free(text);
    }
  }
  free(first);
  cache_close(&c);
}

// ---- reconstruct ---------------------------------------------------------------------------

// How a test volume stores the world grid (nx along R, ny along A, nz along S): voxel axis c runs along world
// axis axis[c], towards + when sign[c] > 0.
typedef struct Order {
  const char *name;
  int axis[3], sign[3];
} Order;

// Writes blobs on a world grid of n[0] sagittal slices of n[2] rows (S) by n[1] columns (A), stored in
// order o, as uint16 scaled to 0..1000, with the sform and the same qform.
static void write_volume(const char *path, const Order *o, const int n[3]) {
  int64_t dims[8] = {3, n[o->axis[0]], n[o->axis[1]], n[o->axis[2]], 1, 1, 1, 1};
  nifti_image *nim = nifti_make_new_nim(dims, DT_UINT16, 1);
  static const double size[3] = {1.0, 1.2, 0.9};
  float *img = malloc(sizeof(float) * (size_t)(n[1] > n[2] ? n[1] : n[2]) * (size_t)(n[1] > n[2] ? n[1] : n[2]));
  size_t i = 0;
  for (int k = 0; k < dims[3]; k++)
    for (int j = 0; j < dims[2]; j++)
      for (int ii = 0; ii < dims[1]; ii++, i++) {
        int idx[3] = {ii, j, k}, g[3];
        for (int c = 0; c < 3; c++)
          g[o->axis[c]] = o->sign[c] > 0 ? idx[c] : n[o->axis[c]] - 1 - idx[c];
        // The blob of sagittal slice g[0] in a square image, cropped: row from S (top) down, column from A.
        int side = n[1] > n[2] ? n[1] : n[2];
        blob(side, g[0], 1, img);
        ((uint16_t *)nim->data)[i] = (uint16_t)lround(1000 * img[(n[2] - 1 - g[2]) * side + (n[1] - 1 - g[1])]);
      }
  free(img);
  nifti_dmat44 m = {{{0}}};
  for (int c = 0; c < 3; c++) {
    int a = o->axis[c];
    m.m[a][c] = o->sign[c] * size[a];
    m.m[a][3] = -30 + 7 * a + (o->sign[c] < 0 ? (n[a] - 1) * size[a] : 0);
    nim->pixdim[c + 1] = (float)size[a];
  }
  m.m[3][3] = 1;
  nim->dx = nim->pixdim[1], nim->dy = nim->pixdim[2], nim->dz = nim->pixdim[3];
  nim->sto_xyz = m;
  nim->sform_code = nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
  double dx, dy, dz;
  nifti_dmat44_to_quatern(m, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d, &nim->qoffset_x, &nim->qoffset_y,
                          &nim->qoffset_z, &dx, &dy, &dz, &nim->qfac);
  nifti_set_filenames(nim, path, 0, 1);
  nifti_image_write(nim);
  nifti_image_free(nim);
}

// The output's header has the input's geometry.
static void check_header(const char *what, const char *in, const char *out) {
  nifti_image *a = nifti_image_read(in, 0), *b = nifti_image_read(out, 0);
  bool same = a && b && b->datatype == DT_FLOAT32 && b->cal_min == 0 && b->cal_max == 1 && b->ndim == 3 &&
              b->scl_slope == 1 && b->scl_inter == 0;
  for (int d = 1; same && d < 4; d++)
    same = a->dim[d] == b->dim[d] && a->pixdim[d] == b->pixdim[d];
  same = same && a->sform_code == b->sform_code && a->qform_code == b->qform_code &&
         !memcmp(&a->sto_xyz, &b->sto_xyz, sizeof a->sto_xyz) && a->quatern_b == b->quatern_b &&
         a->quatern_c == b->quatern_c && a->quatern_d == b->quatern_d && a->qoffset_x == b->qoffset_x &&
         a->qoffset_y == b->qoffset_y && a->qoffset_z == b->qoffset_z && a->qfac == b->qfac;
  CHECK(same, "%s: %s has not the header geometry of %s", what, out, in);
  nifti_image_free(a), nifti_image_free(b);
}

static void test_reconstruct(const char *weights) {
  static const Order orders[] = {
      {"PSR (IXI)", {1, 2, 0}, {-1, 1, 1}},
      {"LPI", {0, 1, 2}, {-1, -1, -1}},
      {"ASL", {1, 2, 0}, {1, 1, -1}},
  };
  static const int exact[3] = {5, S, S}, resized[3] = {4, 21, 13};
  char in[512], out[512], res[512], data[512], eval_out[512], what[128];
  snprintf(out, sizeof out, "%s", path_in_dir("recon.nii.gz"));
  snprintf(res, sizeof res, "%s", path_in_dir("residual.nii"));
  snprintf(eval_out, sizeof eval_out, "%s", path_in_dir("recon_eval"));
  for (size_t o = 0; o < sizeof orders / sizeof *orders; o++)
    for (int r = 0; r < 2; r++) {
      const int *n = r ? resized : exact;
      snprintf(what, sizeof what, "%s, %dx%d slices", orders[o].name, n[2], n[1]);
      snprintf(in, sizeof in, "%s", path_in_dir(r ? "in_resized.nii.gz" : "in.nii"));
      write_volume(in, &orders[o], n);
      CHECK(RUN("reconstruct", "--weights", weights, in, out, "--residual", res) == 0, "%s: reconstruct: %s", what,
            output());
      check_header(what, in, out);
      check_header(what, in, res);
      Volume vi, vo, vr;
      char err[512];
      CHECK(vol_read(in, &vi, err, sizeof err) == 0, "%s", err);
      CHECK(vol_read(out, &vo, err, sizeof err) == 0, "%s", err);
      CHECK(vol_read(res, &vr, err, sizeof err) == 0, "%s", err);
      size_t nvox = (size_t)n[0] * n[1] * n[2];
      bool in01 = true;
      for (size_t i = 0; i < nvox; i++)
        in01 &= vo.data[i] >= 0 && vo.data[i] <= 1 && vr.data[i] >= 0 && vr.data[i] <= 1;
      CHECK(in01, "%s: values outside [0, 1]", what);
      // Per sagittal slice, cut canonically from the files: the residual is |prepared input - output|.
      float x[64 * 64], y[64 * 64], e[64 * 64], prepared[PER_VOLUME][S * S];
      int h, w, index[PER_VOLUME];
      bool residual = true;
      for (int s = 0; s < n[0]; s++) {
        vol_slice(&vi, PLANE_SAGITTAL, s, x, &h, &w);
        minmax01(x, (size_t)h * w);
        vol_slice(&vo, PLANE_SAGITTAL, s, y, &h, &w);
        vol_slice(&vr, PLANE_SAGITTAL, s, e, &h, &w);
        for (int p = 0; p < h * w; p++)
          residual &= fabsf(e[p] - fabsf(x[p] - y[p])) <= 1e-6f;
        if (!r)
          memcpy(prepared[s], x, sizeof prepared[s]), index[s] = s;
      }
      CHECK(residual, "%s: the residual is not |input - output| slice by slice", what);
      if (!r) {
        // The same slices through eval, from a cache: each output slice must score as eval scores it.
        CacheWriter cw;
        char cache[600];
        snprintf(data, sizeof data, "%s", path_in_dir("recon_data"));
        mkdir(data, 0777);
        snprintf(cache, sizeof cache, "%s/slices.bin", data);
        CHECK(cache_create(&cw, cache, S, S, err, sizeof err) == 0, "%s", err);
        cache_add_volume(&cw, prepared[0], index, n[0]);
        CHECK(cache_commit(&cw, (SplitSet[]){SET_TEST}, err, sizeof err) == 0, "%s", err);
        CHECK(RUN("eval", "--weights", weights, "--data", data, "--out", eval_out) == 0, "eval: %s", output());
        double rows[MAX_ROWS * COLS];
        CHECK(per_image(eval_out, rows) == n[0], "%s: eval rows", what);
        bool same = true;
        for (int s = 0; s < n[0]; s++) {
          double mse, dssim, psnr;
          vol_slice(&vo, PLANE_SAGITTAL, s, y, &h, &w);
          kl_metrics(1, S, S, y, prepared[s], &mse, &dssim, &psnr);
          same &= fabs(mse - rows[s * COLS + 3]) <= 1e-4 * rows[s * COLS + 3] + 1e-9;
          if (fabs(mse - rows[s * COLS + 3]) > 1e-4 * rows[s * COLS + 3] + 1e-9)
            fprintf(stderr, "%s: slice %d: mse %g, eval's %g\n", what, s, mse, rows[s * COLS + 3]);
        }
        CHECK(same, "%s: the output's slices are not the model's outputs for the input's slices", what);
      }
      vol_free(&vi), vol_free(&vo), vol_free(&vr);
      unlink(in), unlink(out), unlink(res);
    }
}

static void test_bad_input(const char *data, const char *weights) {
  char out[512], missing[512], nodata[512], flat[512], recon[512], junk[512]; // path_in_dir's results rotate
  snprintf(out, sizeof out, "%s", path_in_dir("bad_out"));
  snprintf(missing, sizeof missing, "%s", path_in_dir("missing.safetensors"));
  snprintf(nodata, sizeof nodata, "%s", path_in_dir("nodata"));
  snprintf(flat, sizeof flat, "%s", path_in_dir("flat.nii"));
  snprintf(recon, sizeof recon, "%s", path_in_dir("r.nii.gz"));
  snprintf(junk, sizeof junk, "%s", path_in_dir("junk.nii"));
  CHECK(RUN("eval", "--weights", missing, "--data", data, "--out", out) == 1 && strstr(output(), missing),
        "missing weights: %s", output());
  CHECK(RUN("eval", "--weights", weights, "--data", nodata, "--out", out) == 1 && strstr(output(), nodata),
        "missing data: %s", output());
  blob_data_set("small", 8, (SplitSet[]){SET_TEST}, 1, PER_VOLUME);
  CHECK(RUN("eval", "--weights", weights, "--data", path_in_dir("small"), "--out", out) == 1 &&
            strstr(output(), "holds 8x8 slices; this trainer takes 16x16"),
        "a cache of another size: %s", output());
  CHECK(RUN("eval", "--weights", weights, "--data", data, "--out", out, "--split", "all") == 2 &&
            strstr(output(), "--split must be test, val or train"),
        "bad split: %s", output());
  CHECK(RUN("eval", "--weights", weights, "--data", data) == 2, "eval without --out: %s", output());
  CHECK(RUN("eval", "--weights", weights, "--data", data, "--out", out, "--fast") == 2, "unknown option");
  CHECK(RUN("eval", "--help") == 0 && strstr(output(), "per_image.csv"), "eval --help: %s", output());
  CHECK(RUN("reconstruct", "--help") == 0 && strstr(output(), "cal_min 0"), "reconstruct --help: %s", output());

  int64_t dims[8] = {2, S, S, 1, 1, 1, 1, 1};
  nifti_image *nim = nifti_make_new_nim(dims, DT_FLOAT32, 1);
  nifti_set_filenames(nim, flat, 0, 1);
  nifti_image_write(nim);
  nifti_image_free(nim);
  CHECK(RUN("reconstruct", "--weights", weights, flat, recon) == 1 && strstr(output(), flat), "a 2D image: %s",
        output());
  spit(junk, "not a NIfTI file at all, just text that is longer than a header would need to be", 80);
  CHECK(RUN("reconstruct", "--weights", weights, junk, recon) == 1 && strstr(output(), junk), "junk: %s", output());
  CHECK(RUN("reconstruct", "--weights", missing, flat, recon) == 1, "missing weights: %s", output());
  CHECK(RUN("reconstruct", "--weights", weights, flat) == 2, "reconstruct without OUT: %s", output());
  CHECK(RUN("reconstruct", "--weights", weights, flat, path_in_dir("r.png")) == 2, "a bad OUT name: %s", output());
  CHECK(access(recon, F_OK) != 0, "a failed reconstruct leaves no file");
  remove_folder(path_in_dir("small"));
  rmdir(out);
}

// ---- figures -----------------------------------------------------------------------------------

static void test_figures(const char *data, const char *weights) {
  char out[512], path[700];
  snprintf(out, sizeof out, "%s", path_in_dir("figures"));
  CHECK(RUN("figures", "--weights", weights, "--data", data, "--out", out, "--count", "3") == 0 &&
            strstr(output(), "3 slice_I.png"),
        "figures: %s", output());
  snprintf(path, sizeof path, "%s/figures.png", out);
  CHECK(is_png(path), "%s", path);
  int panels = 0;
  for (int i = 0; i < 6 * PER_VOLUME; i++) {
    snprintf(path, sizeof path, "%s/slice_%d.png", out, i);
    panels += is_png(path);
  }
  CHECK(panels == 3, "%d slice panels, not 3", panels);
  CHECK(RUN("figures", "--weights", weights, "--data", data, "--out", out, "--slices", "0,5") == 0, "%s", output());
  snprintf(path, sizeof path, "%s/slice_5.png", out);
  CHECK(is_png(path), "--slices: %s", path);
  CHECK(RUN("figures", "--weights", weights, "--data", data, "--out", out, "--slices", "0,999") == 1 &&
            strstr(output(), "--slices"),
        "a slice out of range: %s", output());
  CHECK(RUN("figures", "--weights", weights, "--data", data, "--out", out, "--count", "0") == 2 &&
            strstr(output(), "--count must be"),
        "--count 0: %s", output());
  CHECK(RUN("figures", "--data", data, "--out", out) == 2 && strstr(output(), "needs --weights"), "no weights: %s",
        output());
  CHECK(RUN("figures", "--help") == 0 && strstr(output(), "|reconstruction - clean|"), "figures --help: %s",
        output());
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_evaluate TRAINER\n");
    return 2;
  }
  trainer = argv[1];
  make_dir("caec_eval");
  // 3 training volumes (21 slices: 5 steps), 7 validation and 14 test slices (the last batch padded).
  blob_data_set("data", S, (SplitSet[]){SET_TRAIN, SET_TEST, SET_TRAIN, SET_VAL, SET_TRAIN, SET_TEST}, 6,
                PER_VOLUME);
  char data[512], run_dir[512], weights[600];
  snprintf(data, sizeof data, "%s", path_in_dir("data"));
  snprintf(run_dir, sizeof run_dir, "%s", path_in_dir("run"));
  snprintf(weights, sizeof weights, "%s/last.safetensors", run_dir);
  CHECK(RUN("train", "--data", data, "--out", run_dir, "--epochs", "3", "--seed", "3", "--threads", "1") == 0,
        "train: %s", output());
  test_eval(data, run_dir, path_in_dir("eval"));
  test_reconstruct(weights);
  test_bad_input(data, weights);
  test_figures(data, weights);
  static const char *const folders[] = {"data", "run", "eval", "recon_data", "recon_eval", "figures"};
  for (size_t i = 0; i < sizeof folders / sizeof *folders; i++)
    remove_folder(path_in_dir(folders[i]));
  return finish();
}
