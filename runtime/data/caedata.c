// caedata.c: the data pipeline's command line. `prepare` turns a folder of
// NIfTI volumes into the slice cache trainers read (cache.h), `inspect` shows
// how one volume would be cut, `preview` draws clean and corrupted training
// slices from a cache, `synth` makes an IXI-like cohort from one real scan.
//
// Exit status: 0 on success, 1 when the work fails (a message names the file
// and the problem), 2 for a command line that does not parse.
#include "augment.h"
#include "brainmask.h"
#include "cache.h"
#include "errors.h"
#include "plot.h"
#include "resize.h"
#include "rng.h"
#include "split.h"
#include "synth.h"
#include "volume.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define CAEDATA_VERSION "0.1.0"

// The files of a data set, in the --out folder.
#define CACHE_FILE "slices.bin"
#define MANIFEST_FILE "manifest.tsv"
#define SPLIT_FILE "split.tsv"
// The files of a synthetic cohort besides its volumes, in synth's --out folder.
#define SYNTH_DEMOGRAPHICS "demographics.csv"
#define SYNTH_README "README.txt"
#define DEFAULT_TEMPLATE "/usr/share/mricron/templates/ch2.nii.gz"

// Volumes without an IXI ID get split IDs from here up, beyond any IXI ID, so
// that they match no demographics row and go to training.
enum { NO_SUBJECT_ID = 1000000 };

typedef enum { SELECT_BRAIN, SELECT_NONZERO, SELECT_MEAN } Select;
static const char *const select_names[] = {"brain", "nonzero", "mean"};
static const char *const plane_names[] = {"sagittal", "coronal", "axial", "auto"};

// A clock's seconds: CLOCK_MONOTONIC's for wall time; CLOCK_PROCESS_CPUTIME_ID's (all the threads) or
// CLOCK_THREAD_CPUTIME_ID's for what the work costs, whatever else the machine runs.
static double clock_seconds(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double seconds(void) { return clock_seconds(CLOCK_MONOTONIC); }

// ---- the command line ----------------------------------------------------------------

static const char usage_main[] =
    "usage: caedata COMMAND [OPTIONS]\n"
    "\n"
    "Turns a folder of T1 brain MRI volumes (NIfTI) into the slice cache that caec's trainers read.\n"
    "\n"
    "commands:\n"
    "  prepare   read every volume of a folder, select and preprocess its slices, split the volumes\n"
    "            into train/val/test and write the cache with its manifest\n"
    "  inspect   show a volume's geometry, orientation and the slices each selection keeps\n"
    "  preview   draw clean and corrupted training slices of a cache as a PNG\n"
    "  synth     make an IXI-like cohort of T1 volumes, with demographics, from one real scan (Colin27)\n"
    "\n"
    "caedata COMMAND --help describes a command; caedata --version prints the version.\n";

static const char usage_prepare[] =
    "usage: caedata prepare --images DIR --out DATASET [OPTIONS]\n"
    "\n"
    "Reads every .nii and .nii.gz file of DIR (in name order; IXI names such as IXI002-Guys-0828-T1.nii.gz\n"
    "give the subject ID), keeps the relevant slices of each, min-max normalises and resizes them, splits\n"
    "the volumes into train/val/test and writes DATASET/" CACHE_FILE " (the slices), DATASET/" MANIFEST_FILE "\n"
    "(volumes, sets, kept slices, settings) and DATASET/" SPLIT_FILE " (the strata). Volumes that cannot\n"
    "be read are skipped with a message and counted.\n"
    "\n"
    "  --images DIR          the volumes\n"
    "  --out DATASET         the data set's folder (made when missing)\n"
    "  --demographics FILE   IXI's demographics (CSV or TSV) to stratify the split by age group, sex and\n"
    "                        ethnicity; volumes without them go to training\n"
    "  --size N              slices of N x N pixels (default 128)\n"
    "  --select METHOD       brain: more than 3000 brain pixels per 256x256 (the seed's rule, on a brain\n"
    "                        mask; the default); nonzero, mean: the count or the mean of the nonzero\n"
    "                        pixels at least the volume's first quartile\n"
    "  --plane PLANE         sagittal (default), coronal, axial, or auto (the finest in-plane resolution)\n"
    "  --seed S              the split's seed (default 1)\n"
    "  --test F              the fraction of volumes for testing (default 0.08)\n"
    "  --val F               the fraction of the rest for validation (default 0.15)\n"
    "  --threads T           volumes read at once (default: the number of processors); the output is\n"
    "                        the same for any number\n";

static const char usage_inspect[] =
    "usage: caedata inspect [--plane PLANE] FILE.nii[.gz]\n"
    "\n"
    "Prints the volume's dimensions, voxel size, datatype and orientation (the anatomical direction of\n"
    "each voxel axis), the plane it would be cut in, and for each selection method (brain, nonzero,\n"
    "mean) how many slices it keeps and which.\n"
    "\n"
    "  --plane PLANE   sagittal (default), coronal, axial or auto\n";

static const char usage_preview[] =
    "usage: caedata preview --data DATASET --out FILE.png [OPTIONS]\n"
    "\n"
    "Draws training slices of the cache in DATASET, each as a pair: the clean slice and the slice\n"
    "corrupted as the seed's denoising training does it (dropout, noise, cutout, blur).\n"
    "\n"
    "  --data DATASET   the folder caedata prepare wrote\n"
    "  --out FILE.png   the image\n"
    "  --count N        pairs (default 8, at most 64)\n"
    "  --seed S         which slices and corruptions (default 1)\n"
    "  --epoch E        the epoch whose corruptions to draw (default 0)\n"
    "The corruption's options, as the trainers' train has them (the optional steps off by default):\n";

static const char usage_synth[] =
    "usage: caedata synth --subjects N --out DIR [OPTIONS]\n"
    "\n"
    "Makes a synthetic IXI-like cohort from one real T1 scan, for where IXI cannot be downloaded. Each\n"
    "subject is the scan under its own random anatomy and scanner: a smaller size (the scan is Colin27, in\n"
    "MNI space), a small rotation and shift, a smooth displacement field of a few mm, a contrast (gamma)\n"
    "change, a smooth bias field of +-10 to 16% and Rician noise of 1 to 4% of the white matter, resampled\n"
    "onto IXI's T1 grid (256 x 256 x 150 voxels of 0.9375 x 0.9375 x 1.2 mm, stored as IXI stores it: int16,\n"
    "voxel axes towards P, S and R). Writes DIR/IXI900-Guys-0123-T1.nii.gz and so on (subject IDs from 900\n"
    "up, beyond IXI's; each header's description names caec synth), DIR/" SYNTH_DEMOGRAPHICS " with IXI's columns\n"
    "and a SYNTHETIC one (for caedata prepare --demographics), and DIR/" SYNTH_README ", which says what they\n"
    "are and lists each subject's parameters. Subject k is the same bytes for the same seed, whatever the\n"
    "number of subjects or threads.\n"
    "\n"
    "  --subjects N      how many subjects (1 to 9000)\n"
    "  --out DIR         the folder (made when missing); files of the same names are replaced\n"
    "  --template FILE   the scan (default " DEFAULT_TEMPLATE ", Colin27 from\n"
    "                    Debian's mricron-data)\n"
    "  --seed S          which cohort (default 1)\n"
    "  --threads T       threads (default: the number of processors)\n";

typedef enum { OPT_TEXT, OPT_INT, OPT_REAL, OPT_U64, OPT_CHOICE } OptKind;

// One --name VALUE option; ints are checked against [lo, hi], reals against [lo, hi).
typedef struct Option {
  const char *name;
  OptKind kind;
  void *value;
  double lo, hi;
  const char *const *choices; // OPT_CHOICE: the value is the index of the choice
  int nchoices;
} Option;

static int usage_error(const char *command, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "caedata %s: ", command);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n(caedata %s --help describes the options)\n", command);
  return 2;
}

static int parse_value(const char *command, const Option *o, const char *s) {
  char *end;
  errno = 0;
  switch (o->kind) {
  case OPT_TEXT:
    *(const char **)o->value = s;
    return 0;
  case OPT_INT: {
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < o->lo || x > o->hi)
      return usage_error(command, "--%s wants a whole number from %g to %g, not '%s'", o->name, o->lo, o->hi, s);
    *(int *)o->value = (int)x;
    return 0;
  }
  case OPT_REAL: {
    double x = strtod(s, &end);
    if (errno || end == s || *end || !(x >= o->lo && x < o->hi))
      return usage_error(command, "--%s wants a number in [%g, %g), not '%s'", o->name, o->lo, o->hi, s);
    *(double *)o->value = x;
    return 0;
  }
  case OPT_U64: {
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
      return usage_error(command, "--%s wants a whole number >= 0, not '%s'", o->name, s);
    *(uint64_t *)o->value = x;
    return 0;
  }
  case OPT_CHOICE:
    for (int c = 0; c < o->nchoices; c++)
      if (!strcmp(s, o->choices[c])) {
        *(int *)o->value = c;
        return 0;
      }
    return usage_error(command, "--%s '%s' is not one of the choices (caedata %s --help lists them)", o->name, s,
                       command);
  }
  return 2;
}

// Parses argv (after the command's name) into opts; at most one operand goes to *operand (when that is not
// NULL). Returns 0, 1 after printing the help for --help, or 2 after a usage error.
static int parse(const char *command, const char *help, int argc, char **argv, const Option *opts, int nopts,
                 const char **operand, AugmentParams *aug) {
  for (int a = 0; a < argc; a++) {
    const char *arg = argv[a];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      fputs(help, stdout);
      if (aug)
        fputs(AUGMENT_OPTIONS_HELP, stdout);
      return 1;
    }
    if (strncmp(arg, "--", 2)) {
      if (!operand || *operand)
        return usage_error(command, "unexpected argument '%s'", arg);
      *operand = arg;
      continue;
    }
    const Option *o = NULL;
    for (int i = 0; i < nopts && !o; i++)
      if (!strcmp(arg + 2, opts[i].name))
        o = &opts[i];
    char err[256];
    int taken = !o && aug ? augment_set(aug, arg + 2, a + 1 < argc ? argv[a + 1] : NULL, err, sizeof err) : 1;
    if (taken < 0)
      return usage_error(command, "%s", err);
    if (taken == 0) {
      a++;
      continue;
    }
    if (!o)
      return usage_error(command, "unknown option %s", arg);
    if (a + 1 == argc)
      return usage_error(command, "%s needs a value", arg);
    int rc = parse_value(command, o, argv[++a]);
    if (rc)
      return rc;
  }
  return 0;
}

// ---- slice selection -------------------------------------------------------------------

// The voxel index, along the axis normal to plane p, of canonical slice s. volume.h puts slice 0 at the
// subject's right (sagittal), front (coronal) or bottom (axial) end; flip_of says which end voxel 0 is at.
static int voxel_index(const Volume *v, Plane p, int s) {
  p = vol_plane(v, p);
  int n = v->dim[v->axis_of[p]];
  int zero_first = p == PLANE_AXIAL ? !v->flip_of[p] : v->flip_of[p];
  return zero_first ? s : n - 1 - s;
}

// keep[s] for each of the plane's vol_slices(v, p) slices, canonical order; returns how many are kept, or -1
// with the reason in err when no brain is found.
static int select_slices(const Volume *v, Plane p, Select method, unsigned char *keep, char *err, size_t errlen) {
  int axis = v->axis_of[vol_plane(v, p)], n = v->dim[axis];
  double *stat = err_calloc((size_t)n, sizeof *stat), *mean = err_calloc((size_t)n, sizeof *mean);
  double *canonical = err_calloc((size_t)n, sizeof *canonical);
  int kept = -1;
  if (method == SELECT_BRAIN) {
    size_t voxels = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    unsigned char *mask = err_calloc(voxels, 1);
    if (!brain_mask(v->data, v->dim, v->voxel, mask, err, errlen)) {
      slice_mask_count(mask, v->dim, axis, stat);
      double pixels = (double)voxels / n;
      kept = 0;
      for (int s = 0; s < n; s++)
        kept += keep[s] = (unsigned char)slice_has_brain(stat[voxel_index(v, p, s)], pixels);
    }
    free(mask);
  } else {
    slice_nonzero(v->data, v->dim, axis, stat, mean);
    const double *value = method == SELECT_NONZERO ? stat : mean;
    for (int s = 0; s < n; s++)
      canonical[s] = value[voxel_index(v, p, s)];
    kept = (int)slice_keep(canonical, (size_t)n, slice_cutoff(canonical, (size_t)n, SLICE_CUT_Q1), keep);
  }
  free(stat);
  free(mean);
  free(canonical);
  return kept;
}

// The kept slices as ranges, "16-117,120"; malloc'ed.
static char *ranges(const unsigned char *keep, int n) {
  char *s = err_calloc((size_t)n * 24 + 8, 1), *at = s;
  for (int i = 0; i < n; i++) {
    if (!keep[i])
      continue;
    int j = i;
    while (j + 1 < n && keep[j + 1])
      j++;
    at += sprintf(at, j > i ? "%s%d-%d" : "%s%d", at == s ? "" : ",", i, j);
    i = j;
  }
  if (at == s)
    strcpy(s, "none");
  return s;
}

// ---- prepare ---------------------------------------------------------------------------

typedef struct PrepareOptions {
  const char *images, *out, *demographics;
  int size, select, plane, threads;
  uint64_t seed;
  double test, val;
} PrepareOptions;

// One volume's outcome.
typedef struct Prepared {
  char *name;          // the file's name in the folder
  int id;              // the IXI subject ID, or -1
  int ok;
  char why[512];       // when not ok
  Plane plane;
  int slices, kept;    // in the plane, and kept
  int *index;          // the kept slices' indices
  float *pixels;       // kept x size x size
  char *ranges;
  double seconds, cpu;  // wall and CPU time of its reading and preprocessing, on one thread
} Prepared;

static int is_nifti_name(const char *name) {
  size_t n = strlen(name);
  return (n > 4 && !strcmp(name + n - 4, ".nii")) || (n > 7 && !strcmp(name + n - 7, ".nii.gz"));
}

// Reads, selects and preprocesses one volume into r.
static void prepare_volume(const PrepareOptions *o, Prepared *r) {
  double start = seconds(), start_cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
  size_t len = strlen(o->images) + strlen(r->name) + 2;
  char *path = err_calloc(len, 1);
  snprintf(path, len, "%s/%s", o->images, r->name);
  Volume v;
  if (vol_read(path, &v, r->why, sizeof r->why)) {
    free(path);
    return;
  }
  r->plane = vol_plane(&v, (Plane)o->plane);
  r->slices = vol_slices(&v, r->plane);
  unsigned char *keep = err_calloc((size_t)r->slices, 1);
  char err[256];
  r->kept = select_slices(&v, r->plane, (Select)o->select, keep, err, sizeof err);
  if (r->kept < 0) {
    snprintf(r->why, sizeof r->why, "%s: %s", path, err);
  } else {
    size_t most = (size_t)v.dim[0] * v.dim[1] * v.dim[2] / (size_t)r->slices, pixels = (size_t)o->size * o->size;
    float *slice = err_calloc(most, sizeof *slice);
    r->index = err_calloc((size_t)r->kept, sizeof *r->index);
    r->pixels = err_calloc((size_t)r->kept * pixels, sizeof *r->pixels);
    r->ok = 1;
    for (int s = 0, k = 0; s < r->slices; s++) {
      if (!keep[s])
        continue;
      int h, w;
      vol_slice(&v, r->plane, s, slice, &h, &w);
      if (slice_prepare(slice, h, w, r->pixels + k * pixels, o->size, o->size)) {
        fputs("caedata: out of memory\n", stderr);
        exit(1);
      }
      r->index[k++] = s;
    }
    r->ranges = ranges(keep, r->slices);
    free(slice);
  }
  free(keep);
  free(path);
  vol_free(&v);
  r->seconds = seconds() - start;
  r->cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - start_cpu;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const Prepared *)a)->name, ((const Prepared *)b)->name);
}

// The folder's NIfTI files in name order; others are counted in *other with a message. NULL with a message
// when the folder cannot be read.
static Prepared *list_volumes(const char *folder, int *n, int *other) {
  DIR *d = opendir(folder);
  if (!d) {
    fprintf(stderr, "caedata: %s: cannot open the folder: %s\n", folder, strerror(errno));
    return NULL;
  }
  int cap = 64;
  Prepared *v = err_calloc((size_t)cap, sizeof *v);
  *n = *other = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') // ".", ".." and hidden files
      continue;
    size_t len = strlen(folder) + strlen(e->d_name) + 2;
    char *path = err_calloc(len, 1);
    snprintf(path, len, "%s/%s", folder, e->d_name);
    struct stat st;
    int regular = !stat(path, &st) && S_ISREG(st.st_mode);
    free(path);
    if (!regular)
      continue;
    if (!is_nifti_name(e->d_name)) {
      fprintf(stderr, "caedata: %s/%s: skipped: not a .nii or .nii.gz file\n", folder, e->d_name);
      ++*other;
      continue;
    }
    if (*n == cap) {
      Prepared *more = realloc(v, (size_t)(cap *= 2) * sizeof *v);
      if (!more) {
        fputs("caedata: out of memory\n", stderr);
        exit(1);
      }
      v = more;
    }
    v[*n] = (Prepared){.name = strdup(e->d_name)};
    v[*n].id = ixi_id_from_name(e->d_name);
    ++*n;
  }
  closedir(d);
  qsort(v, (size_t)*n, sizeof *v, by_name);
  return v;
}

static void prepared_free(Prepared *r) {
  free(r->name);
  free(r->index);
  free(r->pixels);
  free(r->ranges);
}

static int by_split_id(const void *key, const void *entry) {
  int a = *(const int *)key, b = ((const SplitEntry *)entry)->id;
  return (a > b) - (a < b);
}

static char *join(const char *folder, const char *name) {
  size_t len = strlen(folder) + strlen(name) + 2;
  char *p = err_calloc(len, 1);
  snprintf(p, len, "%s/%s", folder, name);
  return p;
}

// The manifest: the settings as "# key value" lines, then one row per volume in cache order.
static int write_manifest(const char *path, const PrepareOptions *o, const Prepared *v, const int *good, int ngood,
                          const SplitSet *set, int64_t count, char *err, size_t errlen) {
  AtomicFile a;
  if (atomic_open(&a, path, err, errlen))
    return -1;
  fprintf(a.f, "# caedata %s slice cache manifest\n# cache\t%s\n# size\t%d\n# plane\t%s\n# select\t%s\n",
          CAEDATA_VERSION, CACHE_FILE, o->size, plane_names[o->plane], select_names[o->select]);
  fprintf(a.f, "# seed\t%llu\n# test_fraction\t%g\n# val_fraction\t%g\n# volumes\t%d\n# slices\t%lld\n",
          (unsigned long long)o->seed, o->test, o->val, ngood, (long long)count);
  fprintf(a.f, "volume\tfile\tsubject\tset\tplane\tslices\tkept\tfirst\tkept_slices\n");
  int64_t first = 0;
  for (int g = 0; g < ngood; g++) {
    const Prepared *r = &v[good[g]];
    char subject[16] = "none";
    if (r->id > 0)
      snprintf(subject, sizeof subject, "%d", r->id);
    fprintf(a.f, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%lld\t%s\n", g, r->name, subject, split_set_name(set[g]),
            plane_names[r->plane], r->slices, r->kept, (long long)first, r->ranges);
    first += r->kept;
  }
  return atomic_commit(&a, 0, err, errlen);
}

// Reads the volumes into the cache on o->threads threads. They are added to the cache and reported in name
// order (the ordered block), so the output is the same for any thread count; a thread waits there at most
// for the volumes before its own, which bounds the slices held in memory. Returns how many were added, their
// indices in good.
static int read_volumes(const PrepareOptions *o, Prepared *v, int n, CacheWriter *w, int *good) {
  int ngood = 0;
#pragma omp parallel for ordered schedule(dynamic, 1) num_threads(o->threads)
  for (int i = 0; i < n; i++) {
    Prepared *r = &v[i];
    int dup = -1;
    for (int j = 0; j < i && r->id > 0 && dup < 0; j++)
      dup = v[j].id == r->id ? j : -1;
    if (dup >= 0)
      snprintf(r->why, sizeof r->why, "%s/%s: subject %d again (as in %s)", o->images, r->name, r->id, v[dup].name);
    else
      prepare_volume(o, r);
#pragma omp ordered
    {
      if (r->ok) {
        cache_add_volume(w, r->pixels, r->index, r->kept);
        printf("%s: %d of %d %s slices (%s), %.2f s (%.2f s CPU)\n", r->name, r->kept, r->slices,
               plane_names[r->plane], r->ranges, r->seconds, r->cpu);
        good[ngood++] = i;
      } else {
        fprintf(stderr, "caedata: %s: skipped\n", r->why);
      }
      free(r->pixels); // the slices are in the cache now
      r->pixels = NULL;
    }
  }
  return ngood;
}

// Splits the volumes added to the cache, writes the manifests and puts the cache in place; 0, or -1 after a
// message. The manifests come first: a cache in place always has its own beside it.
static int write_dataset(const PrepareOptions *o, const Demographics *demo, const Prepared *v, const int *good,
                         int ngood, CacheWriter *w) {
  SplitVolume *sv = err_calloc((size_t)ngood, sizeof *sv);
  for (int g = 0; g < ngood; g++) {
    const Prepared *r = &v[good[g]];
    sv[g] = (SplitVolume){r->name, r->id > 0 ? r->id : NO_SUBJECT_ID + g, r->kept};
  }
  SplitOptions so = SPLIT_DEFAULTS;
  so.seed = o->seed, so.test_fraction = o->test, so.val_fraction = o->val;
  Split split;
  SplitSet *set = err_calloc((size_t)ngood, sizeof *set);
  char err[1024], *manifest = join(o->out, MANIFEST_FILE), *split_path = join(o->out, SPLIT_FILE);
  int64_t count = w->count;
  int rc = split_make(sv, ngood, demo, &so, &split, err, sizeof err);
  if (rc) {
    cache_abort(w);
  } else {
    for (int g = 0; g < ngood; g++)
      set[g] = ((const SplitEntry *)bsearch(&sv[g].id, split.v, (size_t)split.count, sizeof *split.v,
                                            by_split_id))->set;
    rc = write_manifest(manifest, o, v, good, ngood, set, count, err, sizeof err) ||
         split_write_manifest(split_path, &split, err, sizeof err);
    if (rc)
      cache_abort(w);
    else
      rc = cache_commit(w, set, err, sizeof err);
    if (!rc)
      split_report(stdout, &split);
    split_free(&split);
  }
  if (rc)
    fprintf(stderr, "caedata: %s\n", err);
  free(manifest);
  free(split_path);
  free(set);
  free(sv);
  return rc ? -1 : 0;
}

// The cache's temporary file while it is written: a prepare stopped by Ctrl-C or kill removes it, since it
// may be gigabytes that nothing would ever use (the atomic write already keeps it from the cache's name). A
// copy of the name, so that the handler never sees it freed; once renamed, unlinking it does nothing.
static char temp_file[4096];
static volatile sig_atomic_t temp_armed;

static void remove_temp_file(int sig) {
  if (temp_armed)
    unlink(temp_file); // async-signal-safe, as are the two calls below
  signal(sig, SIG_DFL);
  raise(sig);
}

static int cmd_prepare(int argc, char **argv) {
  PrepareOptions o = {.size = 128, .select = SELECT_BRAIN, .plane = PLANE_SAGITTAL, .threads = omp_get_num_procs(),
                      .seed = 1, .test = 0.08, .val = 0.15};
  const Option opts[] = {
      {"images", OPT_TEXT, &o.images, 0, 0, NULL, 0},
      {"out", OPT_TEXT, &o.out, 0, 0, NULL, 0},
      {"demographics", OPT_TEXT, &o.demographics, 0, 0, NULL, 0},
      {"size", OPT_INT, &o.size, 1, 1024, NULL, 0},
      {"select", OPT_CHOICE, &o.select, 0, 0, select_names, 3},
      {"plane", OPT_CHOICE, &o.plane, 0, 0, plane_names, 4},
      {"seed", OPT_U64, &o.seed, 0, 0, NULL, 0},
      {"test", OPT_REAL, &o.test, 0, 1, NULL, 0},
      {"val", OPT_REAL, &o.val, 0, 1, NULL, 0},
      {"threads", OPT_INT, &o.threads, 1, 1024, NULL, 0},
  };
  int rc = parse("prepare", usage_prepare, argc, argv, opts, sizeof opts / sizeof *opts, NULL, NULL);
  if (rc)
    return rc == 1 ? 0 : rc;
  if (!o.images || !o.out)
    return usage_error("prepare", "--images and --out are required");

  char err[1024];
  Demographics demo = {0};
  if (o.demographics) {
    if (demo_read(o.demographics, &demo, err, sizeof err)) {
      fprintf(stderr, "caedata: %s\n", err);
      return 1;
    }
    printf("demographics: %d subjects in %s (%d IDs on several rows, %d garbage rows skipped)\n", demo.count,
           o.demographics, demo.ndups, demo.garbage);
  }
  int n = 0, other = 0, ngood = 0;
  Prepared *v = list_volumes(o.images, &n, &other);
  char *cache_path = join(o.out, CACHE_FILE);
  CacheWriter w;
  rc = 1;
  // A stop between the temporary file's creation and the handler knowing its name would leave the file
  // behind: hold Ctrl-C and kill until then.
  sigset_t stop, old;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, &old);
  if (!v) {
    // list_volumes said why
  } else if (n == 0) {
    fprintf(stderr, "caedata: %s: no .nii or .nii.gz files\n", o.images);
  } else if (mkdir(o.out, 0777) && errno != EEXIST) {
    fprintf(stderr, "caedata: %s: cannot make the folder: %s\n", o.out, strerror(errno));
  } else if (cache_create(&w, cache_path, o.size, o.size, err, sizeof err)) {
    fprintf(stderr, "caedata: %s\n", err);
  } else {
    int *good = err_calloc((size_t)n, sizeof *good);
    double start = seconds(), start_cpu = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
    snprintf(temp_file, sizeof temp_file, "%s", w.file.tmp);
    temp_armed = strlen(w.file.tmp) < sizeof temp_file;
    signal(SIGINT, remove_temp_file);
    signal(SIGTERM, remove_temp_file);
    sigprocmask(SIG_SETMASK, &old, NULL);
    ngood = read_volumes(&o, v, n, &w, good);
    double elapsed = seconds() - start, cpu = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - start_cpu;
    int64_t count = w.count;
    if (ngood == 0) {
      fprintf(stderr, "caedata: %s: no usable volumes (%d skipped, %d other files)\n", o.images, n, other);
      cache_abort(&w);
    } else if (write_dataset(&o, &demo, v, good, ngood, &w) == 0) {
      printf("wrote %s: %lld slices of %dx%d from %d volumes; %d skipped, %d other files\n", cache_path,
             (long long)count, o.size, o.size, ngood, n - ngood, other);
      // Per volume kept: the time of the volumes skipped, and of the cache's writing, is in the totals.
      printf("time: %d volumes in %.2f s on %d thread%s, %.3f s per volume; CPU %.2f s, %.3f s per volume\n",
             ngood, elapsed, o.threads, o.threads == 1 ? "" : "s", elapsed / ngood, cpu, cpu / ngood);
      rc = 0;
    }
    temp_armed = 0; // renamed or removed
    free(good);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  for (int i = 0; i < n; i++)
    prepared_free(&v[i]);
  free(v);
  free(cache_path);
  demo_free(&demo);
  return rc;
}

// ---- inspect ---------------------------------------------------------------------------

// The datatype code from the header, which Volume does not keep: sizeof_hdr (348 for NIfTI-1, 540 for
// NIfTI-2, either byte order) says where it is. zlib reads .nii and .nii.gz alike.
static const char *datatype_name(const char *path) {
  static const struct {
    int code;
    const char *name;
  } types[] = {{2, "uint8"},   {4, "int16"},   {8, "int32"},   {16, "float32"}, {64, "float64"},
               {256, "int8"},  {512, "uint16"}, {768, "uint32"}, {1024, "int64"}, {1280, "uint64"}};
  unsigned char h[72];
  gzFile f = gzopen(path, "rb");
  int got = f ? gzread(f, h, sizeof h) : -1;
  if (f)
    gzclose(f);
  if (got != (int)sizeof h)
    return "unknown";
  uint32_t size = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
  int swapped = size == 0x5c010000 || size == 0x1c020000; // 348 or 540 written big-endian
  int at = size == 540 || size == 0x1c020000 ? 12 : 70;     // NIfTI-2 puts it after its 8-byte magic
  int code = swapped ? h[at] << 8 | h[at + 1] : h[at + 1] << 8 | h[at];
  for (size_t t = 0; t < sizeof types / sizeof *types; t++)
    if (types[t].code == code)
      return types[t].name;
  return "unknown";
}

static int cmd_inspect(int argc, char **argv) {
  int plane = PLANE_SAGITTAL;
  const Option opts[] = {{"plane", OPT_CHOICE, &plane, 0, 0, plane_names, 4}};
  const char *path = NULL;
  int rc = parse("inspect", usage_inspect, argc, argv, opts, 1, &path, NULL);
  if (rc)
    return rc == 1 ? 0 : rc;
  if (!path)
    return usage_error("inspect", "which file? (caedata inspect FILE.nii.gz)");
  Volume v;
  char err[512];
  if (vol_read(path, &v, err, sizeof err)) {
    fprintf(stderr, "caedata: %s\n", err);
    return 1;
  }
  printf("%s\n  dims        %d x %d x %d voxels\n  voxel size  %g x %g x %g mm\n  datatype    %s\n", path,
         v.dim[0], v.dim[1], v.dim[2], v.voxel[0], v.voxel[1], v.voxel[2], datatype_name(path));
  // Each voxel axis as the world axis it follows and the end it runs to (the orientation code names the
  // ends, as nibabel's aff2axcodes does: IXI's T1 is PSR).
  static const char *const from_to[3][2] = {{"L to R", "R to L"}, {"P to A", "A to P"}, {"I to S", "S to I"}};
  static const char ends[3][2] = {{'R', 'L'}, {'A', 'P'}, {'S', 'I'}};
  char code[4] = "???";
  const char *dir[3] = {"?", "?", "?"};
  for (int a = 0; a < 3; a++) {
    code[v.axis_of[a]] = ends[a][v.flip_of[a]];
    dir[v.axis_of[a]] = from_to[a][v.flip_of[a]];
  }
  printf("  orientation %s (i: %s, j: %s, k: %s)\n", code, dir[0], dir[1], dir[2]);
  Plane chosen = vol_plane(&v, (Plane)plane);
  int n = vol_slices(&v, chosen);
  printf("  plane       %s%s; auto would choose %s\n  slices      %d %s slices\n", plane_names[chosen],
         plane == PLANE_AUTO ? " (auto)" : "", plane_names[vol_plane(&v, PLANE_AUTO)], n, plane_names[chosen]);
  unsigned char *keep = err_calloc((size_t)n, 1);
  for (int m = 0; m < 3; m++) {
    int kept = select_slices(&v, chosen, (Select)m, keep, err, sizeof err);
    if (kept < 0) {
      printf("  %-10s  %s\n", select_names[m], err);
      continue;
    }
    char *r = ranges(keep, n);
    printf("  %-10s  %d of %d kept: %s\n", select_names[m], kept, n, r);
    free(r);
  }
  free(keep);
  vol_free(&v);
  return 0;
}

// ---- preview ---------------------------------------------------------------------------

enum { GAP = 4, PAIRS_PER_ROW = 4, GAP_SHADE = 96 };
// The preview's draws of training slices: the shuffle purpose, a stream of its own ("prev").
static const uint32_t PREVIEW_STREAM = 0x70726576;

static int cmd_preview(int argc, char **argv) {
  const char *data = NULL, *out = NULL;
  int count = 8, epoch = 0;
  uint64_t seed = 1;
  const Option opts[] = {
      {"data", OPT_TEXT, &data, 0, 0, NULL, 0},     {"out", OPT_TEXT, &out, 0, 0, NULL, 0},
      {"count", OPT_INT, &count, 1, 64, NULL, 0},   {"seed", OPT_U64, &seed, 0, 0, NULL, 0},
      {"epoch", OPT_INT, &epoch, 0, 1 << 30, NULL, 0},
  };
  AugmentParams aug = augment_defaults();
  int rc = parse("preview", usage_preview, argc, argv, opts, sizeof opts / sizeof *opts, NULL, &aug);
  if (rc)
    return rc == 1 ? 0 : rc;
  if (!data || !out)
    return usage_error("preview", "--data and --out are required");
  char err[1024], *path = join(data, CACHE_FILE);
  SliceCache c;
  rc = cache_open(path, &c, err, sizeof err);
  free(path);
  if (rc) {
    fprintf(stderr, "caedata: %s\n", err);
    return 1;
  }
  int64_t ntrain = cache_count(&c, SET_TRAIN);
  if (ntrain == 0) {
    fprintf(stderr, "caedata: %s: no training slices to preview\n", data);
    cache_close(&c);
    return 1;
  }
  int64_t *train = err_calloc((size_t)ntrain, sizeof *train);
  for (int64_t i = 0, t = 0; i < c.count; i++)
    if (cache_set_of(&c, i) == SET_TRAIN)
      train[t++] = i;
  int h = c.height, w = c.width, cols = count < PAIRS_PER_ROW ? count : PAIRS_PER_ROW;
  int rows = (count + cols - 1) / cols;
  int width = cols * 2 * (w + GAP) + GAP, height = rows * (h + GAP) + GAP;
  Canvas img;
  if (!canvas_new(&img, width, height, (Rgb){GAP_SHADE, GAP_SHADE, GAP_SHADE})) {
    fprintf(stderr, "caedata: %s: the picture is too large (%d x %d pixels)\n", out, width, height);
    free(train);
    cache_close(&c);
    return 1;
  }
  float *clean = err_calloc((size_t)h * w, sizeof *clean), *noisy = err_calloc((size_t)h * w, sizeof *noisy);
  AugmentParams p = augment_scaled(aug, w);
  for (int k = 0; k < count; k++) {
    // Pair k: a training slice drawn by (seed, k), corrupted as the sample of its place among them.
    uint64_t sample = rng_bits(seed, rng_stream(RNG_SHUFFLE, PREVIEW_STREAM), (uint64_t)k) % (uint64_t)ntrain;
    int64_t i = train[sample];
    cache_decode(&c, i, clean);
    augment_image(&p, seed, (uint32_t)epoch, sample, h, w, clean, noisy, NULL);
    int top = GAP + k / cols * (h + GAP), left = GAP + k % cols * 2 * (w + GAP);
    canvas_image(&img, left, top, clean, h, w, 1, 0.0f, 1.0f, false);
    canvas_image(&img, left + w + GAP, top, noisy, h, w, 1, 0.0f, 1.0f, false);
    printf("pair %d: slice %lld (volume %d, slice %d)\n", k, (long long)i, cache_volume_of(&c, i),
           cache_slice_of(&c, i));
  }
  rc = canvas_write_png(&img, out, err, sizeof err);
  if (rc)
    fprintf(stderr, "caedata: %s\n", err);
  else
    printf("wrote %s: %d pairs of %dx%d slices (clean, corrupted)\n", out, count, h, w);
  free(clean);
  free(noisy);
  canvas_free(&img);
  free(train);
  cache_close(&c);
  return rc ? 1 : 0;
}

// ---- synth -----------------------------------------------------------------------------

// The template's file name, for the headers' descriptions.
static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

// Writes text to path atomically; 0, or -1 after a message.
static int write_text(const char *path, const char *text) {
  AtomicFile a;
  char err[1024];
  int rc = atomic_open(&a, path, err, sizeof err);
  if (!rc) {
    int e = fputs(text, a.f) < 0 ? (errno ? errno : EIO) : 0;
    rc = atomic_commit(&a, e, err, sizeof err);
  }
  if (rc)
    fprintf(stderr, "caedata: %s\n", err);
  return rc;
}

// Appends to a growing malloc'ed string.
__attribute__((format(printf, 2, 3))) static void append(char **text, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  size_t len = *text ? strlen(*text) : 0;
  char *more = realloc(*text, len + (size_t)n + 1);
  if (!more) {
    fputs("caedata: out of memory\n", stderr);
    exit(1);
  }
  va_start(ap, fmt);
  vsnprintf(more + len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  *text = more;
}

// The demographics in IXI's columns (demo_read's), with ages to the day as IXI has them, and the README:
// what the files are, how they were made, and each subject's parameters.
static int write_cohort_files(const char *out, const char *template_path, uint64_t seed, const SynthSubject *s,
                              int n) {
  char *csv = NULL, *readme = NULL;
  append(&csv, "IXI_ID,\"SEX_ID (1=m, 2=f)\",ETHNIC_ID,AGE,SYNTHETIC\n");
  append(&readme,
         "SYNTHETIC DATA: these are not IXI subjects.\n\n"
         "caedata synth --subjects %d --seed %llu made them from one real T1 scan,\n  %s\n"
         "Each subject is that scan under its own random anatomy and scanner, resampled onto IXI's T1 grid\n"
         "and named as IXI names its files, with subject IDs from 900 up, beyond IXI's. " SYNTH_DEMOGRAPHICS "\n"
         "has IXI's columns with drawn values, and SYNTHETIC = 1.\n\n"
         "Per subject below: size (the scan's scale along x, y, z), rotation (degrees about x, y, z), shift\n"
         "(mm), the contrast's gamma and gain (the white matter's intensity), and the Rician noise's sd as a\n"
         "fraction of the white matter. A smooth displacement field of a few mm and a bias field of about\n"
         "+-10 to 16%% come on top.\n\n"
         "file\tsex\tage\tsize\trotation\tshift\tgamma\tgain\tnoise\n",
         n, (unsigned long long)seed, template_path);
  for (int k = 0; k < n; k++) {
    const SynthSubject *x = &s[k];
    char name[64];
    synth_file_name(x, name, sizeof name);
    append(&csv, "%d,%d,%d,%.2f,1\n", x->id, x->sex, x->ethnic, x->age);
    append(&readme, "%s\t%s\t%.1f\t%.3f,%.3f,%.3f\t%.1f,%.1f,%.1f\t%.1f,%.1f,%.1f\t%.2f\t%.0f\t%.3f\n", name,
           x->sex == 1 ? "m" : "f", x->age, x->scale[0], x->scale[1], x->scale[2], x->angle[0], x->angle[1],
           x->angle[2], x->shift[0], x->shift[1], x->shift[2], x->gamma, x->gain, x->noise);
  }
  char *csv_path = join(out, SYNTH_DEMOGRAPHICS), *readme_path = join(out, SYNTH_README);
  int rc = write_text(csv_path, csv) || write_text(readme_path, readme);
  free(csv);
  free(readme);
  free(csv_path);
  free(readme_path);
  return rc;
}

static int cmd_synth(int argc, char **argv) {
  const char *template_path = DEFAULT_TEMPLATE, *out = NULL;
  int n = 0, threads = omp_get_num_procs();
  uint64_t seed = 1;
  const Option opts[] = {
      {"template", OPT_TEXT, &template_path, 0, 0, NULL, 0},
      {"subjects", OPT_INT, &n, 1, SYNTH_MAX_SUBJECTS, NULL, 0},
      {"out", OPT_TEXT, &out, 0, 0, NULL, 0},
      {"seed", OPT_U64, &seed, 0, 0, NULL, 0},
      {"threads", OPT_INT, &threads, 1, 1024, NULL, 0},
  };
  int rc = parse("synth", usage_synth, argc, argv, opts, sizeof opts / sizeof *opts, NULL, NULL);
  if (rc)
    return rc == 1 ? 0 : rc;
  if (!n || !out)
    return usage_error("synth", "--subjects and --out are required");
  SynthTemplate t;
  char err[1024];
  if (synth_template(template_path, &t, err, sizeof err)) {
    fprintf(stderr, "caedata: %s\n", err);
    return 1;
  }
  if (mkdir(out, 0777) && errno != EEXIST) {
    fprintf(stderr, "caedata: %s: cannot make the folder: %s\n", out, strerror(errno));
    synth_template_free(&t);
    return 1;
  }
  // Subjects on as many threads as there are subjects, each volume on its share of the rest.
  int outer = threads < n ? threads : n, inner = threads / outer, failed = 0;
  omp_set_max_active_levels(2);
  SynthSubject *s = err_calloc((size_t)n, sizeof *s);
  size_t voxels = (size_t)SYNTH_NI * SYNTH_NJ * SYNTH_NK;
  double start = seconds();
#pragma omp parallel for ordered schedule(dynamic, 1) num_threads(outer)
  for (int k = 0; k < n; k++) {
    double begin = seconds();
    s[k] = synth_subject(seed, k);
    char name[64], descrip[80], why[1024];
    synth_file_name(&s[k], name, sizeof name);
    snprintf(descrip, sizeof descrip, "caec synth from %.24s, subject %d, seed %llu", base_name(template_path), k,
             (unsigned long long)seed);
    int16_t *vol = err_calloc(voxels, sizeof *vol);
    char *path = join(out, name);
    if (synth_volume(&t, &s[k], seed, inner, vol)) {
      fputs("caedata: out of memory\n", stderr);
      exit(1);
    }
    int bad = synth_write(path, &t, vol, descrip, why, sizeof why);
    free(vol);
    free(path);
#pragma omp ordered
    {
      if (bad) {
        fprintf(stderr, "caedata: %s\n", why);
        failed++;
      } else {
        const SynthSubject *x = &s[k];
        printf("%s: %s, %.1f years, size %.2f, pitch %+.1f deg, gamma %.2f, noise %.1f%%, %.2f s\n", name,
               x->sex == 1 ? "m" : "f", x->age, (x->scale[0] + x->scale[1] + x->scale[2]) / 3, x->angle[0],
               x->gamma, 100 * x->noise, seconds() - begin);
      }
    }
  }
  double elapsed = seconds() - start;
  rc = failed ? 1 : write_cohort_files(out, template_path, seed, s, n) ? 1 : 0;
  if (!rc)
    printf("wrote %d synthetic subjects to %s with " SYNTH_DEMOGRAPHICS " and " SYNTH_README
           ": %.2f s, %.2f s per subject on %d threads\n",
           n, out, elapsed, elapsed / n, threads);
  else if (failed)
    fprintf(stderr, "caedata: %d of %d subjects could not be written\n", failed, n);
  free(s);
  synth_template_free(&t);
  return rc;
}

// ---- main ------------------------------------------------------------------------------

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_main, stderr);
    return 2;
  }
  const char *command = argv[1];
  if (!strcmp(command, "--help") || !strcmp(command, "-h") || !strcmp(command, "help")) {
    fputs(usage_main, stdout);
    return 0;
  }
  if (!strcmp(command, "--version")) {
    printf("caedata %s\n", CAEDATA_VERSION);
    return 0;
  }
  if (!strcmp(command, "prepare"))
    return cmd_prepare(argc - 2, argv + 2);
  if (!strcmp(command, "inspect"))
    return cmd_inspect(argc - 2, argv + 2);
  if (!strcmp(command, "preview"))
    return cmd_preview(argc - 2, argv + 2);
  if (!strcmp(command, "synth"))
    return cmd_synth(argc - 2, argv + 2);
  fprintf(stderr, "caedata: unknown command '%s'\n\n%s", command, usage_main);
  return 2;
}
