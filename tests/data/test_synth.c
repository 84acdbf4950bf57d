// test_synth.c: caedata synth, the synthetic IXI-like cohort made from Colin27.
//
//   test_synth CAEDATA CH2   skipped (77) when CH2 (Debian's mricron-data) is absent
//
// Three subjects twice with one seed, on 2 and 6 threads, must be the same bytes, and another seed another
// cohort. Each volume must read back on IXI's grid with its header marked synthetic, show a brain of a
// plausible size, differ from the others, and give mid-sagittal slices the same way up as Colin27's own;
// the demographics must read as IXI's; caedata prepare must take the folder and keep slices of each.
// Ends with "N passed, M failed".
#include "brainmask.h"
#include "resize.h"
#include "split.h"
#include "../testutil.h"
#include "volume.h"

#include <math.h>
#include <nifti2_io.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *caedata;
static char out_text[1 << 16], err_text[1 << 16];

// Runs caedata with the arguments (one string, no quoting needed); returns its exit status, with its output in
// out_text and err_text.
__attribute__((format(printf, 1, 2))) static int run(const char *fmt, ...) {
  char args[4096], cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "%s %s > %s 2> %s", caedata, args, path_in_dir("out.txt"), path_in_dir("err.txt"));
  int status = system(cmd);
  char *o = slurp(path_in_dir("out.txt"), NULL), *e = slurp(path_in_dir("err.txt"), NULL);
  snprintf(out_text, sizeof out_text, "%s", o ? o : "");
  snprintf(err_text, sizeof err_text, "%s", e ? e : "");
  free(o);
  free(e);
  unlink(path_in_dir("out.txt"));
  unlink(path_in_dir("err.txt"));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

typedef char Path[512];
static const char *in_dir(Path p, const char *name) {
  snprintf(p, sizeof(Path), "%s/%s", dir, name);
  return p;
}

enum { MAX_FILES = 8, SUBJECTS = 3 };
typedef char Name[64];

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

// The folder's files (of short names), sorted by name; returns how many.
static int files_in(const char *folder, Name *names) {
  int n = 0;
  DIR *d = opendir(folder);
  for (struct dirent *e; d && (e = readdir(d)) && n < MAX_FILES;) {
    size_t len = strlen(e->d_name);
    if (e->d_name[0] != '.' && len < sizeof(Name))
      memcpy(names[n++], e->d_name, len + 1);
  }
  if (d)
    closedir(d);
  qsort(names, (size_t)n, sizeof *names, by_name);
  return n;
}

// ---- images ---------------------------------------------------------------------------------

enum { SMALL = 32 };

// The mid-sagittal slice of v, rows S to I and columns A to P, cropped to the head (the pixels above a fifth
// of the brightest) and resized to SMALL x SMALL: the head's size and place then do not matter, its shape
// and the anatomy in it do.
static void mid_sagittal(const Volume *v, float *out) {
  float *slice = malloc((size_t)v->dim[0] * v->dim[1] * v->dim[2] / (size_t)vol_slices(v, PLANE_SAGITTAL) *
                        sizeof *slice);
  int h, w, top = h = 0, bottom = -1, left = w = 0, right = -1;
  vol_slice(v, PLANE_SAGITTAL, vol_slices(v, PLANE_SAGITTAL) / 2, slice, &h, &w);
  float brightest = 0;
  for (int p = 0; p < h * w; p++)
    brightest = fmaxf(brightest, slice[p]);
  top = h, left = w;
  for (int r = 0; r < h; r++)
    for (int c = 0; c < w; c++)
      if (slice[r * w + c] > brightest / 5) {
        top = r < top ? r : top, bottom = r, left = c < left ? c : left, right = c > right ? c : right;
      }
  int rows = bottom - top + 1, cols = right - left + 1;
  float *crop = malloc((size_t)(rows > 0 ? rows * cols : 1) * sizeof *crop);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++)
      crop[r * cols + c] = slice[(top + r) * w + left + c];
  if (rows > 0 && cols > 0)
    resize_bilinear(crop, rows, cols, out, SMALL, SMALL);
  free(crop);
  free(slice);
}

// Pearson's correlation of a with b seen through transform t: 0 as is, 1 upside down, 2 left-right
// mirrored, 3 both (a half turn), 4 and 5 turned a quarter either way.
static double correlation(const float *a, const float *b, int t) {
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, n = SMALL * SMALL;
  for (int r = 0; r < SMALL; r++)
    for (int c = 0; c < SMALL; c++) {
      int m = SMALL - 1, br = t == 1 || t == 3 ? m - r : t == 4 ? c : t == 5 ? m - c : r;
      int bc = t == 2 || t == 3 ? m - c : t == 4 ? m - r : t == 5 ? r : c;
      double x = a[r * SMALL + c], y = b[br * SMALL + bc];
      sa += x, sb += y, saa += x * x, sbb += y * y, sab += x * y;
    }
  return (sab - sa * sb / n) / sqrt((saa - sa * sa / n) * (sbb - sb * sb / n));
}

// ---- the header ---------------------------------------------------------------------------------

// The header's description holds `want`, and its qform is its sform.
static void check_header(const char *path, const char *want) {
  nifti_set_debug_level(0);
  nifti_image *nim = nifti_image_read(path, 0);
  CHECK(nim != NULL, "%s: libnifti reads the header", path);
  if (!nim)
    return;
  CHECK(strstr(nim->descrip, want) != NULL, "%s: the description '%s' says '%s'", path, nim->descrip, want);
  CHECK(nim->datatype == DT_INT16, "%s: int16, as IXI's T1s (datatype %d)", path, nim->datatype);
  double worst = 0;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++)
      worst = fmax(worst, fabs(nim->qto_xyz.m[r][c] - nim->sto_xyz.m[r][c]));
  CHECK(nim->qform_code > 0 && nim->sform_code > 0 && worst < 1e-4, "%s: the qform (code %d) is the sform (code %d), "
        "within %g mm", path, nim->qform_code, nim->sform_code, worst);
  nifti_image_free(nim);
}

// ---- the test --------------------------------------------------------------------------------------

// Synthesises a cohort; names gets its volumes' names. Returns how many there are.
static int synth(const char *out, int subjects, int seed, int threads, Name *names) {
  int rc = run("synth --template %s --subjects %d --seed %d --threads %d --out %s", path_in_dir("ch2.nii.gz"),
               subjects, seed, threads, out);
  CHECK(rc == 0, "synth --subjects %d --seed %d --threads %d: exit %d\n%s", subjects, seed, threads, rc, err_text);
  Name files[MAX_FILES];
  int n = files_in(out, files), volumes = 0;
  for (int f = 0; f < n; f++)
    if (strstr(files[f], ".nii.gz"))
      memcpy(names[volumes++], files[f], sizeof(Name));
  CHECK(volumes == subjects && n == subjects + 2, "%s: %d volumes and %d other files, want %d and 2", out, volumes,
        n - volumes, subjects);
  return volumes;
}

// Reads each volume of the cohort and checks it against IXI's grid, Colin27 and the others.
static void check_volumes(const char *folder, const Name *names, int n, const Volume *colin) {
  float reference[SMALL * SMALL] = {0}, mid[SUBJECTS][SMALL * SMALL] = {{0}};
  mid_sagittal(colin, reference);
  for (int s = 0; s < n; s++) {
    char path[1024], err[512], want[64];
    snprintf(path, sizeof path, "%s/%s", folder, names[s]);
    snprintf(want, sizeof want, "caec synth from ch2.nii.gz, subject %d, seed 5", s);
    check_header(path, want);
    int id = ixi_id_from_name(names[s]);
    CHECK(id == 900 + s && strstr(names[s], "-T1.nii.gz") &&
              (strstr(names[s], "-Guys-") || strstr(names[s], "-HH-") || strstr(names[s], "-IOP-")),
          "%s: an IXI name with subject %d", names[s], 900 + s);
    Volume v;
    if (vol_read(path, &v, err, sizeof err)) {
      CHECK(0, "%s", err);
      continue;
    }
    CHECK(v.dim[0] == 256 && v.dim[1] == 256 && v.dim[2] == 150, "%s: %d x %d x %d voxels", names[s], v.dim[0],
          v.dim[1], v.dim[2]);
    CHECK(fabs(v.voxel[0] - 0.9375) < 1e-6 && fabs(v.voxel[1] - 0.9375) < 1e-6 && fabs(v.voxel[2] - 1.2) < 1e-6,
          "%s: voxels of %g x %g x %g mm", names[s], v.voxel[0], v.voxel[1], v.voxel[2]);
    // IXI's PSR: i towards P, j towards S, k towards R.
    CHECK(v.axis_of[0] == 2 && !v.flip_of[0] && v.axis_of[1] == 0 && v.flip_of[1] && v.axis_of[2] == 1 &&
              !v.flip_of[2],
          "%s: stored as IXI stores its T1s (PSR)", names[s]);
    if (v.dim[0] != 256 || v.dim[1] != 256 || v.dim[2] != 150) {
      vol_free(&v);
      continue;
    }
    // The same way up as Colin27: no flip or turn of the slice matches Colin27's as well as the slice itself.
    mid_sagittal(&v, mid[s]);
    double as_is = correlation(mid[s], reference, 0), best_other = -1;
    for (int t = 1; t < 6; t++)
      best_other = fmax(best_other, correlation(mid[s], reference, t));
    CHECK(as_is > 0.4 && as_is > best_other + 0.15,
          "%s: the mid-sagittal slice correlates %.3f with Colin27's, %.3f at best flipped or turned", names[s],
          as_is, best_other);
    unsigned char *mask = calloc((size_t)256 * 256 * 150, 1);
    int rc = brain_mask(v.data, v.dim, v.voxel, mask, err, sizeof err);
    size_t count = 0;
    for (size_t i = 0; i < (size_t)256 * 256 * 150; i++)
      count += mask[i];
    double ml = (double)count * 0.9375 * 0.9375 * 1.2 / 1000;
    CHECK(rc == 0 && ml > 1000 && ml < 2000, "%s: a brain of %.0f ml (%s)", names[s], ml, rc ? err : "mask found");
    printf("%s: brain %.0f ml, mid-sagittal slice correlates %.3f with Colin27's (%.3f flipped or turned)\n",
           names[s], ml, as_is, best_other);
    free(mask);
    vol_free(&v);
  }
  // Each subject visibly its own.
  for (int a = 0; a < n; a++)
    for (int b = a + 1; b < n; b++) {
      double r = correlation(mid[a], mid[b], 0);
      printf("subjects %d and %d: their mid-sagittal slices correlate %.3f\n", a, b, r);
      CHECK(r < 0.9, "subjects %d and %d differ: their mid-sagittal slices correlate %.3f", a, b, r);
    }
}

static void check_demographics(const char *folder, int n) {
  char path[1024], err[512];
  snprintf(path, sizeof path, "%s/demographics.csv", folder);
  char *text = slurp(path, NULL);
  CHECK(text && !strncmp(text, "IXI_ID,\"SEX_ID (1=m, 2=f)\",ETHNIC_ID,AGE,SYNTHETIC\n", 51),
        "the demographics have IXI's columns and SYNTHETIC:\n%s", text ? text : "(none)");
  free(text);
  Demographics d;
  int rc = demo_read(path, &d, err, sizeof err);
  CHECK(rc == 0 && d.count == n && d.garbage == 0 && d.ndups == 0, "demo_read reads %d rows: %s", n,
        rc ? err : "ok");
  for (int s = 0; !rc && s < n; s++) {
    const DemoRow *r = demo_find(&d, 900 + s);
    CHECK(r && (r->sex == 1 || r->sex == 2) && r->age >= 20 && r->age < 86 && r->ethnic >= 1 && r->ethnic <= 6,
          "subject %d has a plausible row", 900 + s);
  }
  if (!rc)
    demo_free(&d);
  snprintf(path, sizeof path, "%s/README.txt", folder);
  text = slurp(path, NULL);
  CHECK(text && strstr(text, "SYNTHETIC DATA: these are not IXI subjects"), "the README says it is synthetic");
  free(text);
}

// caedata prepare takes the cohort with its demographics and keeps slices of every subject.
static void check_prepare(const char *folder, int n) {
  Path ds, manifest;
  in_dir(ds, "ds"), in_dir(manifest, "ds/manifest.tsv");
  int rc = run("prepare --images %s --demographics %s/demographics.csv --out %s --size 32", folder, folder, ds);
  char want[128];
  snprintf(want, sizeof want, "from %d volumes; 0 skipped, 2 other files", n);
  CHECK(rc == 0 && strstr(out_text, want), "prepare on the cohort (%d):\n%s%s", rc, out_text, err_text);
  CHECK(strstr(out_text, "0 without a stratum") != NULL, "every subject has demographics:\n%s", out_text);
  char *text = slurp(manifest, NULL), *line = text ? strstr(text, "\nvolume\t") : NULL;
  int rows = 0;
  for (line = line ? strchr(line + 1, '\n') : NULL; line && line[1]; line = strchr(line + 1, '\n')) {
    int volume, subject, slices, kept;
    char file[128], set[8], plane[16];
    int got = sscanf(line + 1, "%d\t%127s\t%d\t%7s\t%15s\t%d\t%d", &volume, file, &subject, set, plane, &slices, &kept);
    CHECK(got == 7 && subject == 900 + rows && slices == 150 && kept >= 80 && kept <= 130,
          "%s keeps %d of %d sagittal slices (80 to 130 expected, as IXI's 87 to 114)", file, kept, slices);
    rows++;
  }
  CHECK(rows == n, "the manifest lists %d volumes, want %d", rows, n);
  free(text);
  remove_folder(ds);
}

static void check_errors(void) {
  Path out;
  in_dir(out, "cohort");
  CHECK(run("synth --help") == 0 && strstr(out_text, "--template FILE") && strstr(out_text, "--subjects N"),
        "synth --help");
  CHECK(run("--help") == 0 && strstr(out_text, "synth"), "caedata --help lists synth");
  CHECK(run("synth --out %s", out) == 2 && strstr(err_text, "--subjects and --out are required"),
        "synth without --subjects: exit 2: %s", err_text);
  CHECK(run("synth --subjects 0 --out %s", out) == 2 && strstr(err_text, "--subjects wants"),
        "synth --subjects 0: exit 2: %s", err_text);
  CHECK(run("synth --subjects 1 --out %s --template %s/none.nii.gz", out, dir) == 1 &&
            strstr(err_text, "none.nii.gz: No such file"),
        "a missing template: exit 1: %s", err_text);
  CHECK(run("synth --subjects 1 --out %s/ch2.nii.gz/cohort --template %s", dir, path_in_dir("ch2.nii.gz")) == 1 &&
            strstr(err_text, "cannot make the folder"),
        "an output below a file: exit 1: %s", err_text);
}

static void test_synth(const char *ch2) {
  Path a, b, c, link;
  CHECK(symlink(ch2, in_dir(link, "ch2.nii.gz")) == 0, "link %s", ch2);
  Name one[MAX_FILES], again[MAX_FILES], other[MAX_FILES];
  // 2 threads make two subjects at once, 6 threads three at once, each on two threads.
  int n = synth(in_dir(a, "a"), SUBJECTS, 5, 2, one);
  int m = synth(in_dir(b, "b"), SUBJECTS, 5, 6, again);
  CHECK(strstr(out_text, "s per subject") != NULL, "synth reports its time per subject:\n%s", out_text);
  for (int s = 0; s < n && s < m; s++) {
    char x[1024], y[1024];
    snprintf(x, sizeof x, "%s/%s", a, one[s]);
    snprintf(y, sizeof y, "%s/%s", b, again[s]);
    CHECK(!strcmp(one[s], again[s]) && same_bytes(x, y), "%s: the same bytes on 2 and 6 threads", one[s]);
  }
  const char *texts[] = {"demographics.csv", "README.txt"};
  for (int f = 0; f < 2; f++) {
    char x[1024], y[1024];
    snprintf(x, sizeof x, "%s/%s", a, texts[f]);
    snprintf(y, sizeof y, "%s/%s", b, texts[f]);
    CHECK(same_bytes(x, y), "%s: the same bytes on 2 and 6 threads", texts[f]);
  }
  remove_folder(b);

  // Another seed, another subject 900.
  if (synth(in_dir(c, "c"), 1, 6, 2, other) == 1 && n > 0) {
    char x[1024], y[1024], err[512];
    snprintf(x, sizeof x, "%s/%s", a, one[0]);
    snprintf(y, sizeof y, "%s/%s", c, other[0]);
    Volume u, v;
    int ok = !vol_read(x, &u, err, sizeof err) && !vol_read(y, &v, err, sizeof err);
    size_t differ = 0, voxels = (size_t)256 * 256 * 150;
    for (size_t i = 0; ok && i < voxels; i++)
      differ += u.data[i] != v.data[i];
    CHECK(ok && differ > voxels / 2, "seeds 5 and 6 give different subjects 900 (%zu voxels of %zu differ)", differ,
          voxels);
    if (ok) {
      vol_free(&u);
      vol_free(&v);
    }
  }
  remove_folder(c);

  Volume colin;
  char err[512];
  if (vol_read(ch2, &colin, err, sizeof err)) {
    CHECK(0, "%s", err);
  } else {
    check_volumes(a, one, n, &colin);
    vol_free(&colin);
  }
  check_demographics(a, n);
  check_prepare(a, n);
  remove_folder(a);
  check_errors();
  unlink(link);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_synth CAEDATA CH2 (see test_synth.c)\n");
    return 2;
  }
  caedata = argv[1];
  struct stat st;
  if (stat(argv[2], &st)) {
    printf("skipped: %s is absent (Debian's mricron-data): caedata synth left untested\n", argv[2]);
    return TEST_SKIPPED;
  }
  make_dir("synth");
  test_synth(argv[2]);
  return finish();
}
