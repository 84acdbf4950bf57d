// evaluate.c: the `eval` and `reconstruct` commands, a trained model's
// inference (batch norm on the running statistics) on a data set's split, with
// the seed's per-image metrics, and on a whole NIfTI volume, written back in
// the input's voxel grid so that viewers overlay the two.
#include "atomic.h"
#include "kern.h"
#include "loader.h"
#include "resize.h"
#include "trainer.h"
#include "volume.h"

#include <errno.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum { AHEAD = 4 };
// The plane the slice cache holds (caedata's), so the one the models learnt.
static const Plane MODEL_PLANE = PLANE_SAGITTAL;

// Opens path for an atomic write; false after a message.
static bool create(const CaecModel *m, AtomicFile *a, const char *path) {
  char err[CAEC_PATH_BYTES + 256];
  if (atomic_open(a, path, err, sizeof err) == 0)
    return true;
  caec_fail(m, "%s", err);
  return false;
}

// Puts the file in place; write_error: the errno of a failed write, or 0.
static bool commit(const CaecModel *m, AtomicFile *a, int write_error) {
  char err[2 * CAEC_PATH_BYTES + 256];
  if (!write_error && ferror(a->f))
    write_error = errno ? errno : EIO;
  if (atomic_commit(a, write_error, err, sizeof err) == 0)
    return true;
  caec_fail(m, "%s", err);
  return false;
}

// Removes the temporary file of an atomic write that is not to be committed.
static void discard(AtomicFile *a) {
  char err[64];
  atomic_commit(a, ECANCELED, err, sizeof err);
}

// ---- eval ------------------------------------------------------------------------------

typedef struct EvalOptions {
  CaecStepArgs step; // --weights, --out (DIR), --seed
  const char *data;
  SplitSet set;
  bool corrupt;
} EvalOptions;

static void eval_usage(const CaecModel *m) {
  printf("usage: %s eval --weights W.safetensors --data DATASET --out DIR [--split test|val|train]\n"
         "            [--corrupt] [--seed S]\n\n"
         "Runs model '%s' in inference (batch norm on the running statistics) on a split of\n"
         "DATASET/slices.bin (caedata prepare; %dx%d slices), default test, in the cache's order and\n"
         "batches of %d (the last one zero-padded; only its real slices count), and scores each output\n"
         "against the clean slice as the seed did: MSE, DSSIM and PSNR (max 1.0) per image, then their\n"
         "mean and population sd. The inputs are the clean slices, or with --corrupt the seed's\n"
         "corruption at this size, drawn at (seed, epoch 0, cache index) as a training run's first\n"
         "epoch would (--seed, default %llu, the train section's).\n\n"
         "DIR/per_image.csv  index,volume,slice,mse,dssim,psnr: per slice, index in the cache, volume\n"
         "                   in the manifest and slice in the volume's plane\n"
         "DIR/summary.csv    split,corrupt,seed,n,mse_mean,mse_sd,dssim_mean,dssim_sd,psnr_mean,psnr_sd\n"
         "Both are written atomically; the summary is printed too.\n"
         "Exit status: 0 done, 1 error, 2 bad usage.\n",
         m->name, m->name, m->height, m->width, m->batch, (unsigned long long)m->defaults.seed);
}

// -1: go on; otherwise the exit status.
static int eval_options(const CaecModel *m, int argc, char **argv, EvalOptions *o) {
  static const char *const step_options[] = {"--weights", "--out", "--seed", NULL};
  *o = (EvalOptions){.step = CAEC_STEP_ARGS_INIT, .set = SET_TEST};
  const CaecOption options[] = {
      {"--corrupt", CAEC_OPT_FLAG, &o->corrupt, 0, 0, NULL, NULL},
      {"--data", CAEC_OPT_TEXT, &o->data, 0, 0, NULL, NULL},
      {"--split", CAEC_OPT_SPLIT, &o->set, 0, 0, NULL, NULL},
  };
  const CaecCommandLine c = {.command = "eval", .step = step_options, .options = options, .noptions = 3,
                             .usage = eval_usage, .required = {&o->step.weights, &o->data, &o->step.out},
                             .needs = "--weights W, --data DATASET and --out DIR", .model_seed = true};
  return caec_parse_command(m, &c, argc, argv, &o->step);
}

// The split's slices through the model: per image (in the cache's order) the metrics, into metrics[3][count].
static int score(const CaecModel *m, const EvalOptions *o, const SliceCache *c, CaecState *s, double *metrics[3]) {
  size_t images = (size_t)m->batch * (size_t)m->height * (size_t)m->width;
  AugmentParams aug = augment_for_size(m->width);
  aug.enabled = o->corrupt;
  LoaderConfig lc = {c, o->set, m->batch, o->step.seed, false, aug, caec_loader_workers(0), AHEAD};
  Loader *l = loader_new(&lc);
  float *x, *t, *y = malloc(images * sizeof(float));
  int rc = l && y ? 0 : caec_fail(m, "%s", "out of memory");
  if (!rc) {
    loader_start(l, 0, 0);
    int64_t done = 0;
    for (int n; (n = loader_next(l, &x, &t)) > 0; done += n) {
      caec_forward_padded(m, s, n, x, y);
      kl_metrics(n, m->height, m->width, y, t, metrics[0] + done, metrics[1] + done, metrics[2] + done);
    }
  }
  loader_free(l);
  free(y);
  return rc;
}

// DIR/NAME's path into path; false after a message when it is too long.
static bool path_in(const CaecModel *m, const char *dir, const char *name, char *path) {
  if (snprintf(path, CAEC_PATH_BYTES, "%s/%s", dir, name) < CAEC_PATH_BYTES)
    return true;
  caec_fail(m, "--out is too long: %s", dir);
  return false;
}

static int write_results(const CaecModel *m, const EvalOptions *o, const SliceCache *c, double *metrics[3]) {
  int64_t count = cache_count(c, o->set);
  int64_t *order = malloc(sizeof(int64_t) * (size_t)count);
  if (!order)
    return caec_fail(m, "%s", "out of memory");
  loader_order(c, o->set, o->step.seed, 0, false, order);
  double mean[CAEC_NMETRICS], sd[CAEC_NMETRICS];
  for (int k = 0; k < CAEC_NMETRICS; k++) {
    double sum = 0, squares = 0;
    for (int64_t i = 0; i < count; i++)
      sum += metrics[k][i];
    mean[k] = sum / (double)count;
    for (int64_t i = 0; i < count; i++)
      squares += (metrics[k][i] - mean[k]) * (metrics[k][i] - mean[k]);
    sd[k] = sqrt(squares / (double)count);
  }
  char path[CAEC_PATH_BYTES];
  AtomicFile a;
  bool ok = path_in(m, o->step.out, "per_image.csv", path) && create(m, &a, path);
  if (ok) {
    fputs(CAEC_PER_IMAGE_HEADER "\n", a.f);
    for (int64_t i = 0; i < count; i++)
      fprintf(a.f, "%lld,%d,%d,%.10g,%.10g,%.10g\n", (long long)order[i], cache_volume_of(c, order[i]),
              cache_slice_of(c, order[i]), metrics[0][i], metrics[1][i], metrics[2][i]);
    ok = commit(m, &a, 0);
  }
  ok = ok && path_in(m, o->step.out, "summary.csv", path) && create(m, &a, path);
  if (ok) {
    fprintf(a.f, "split,corrupt,seed,n,mse_mean,mse_sd,dssim_mean,dssim_sd,psnr_mean,psnr_sd\n%s,%d,%llu,%lld",
            split_set_name(o->set), o->corrupt, (unsigned long long)o->step.seed, (long long)count);
    for (int k = 0; k < CAEC_NMETRICS; k++)
      fprintf(a.f, ",%.10g,%.10g", mean[k], sd[k]);
    fputc('\n', a.f);
    ok = commit(m, &a, 0);
  }
  if (ok) {
    printf("%s: %s: %lld %s slices, %s inputs", m->name, o->step.weights, (long long)count, split_set_name(o->set),
           o->corrupt ? "corrupted" : "clean");
    if (o->corrupt)
      printf(" (seed %llu)", (unsigned long long)o->step.seed);
    for (int k = 0; k < CAEC_NMETRICS; k++)
      printf("%s %s %.6g (sd %.6g)", k ? "," : ":", caec_metric_name((CaecMetric)k), mean[k], sd[k]);
    printf("\n%s: wrote %s/per_image.csv and %s/summary.csv\n", m->name, o->step.out, o->step.out);
  }
  free(order);
  return ok ? 0 : 1;
}

int caec_eval_main(const CaecModel *m, int argc, char **argv) {
  EvalOptions o;
  int rc = eval_options(m, argc, argv, &o);
  if (rc >= 0)
    return rc;
  CaecState s;
  if (!caec_state_new(m, &s))
    return caec_fail(m, "%s", "out of memory for the arenas");
  SliceCache c = {0};
  char path[CAEC_PATH_BYTES];
  rc = caec_read_weights(m, o.step.weights, &s);
  rc = rc ? rc : caec_open_cache(m, o.data, &c, path, sizeof path);
  int64_t count = rc ? 0 : cache_count(&c, o.set);
  if (!rc && count < 1) {
    fprintf(stderr, "%s: error: %s: no %s slices\n", m->name, path, split_set_name(o.set));
    rc = 1;
  }
  rc = rc ? rc : caec_make_folder(m, o.step.out);
  double *metrics[CAEC_NMETRICS] = {NULL};
  for (int k = 0; !rc && k < CAEC_NMETRICS; k++)
    if (!(metrics[k] = malloc(sizeof(double) * (size_t)count)))
      rc = caec_fail(m, "%s", "out of memory");
  rc = rc ? rc : score(m, &o, &c, &s, metrics);
  rc = rc ? rc : write_results(m, &o, &c, metrics);
  for (int k = 0; k < CAEC_NMETRICS; k++)
    free(metrics[k]);
  cache_close(&c);
  caec_state_free(m, &s);
  return rc;
}

// ---- reconstruct ---------------------------------------------------------------------------

typedef struct ReconOptions {
  CaecStepArgs step; // --weights
  const char *in, *out, *residual;
} ReconOptions;

static void recon_usage(const CaecModel *m) {
  printf("usage: %s reconstruct --weights W.safetensors IN.nii[.gz] OUT.nii[.gz] [--residual R.nii[.gz]]\n\n"
         "Reconstructs a whole volume with model '%s': each sagittal slice of IN (the plane the\n"
         "models are trained on), cut canonically oriented and prepared as the slice cache's are\n"
         "(min-max to [0, 1], resized to %dx%d, min-max), goes through inference in batches of %d;\n"
         "the output is resized back to the slice's size (bilinear) and put back where the slice\n"
         "came from. OUT is float32 on IN's voxel grid: IN's dims, voxel sizes, qform and sform, so\n"
         "that any NIfTI viewer overlays it on IN. Its values are in the [0, 1] scale of the\n"
         "min-max normalised slices, not IN's intensities (cal_min 0, cal_max 1).\n"
         "--residual R: |prepared input - reconstruction| per voxel, in the same grid and scale; the\n"
         "prepared input is the slice min-max normalised at its own size.\n"
         "A name ending in .gz is written gzipped. The files are written atomically.\n"
         "Exit status: 0 done, 1 error, 2 bad usage.\n",
         m->name, m->name, m->height, m->width, m->batch);
}

// Whether path names a single-file NIfTI: .nii or .nii.gz.
static bool nii_name(const char *path) {
  size_t n = strlen(path);
  return (n > 4 && !strcmp(path + n - 4, ".nii")) || (n > 7 && !strcmp(path + n - 7, ".nii.gz"));
}

static int recon_options(const CaecModel *m, int argc, char **argv, ReconOptions *o) {
  static const char *const step_options[] = {"--weights", NULL};
  *o = (ReconOptions){.step = CAEC_STEP_ARGS_INIT};
  const CaecOption options[] = {{"--residual", CAEC_OPT_TEXT, &o->residual, 0, 0, NULL, NULL}};
  const CaecCommandLine c = {.command = "reconstruct", .step = step_options, .options = options, .noptions = 1,
                             .operands = {&o->in, &o->out}, .usage = recon_usage,
                             .required = {&o->step.weights, &o->out}, .needs = "--weights W, IN.nii[.gz] and OUT.nii[.gz]"};
  int rc = caec_parse_command(m, &c, argc, argv, &o->step);
  if (rc >= 0)
    return rc;
  if (!nii_name(o->out) || (o->residual && !nii_name(o->residual)))
    return caec_usage_error(m->name, "'%s' is not a .nii or .nii.gz name",
                            nii_name(o->out) ? o->residual : o->out);
  return -1;
}

// data (on the grid of the volume read into nim's header) as a float32 NIfTI file with that header's
// geometry: its dims, voxel sizes, units, qform and sform; the same NIfTI version (NIfTI-2 keeps its
// double-precision matrices), always a single file: written to a (opened by create for path) and
// committed, or left uncommitted when the header cannot be made.
static bool write_volume(const CaecModel *m, nifti_image *nim, AtomicFile *a, const char *path, const float *data) {
  nim->datatype = DT_FLOAT32, nim->nbyper = 4;
  nim->scl_slope = 1, nim->scl_inter = 0;
  nim->cal_min = 0, nim->cal_max = 1;
  nim->ndim = nim->dim[0] = 3; // a 4D input holds one volume (vol_read's rule)
  for (int d = 4; d < 8; d++)
    nim->dim[d] = 1;
  nim->nt = nim->nu = nim->nv = nim->nw = 1;
  nim->nvox = (int64_t)nim->nx * nim->ny * nim->nz;
  snprintf(nim->descrip, sizeof nim->descrip, "caec reconstruct, model %s", m->name);
  bool v2 = nim->nifti_type == NIFTI_FTYPE_NIFTI2_1 || nim->nifti_type == NIFTI_FTYPE_NIFTI2_2;
  nim->nifti_type = v2 ? NIFTI_FTYPE_NIFTI2_1 : NIFTI_FTYPE_NIFTI1_1;
  nifti_set_iname_offset(nim, 1);
  union {
    nifti_1_header n1;
    nifti_2_header n2;
  } h;
  if (v2 ? nifti_convert_nim2n2hdr(nim, &h.n2) : nifti_convert_nim2n1hdr(nim, &h.n1)) {
    caec_fail(m, "%s: cannot make the NIfTI header", path);
    return false;
  }
  static const char no_extension[4];
  size_t hsize = v2 ? sizeof h.n2 : sizeof h.n1, bytes = (size_t)nim->nvox * sizeof(float);
  // zlib writes through its own descriptor of the temporary file ("T": uncompressed), which the commit
  // then syncs and renames; the FILE of a has nothing buffered.
  size_t n = strlen(path);
  int fd = fflush(a->f) ? -1 : dup(fileno(a->f));
  gzFile z = fd < 0 ? NULL : gzdopen(fd, strcmp(path + n - 3, ".gz") ? "wbT" : "wb6");
  if (!z && fd >= 0)
    close(fd);
  errno = 0;
  bool ok = z && gzwrite(z, &h, (unsigned)hsize) == (int)hsize &&
            gzwrite(z, no_extension, sizeof no_extension) == (int)sizeof no_extension &&
            gzwrite(z, data, (unsigned)bytes) == (int)bytes;
  ok = (z ? gzclose(z) == Z_OK : false) && ok;
  return commit(m, a, ok ? 0 : errno ? errno : EIO);
}

// Slices [first, first + n) of v through the model, into out (and residual when not NULL) on v's grid.
static int reconstruct_batch(const CaecModel *m, CaecState *s, const Volume *v, int first, int n, Volume *out,
                             Volume *residual, float *x, float *y, float *slice, float *back) {
  size_t pixels = (size_t)m->height * (size_t)m->width;
  int h, w;
  for (int i = 0; i < n; i++) {
    vol_slice(v, MODEL_PLANE, first + i, slice, &h, &w);
    if (slice_prepare(slice, h, w, x + (size_t)i * pixels, m->height, m->width))
      return caec_fail(m, "%s", "out of memory");
  }
  caec_forward_padded(m, s, n, x, y);
  for (int i = 0; i < n; i++) {
    if (resize_bilinear(y + (size_t)i * pixels, m->height, m->width, back, h, w))
      return caec_fail(m, "%s", "out of memory");
    vol_put_slice(out, MODEL_PLANE, first + i, back);
    if (residual) {
      // The prepared input at the slice's own size: its first min-max (slice_prepare's first step).
      vol_slice(v, MODEL_PLANE, first + i, slice, &h, &w);
      minmax01(slice, (size_t)h * (size_t)w);
      for (size_t p = 0; p < (size_t)h * (size_t)w; p++)
        back[p] = fabsf(slice[p] - back[p]);
      vol_put_slice(residual, MODEL_PLANE, first + i, back);
    }
  }
  return 0;
}

int caec_reconstruct_main(const CaecModel *m, int argc, char **argv) {
  ReconOptions o;
  int rc = recon_options(m, argc, argv, &o);
  if (rc >= 0)
    return rc;
  Volume v;
  char err[CAEC_PATH_BYTES + 256];
  if (vol_read(o.in, &v, err, sizeof err))
    return caec_fail(m, "%s", err);
  // The header again, through libnifti, for the geometry to copy (vol_read has checked it).
  nifti_image *nim = nifti_image_read(o.in, 0);
  CaecState s;
  bool state = caec_state_new(m, &s);
  size_t nvox = (size_t)v.dim[0] * (size_t)v.dim[1] * (size_t)v.dim[2], images = (size_t)m->batch * m->height * m->width;
  int slices = vol_slices(&v, MODEL_PLANE);
  size_t area = nvox / (size_t)slices;
  Volume out = v, residual = v;
  out.data = calloc(nvox, sizeof(float));
  residual.data = o.residual ? calloc(nvox, sizeof(float)) : NULL;
  float *x = malloc(images * sizeof(float)), *y = malloc(images * sizeof(float));
  float *slice = malloc(area * sizeof(float)), *back = malloc(area * sizeof(float));
  if (!nim)
    rc = caec_fail(m, "%s: libnifti cannot read the header", o.in);
  else if (!state || !out.data || (o.residual && !residual.data) || !x || !y || !slice || !back)
    rc = caec_fail(m, "%s", "out of memory");
  else
    rc = caec_read_weights(m, o.step.weights, &s);
  for (int first = 0; !rc && first < slices; first += m->batch)
    rc = reconstruct_batch(m, &s, &v, first, slices - first < m->batch ? slices - first : m->batch, &out,
                           o.residual ? &residual : NULL, x, y, slice, back);
  // Both files are opened before either is written, so that an OUT or R that cannot be written leaves
  // neither in place.
  AtomicFile files[2] = {{0}, {0}};
  const char *paths[2] = {o.out, o.residual};
  const float *volumes[2] = {out.data, residual.data};
  int nfiles = o.residual ? 2 : 1;
  for (int k = 0; !rc && k < nfiles; k++)
    rc = !create(m, &files[k], paths[k]);
  for (int k = 0; !rc && k < nfiles; k++)
    rc = !write_volume(m, nim, &files[k], paths[k], volumes[k]);
  for (int k = 0; k < nfiles; k++)
    if (files[k].f) // not committed: after an error
      discard(&files[k]);
  if (!rc)
    printf("%s: %s: %d sagittal slices of %dx%d -> %s%s%s\n", m->name, o.in, slices, v.dim[v.axis_of[2]],
           v.dim[v.axis_of[1]], o.out, o.residual ? ", residual " : "", o.residual ? o.residual : "");
  if (state)
    caec_state_free(m, &s);
  if (nim)
    nifti_image_free(nim);
  free(out.data), free(residual.data), free(x), free(y), free(slice), free(back);
  vol_free(&v);
  return rc;
}
