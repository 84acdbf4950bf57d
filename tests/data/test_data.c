// test_data.c: caedata and the slice cache, end to end.
//
//   test_data prepare CAEDATA IXI.csv   a folder of synthetic head volumes with IXI names, a corrupt one, a
//                                       file that is not NIfTI and one of another kind: the cache against
//                                       the volumes, the manifests, the split, thread counts, the preview
//   test_data errors CAEDATA            empty and all-bad folders, unwritable outputs, bad caches, usage
//   test_data colin-prepare CAEDATA CH2 prepare on Colin27 (skipped, 77, when it is absent)
//   test_data colin-inspect CAEDATA CH2 inspect on Colin27 (the same)
//   test_data phantom PATH              writes one head volume on IXI's 256x256x150 grid, to time caedata
//                                       prepare by hand
//
// Each ends with "N passed, M failed".
#include "brainmask.h"
#include "cache.h"
#include "resize.h"
#include "../testutil.h"
#include "volume.h"

#include <math.h>
#include <nifti2_io.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *caedata;

// A path in the temporary folder that, unlike path_in_dir's, stays valid.
typedef char Path[512];
static const char *in_dir(Path p, const char *name) {
  snprintf(p, sizeof(Path), "%s/%s", dir, name);
  return p;
}

// ---- synthetic volumes ---------------------------------------------------------------------

// A head on an IXI-like grid stored as IXI stores it (voxel axes towards P, S and R): an ellipsoidal brain
// (white matter, a darker rim, a dark ventricle) inside a dark gap and a bright scalp shell, with noise.
// variant changes the brain's size and the intensity scale, so that volumes differ.
static void write_phantom(const char *path, const int dim[3], const double mm[3], int variant) {
  int64_t dims[8] = {3, dim[0], dim[1], dim[2], 1, 1, 1, 1};
  nifti_image *nim = nifti_make_new_nim(dims, DT_INT16, 1);
  for (int a = 0; a < 3; a++)
    nim->pixdim[a + 1] = mm[a];
  nim->dx = mm[0], nim->dy = mm[1], nim->dz = mm[2];
  nifti_dmat44 m = {{{0}}}; // i: A to P, j: I to S, k: L to R
  m.m[0][2] = mm[2], m.m[1][0] = -mm[0], m.m[2][1] = mm[1], m.m[3][3] = 1;
  m.m[0][3] = -dim[2] * mm[2] / 2, m.m[1][3] = dim[0] * mm[0] / 2, m.m[2][3] = -dim[1] * mm[1] / 2;
  nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
  nim->sto_xyz = m;
  double s = 1 + 0.03 * (variant % 5), brain[3] = {82 * s, 58 * s, 66 * s}; // semi-axes along i, j, k in mm
  int16_t *x = nim->data;
  size_t v = 0;
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++)
      for (int i = 0; i < dim[0]; i++, v++) {
        double p[3] = {(i - dim[0] / 2.0) * mm[0], (j - dim[1] / 2.0) * mm[1], (k - dim[2] / 2.0) * mm[2]};
        double q[3] = {p[0] / brain[0], p[1] / brain[1], p[2] / brain[2]};
        double e = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
        double depth = (1 - e) * sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]) / (e > 0 ? e : 1);
        double c[3] = {(p[0] + 5) / 25, p[1] / 12, p[2] / 8}, ventricle = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
        double y = depth >= 0 ? (ventricle < 1 ? 80 : depth < 3 ? 320 : 450) : depth > -5 ? 80 : depth > -11 ? 650 : 0;
        uint32_t h = (uint32_t)v * 2654435761u ^ (uint32_t)variant * 40503u; // cheap noise, fixed per voxel
        h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
        x[v] = (int16_t)((y + (double)(h % 41) - 20) * (1 + 0.2 * variant) + (y > 0 ? 0 : 20));
      }
  if (nifti_set_filenames(nim, path, 0, 1)) {
    fprintf(stderr, "cannot name %s\n", path);
    exit(2);
  }
  nifti_image_write(nim);
  nifti_image_free(nim);
}

// ---- running caedata -----------------------------------------------------------------------

static char out_text[1 << 16], err_text[1 << 16];

// Runs caedata with the arguments (one string, no quoting needed); returns its exit status, with its output in
// out_text and err_text.
static int run(const char *fmt, ...) {
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

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

// ---- the manifest --------------------------------------------------------------------------

enum { MAX_VOLUMES = 32 };

typedef struct Row {
  char file[128], subject[16], set[8], plane[16], ranges[256];
  int volume, slices, kept;
  long long first;
} Row;

// The manifest's volume rows; -1 when it cannot be read. *slices gets its "# slices" line.
static int read_manifest(const char *path, Row *rows, long long *slices) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char line[1024];
  int n = 0, header = 0;
  while (fgets(line, sizeof line, f) && n < MAX_VOLUMES) {
    if (line[0] == '#') {
      sscanf(line, "# slices\t%lld", slices);
      continue;
    }
    if (!header++)
      continue;
    Row *r = &rows[n];
    if (sscanf(line, "%d\t%127[^\t]\t%15[^\t]\t%7[^\t]\t%15[^\t]\t%d\t%d\t%lld\t%255[^\t\n]", &r->volume, r->file,
               r->subject, r->set, r->plane, &r->slices, &r->kept, &r->first, r->ranges) != 9)
      break;
    n++;
  }
  fclose(f);
  return n;
}

// ---- prepare on a synthetic folder ---------------------------------------------------------

static const int GRID[3] = {40, 48, 36};
static const double GRID_MM[3] = {4, 4, 4.5};

// Checks the data set in ds against the volumes in images: the cache's slices are slice_prepare of the
// volumes' slices, within the 16-bit quantisation; counts agree; each volume is in one set.
static void check_dataset(const char *images, const char *ds, int want_volumes) {
  char path[1024];
  snprintf(path, sizeof path, "%s/slices.bin", ds);
  SliceCache c;
  char err[512];
  int rc = cache_open(path, &c, err, sizeof err);
  CHECK(rc == 0, "the cache opens: %s", rc ? err : "");
  if (rc)
    return;
  Row rows[MAX_VOLUMES];
  long long slices = -1;
  snprintf(path, sizeof path, "%s/manifest.tsv", ds);
  int n = read_manifest(path, rows, &slices);
  CHECK(n == want_volumes && c.volumes == n, "%d volumes in the manifest and %d in the cache, want %d", n, c.volumes,
        want_volumes);
  CHECK(slices == c.count, "the manifest's slice count %lld is the cache's %lld", slices, (long long)c.count);
  CHECK(c.height == 128 && c.width == 128, "slices of %dx%d", c.height, c.width);
  long long total = 0, per_set[3] = {0};
  for (int v = 0; v < n; v++) {
    CHECK(rows[v].first == total && rows[v].volume == v, "volume %d starts at slice %lld", v, rows[v].first);
    total += rows[v].kept;
    int set = !strcmp(rows[v].set, "train") ? SET_TRAIN : !strcmp(rows[v].set, "val") ? SET_VAL : SET_TEST;
    per_set[set] += rows[v].kept;
  }
  CHECK(total == c.count, "the volumes' kept slices add up to the cache's %lld", (long long)c.count);
  for (int s = 0; s < 3; s++)
    CHECK(per_set[s] == cache_count(&c, (SplitSet)s), "set %s: %lld slices in the manifest, %lld in the cache",
          split_set_name((SplitSet)s), per_set[s], (long long)cache_count(&c, (SplitSet)s));

  // Every slice against its source, and every volume's slices in the set the manifest gives it.
  float *got = malloc(128 * 128 * sizeof *got), *want = malloc(128 * 128 * sizeof *want);
  float *src = malloc(512 * 512 * sizeof *src);
  int loaded = -1, bad_values = 0, mismatched = 0, wrong_set = 0, wrong_volume = 0;
  double worst = 0;
  Volume vol = {0};
  for (int64_t i = 0; i < c.count; i++) {
    int v = cache_volume_of(&c, i), s = cache_slice_of(&c, i);
    if (v < 0 || v >= n || i < rows[v].first || i >= rows[v].first + rows[v].kept) {
      wrong_volume++;
      continue;
    }
    wrong_set += strcmp(split_set_name(cache_set_of(&c, i)), rows[v].set) != 0;
    if (v != loaded) {
      vol_free(&vol);
      snprintf(path, sizeof path, "%s/%s", images, rows[v].file);
      if (vol_read(path, &vol, err, sizeof err)) {
        CHECK(0, "%s", err);
        break;
      }
      loaded = v;
    }
    cache_decode(&c, i, got);
    int h, w;
    vol_slice(&vol, PLANE_SAGITTAL, s, src, &h, &w);
    slice_prepare(src, h, w, want, 128, 128);
    for (int k = 0; k < 128 * 128; k++) {
      bad_values += !(got[k] >= 0 && got[k] <= 1);
      double d = fabs(got[k] - want[k]);
      worst = d > worst ? d : worst;
      mismatched += d > 0.5 / 65535 + 1e-6;
    }
  }
  vol_free(&vol);
  CHECK(wrong_volume == 0, "every slice lies in its volume's range (%d do not)", wrong_volume);
  CHECK(bad_values == 0, "every pixel in [0, 1] (%d are not)", bad_values);
  CHECK(mismatched == 0, "every pixel is slice_prepare of the source within 0.5/65535 (worst %.3g, %d beyond)", worst,
        mismatched);
  CHECK(wrong_set == 0, "no volume's slices in two sets (%d slices in another set than their volume's)", wrong_set);
  free(got);
  free(want);
  free(src);
  cache_close(&c);
}

// The brain rule recomputed for a phantom (stored with voxel k towards the subject's right): a sagittal slice
// is kept when its brain pixels pass slice_has_brain; canonical slice 0 is the rightmost, k = NK - 1.
static void check_selection(const char *images, const Row *r) {
  char path[1024], err[256];
  snprintf(path, sizeof path, "%s/%s", images, r->file);
  Volume v;
  if (vol_read(path, &v, err, sizeof err)) {
    CHECK(0, "%s", err);
    return;
  }
  unsigned char *mask = calloc((size_t)v.dim[0] * v.dim[1] * v.dim[2], 1);
  double count[64];
  int rc = brain_mask(v.data, v.dim, v.voxel, mask, err, sizeof err);
  slice_mask_count(mask, v.dim, 2, count);
  char want[256] = "", *at = want;
  for (int s = 0; s < v.dim[2]; s++) {
    int keep = slice_has_brain(count[v.dim[2] - 1 - s], (double)v.dim[0] * v.dim[1]);
    int prev = s > 0 && slice_has_brain(count[v.dim[2] - s], (double)v.dim[0] * v.dim[1]);
    int next = s + 1 < v.dim[2] && slice_has_brain(count[v.dim[2] - 2 - s], (double)v.dim[0] * v.dim[1]);
    if (keep && !prev)
      at += sprintf(at, "%s%d", at == want ? "" : ",", s);
    if (keep && prev && !next)
      at += sprintf(at, "-%d", s);
  }
  CHECK(rc == 0 && !strcmp(want, r->ranges), "%s: kept slices %s, the brain rule gives %s", r->file, r->ranges, want);
  free(mask);
  vol_free(&v);
}

static void check_png(const char *path, unsigned want_w, unsigned want_h) {
  size_t len = 0;
  unsigned char *p = slurp(path, &len);
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  int ok = p && len > 33 && !memcmp(p, sig, 8) && !memcmp(p + 12, "IHDR", 4);
  unsigned w = ok ? (unsigned)p[16] << 24 | p[17] << 16 | p[18] << 8 | p[19] : 0;
  unsigned h = ok ? (unsigned)p[20] << 24 | p[21] << 16 | p[22] << 8 | p[23] : 0;
  CHECK(ok && w == want_w && h == want_h, "%s: a PNG of %ux%u, want %ux%u", path, w, h, want_w, want_h);
  free(p);
}

// Temporary files (of atomic writes) in a folder.
static int temps_in(const char *folder) {
  int n = 0;
  DIR *d = opendir(folder);
  for (struct dirent *e; d && (e = readdir(d));)
    n += strstr(e->d_name, ".tmp.") != NULL;
  if (d)
    closedir(d);
  return n;
}

// A prepare stopped part way (SIGTERM once its temporary cache file appears) leaves neither a cache nor the
// temporary file.
static void check_stopped(const char *images) {
  Path ds, cache;
  in_dir(ds, "stopped"), in_dir(cache, "stopped/slices.bin");
  mkdir(ds, 0777);
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(caedata, caedata, "prepare", "--images", images, "--out", ds, "--threads", "1", (char *)NULL);
    _exit(127);
  }
  for (int t = 0; t < 10000 && !temps_in(ds); t++)
    usleep(1000);
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "prepare stopped by SIGTERM (status %#x)", status);
  CHECK(!exists(cache) && temps_in(ds) == 0, "a stopped prepare leaves no cache and no temporary file");
  remove_folder(ds);
}

static void test_prepare(const char *csv) {
  // Subjects with demographics, one without a row (81) and a volume of no subject; one stored as .nii.
  static const char *const names[] = {
      "IXI002-Guys-0828-T1.nii.gz", "IXI012-HH-1211-T1.nii.gz", "IXI013-HH-1212-T1.nii.gz",
      "IXI014-HH-1236-T1.nii.gz",   "IXI015-HH-1258-T1.nii.gz", "IXI016-Guys-0697-T1.nii.gz",
      "IXI017-Guys-0698-T1.nii",    "IXI019-Guys-0702-T1.nii.gz", "IXI020-Guys-0700-T1.nii.gz",
      "IXI081-Guys-0000-T1.nii.gz", "phantom.nii.gz"};
  enum { N = sizeof names / sizeof *names };
  Path images, ds1, ds2;
  mkdir(in_dir(images, "images"), 0777);
  char path[1024];
  for (int i = 0; i < N; i++) {
    snprintf(path, sizeof path, "%s/%s", images, names[i]);
    write_phantom(path, GRID, GRID_MM, i);
  }
  // A corrupt volume (a truncated copy), a file named as NIfTI that is not, a file of another kind and a
  // second volume of one subject.
  size_t len;
  snprintf(path, sizeof path, "%s/%s", images, names[0]);
  char *gz = slurp(path, &len), bad[1024];
  snprintf(bad, sizeof bad, "%s/IXI021-Guys-0000-T1.nii.gz", images);
  spit(bad, gz, len / 2);
  free(gz);
  snprintf(bad, sizeof bad, "%s/IXI022-Guys-0000-T1.nii", images);
  spit(bad, "not a NIfTI file\n", 17);
  snprintf(bad, sizeof bad, "%s/notes.txt", images);
  spit(bad, "notes\n", 6);
  snprintf(bad, sizeof bad, "%s/IXI002-HH-0001-T1.nii.gz", images); // a second volume of subject 2
  write_phantom(bad, GRID, GRID_MM, 1);

  in_dir(ds1, "ds1"), in_dir(ds2, "ds2");
  int rc = run("prepare --images %s --demographics %s --out %s --threads 1 --test 0.2 --val 0.2", images, csv, ds1);
  CHECK(rc == 0, "prepare --threads 1: exit %d\n%s", rc, err_text);
  CHECK(strstr(err_text, "IXI021-Guys-0000-T1.nii.gz: ") && strstr(err_text, "IXI022-Guys-0000-T1.nii: ") &&
            strstr(err_text, "notes.txt: skipped: not a .nii") &&
            strstr(err_text, "IXI002-HH-0001-T1.nii.gz: subject 2 again (as in IXI002-Guys-0828-T1.nii.gz): skipped"),
        "each bad file has its message:\n%s", err_text);
  CHECK(strstr(out_text, "from 11 volumes; 3 skipped, 1 other files") != NULL, "the summary counts them:\n%s",
        out_text);
  CHECK(strstr(out_text, "s per volume") != NULL, "the summary gives the time per volume");
  rc = run("prepare --images %s --demographics %s --out %s --threads 2 --test 0.2 --val 0.2", images, csv, ds2);
  CHECK(rc == 0, "prepare --threads 2: exit %d\n%s", rc, err_text);
  const char *files[] = {"slices.bin", "manifest.tsv", "split.tsv"};
  for (int f = 0; f < 3; f++) {
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/%s", ds1, files[f]);
    snprintf(b, sizeof b, "%s/%s", ds2, files[f]);
    CHECK(same_bytes(a, b), "%s is the same for 1 and 2 threads", files[f]);
  }
  check_dataset(images, ds1, N);
  check_stopped(images);

  Row rows[MAX_VOLUMES];
  long long slices;
  snprintf(path, sizeof path, "%s/manifest.tsv", ds1);
  int n = read_manifest(path, rows, &slices), sets[3] = {0};
  for (int v = 0; v < n; v++) {
    sets[!strcmp(rows[v].set, "train") ? 0 : !strcmp(rows[v].set, "val") ? 1 : 2]++;
    if (!strcmp(rows[v].subject, "81") || !strcmp(rows[v].subject, "none"))
      CHECK(!strcmp(rows[v].set, "train"), "%s, without demographics, is in training (%s)", rows[v].file,
            rows[v].set);
    CHECK(rows[v].kept > 0 && rows[v].kept < rows[v].slices, "%s keeps %d of %d slices", rows[v].file, rows[v].kept,
          rows[v].slices);
  }
  CHECK(n == N && !strcmp(rows[N - 1].subject, "none") && !strcmp(rows[0].subject, "2"), "subjects from the names");
  // 9 stratified volumes: round(0.2 * 9) = 2 for test, round(0.2 * 7) = 1 for validation.
  CHECK(sets[0] == 8 && sets[1] == 1 && sets[2] == 2, "sets of %d, %d and %d volumes, want 8, 1 and 2", sets[0],
        sets[1], sets[2]);
  check_selection(images, &rows[0]);
  check_selection(images, &rows[6]);

  // Other selections and sizes run too.
  rc = run("prepare --images %s --out %s --select nonzero --size 64 --threads 2", images, ds2);
  CHECK(rc == 0, "prepare --select nonzero --size 64: exit %d\n%s", rc, err_text);
  rc = run("prepare --images %s --out %s --select mean --plane auto", images, ds2);
  CHECK(rc == 0, "prepare --select mean --plane auto: exit %d\n%s", rc, err_text);

  // The preview: 8 pairs, 4 to a row, of 128x128 slices with 4-pixel gaps.
  snprintf(path, sizeof path, "%s/preview.png", ds1);
  rc = run("preview --data %s --out %s --count 8 --seed 3 --epoch 2", ds1, path);
  CHECK(rc == 0, "preview: exit %d\n%s", rc, err_text);
  check_png(path, 4 * 2 * (128 + 4) + 4, 2 * (128 + 4) + 4);
  char again[1024];
  snprintf(again, sizeof again, "%s/again.png", ds1);
  run("preview --data %s --out %s --count 8 --seed 3 --epoch 2", ds1, again);
  CHECK(same_bytes(path, again), "the preview is the same for the same seed and epoch");
  rc = run("preview --data %s --out %s --count 3", ds1, path);
  CHECK(rc == 0, "preview --count 3: exit %d\n%s", rc, err_text);
  check_png(path, 3 * 2 * (128 + 4) + 4, 128 + 8);
  // The optional steps change the corrupted half; bad values are refused.
  rc = run("preview --data %s --out %s --count 8 --seed 3 --epoch 2 --rotate 20 --flip-ud 1 --cutout anywhere", ds1,
           path);
  CHECK(rc == 0 && !same_bytes(path, again), "preview with the optional steps: exit %d\n%s", rc, err_text);
  rc = run("preview --data %s --out %s --gamma 9", ds1, path);
  CHECK(rc == 2 && strstr(err_text, "--gamma wants a number from 1 to 3"), "a bad --gamma: exit %d\n%s", rc,
        err_text);
  remove_folder(ds1);
  remove_folder(ds2);
  remove_folder(images);
}

// ---- errors --------------------------------------------------------------------------------

static void test_errors(void) {
  Path empty, ds, bad, images, cache, cut;
  in_dir(ds, "ds"), in_dir(cache, "ds/slices.bin"), in_dir(cut, "cut.bin");
  mkdir(in_dir(empty, "empty"), 0777);
  int rc = run("prepare --images %s --out %s", empty, ds);
  CHECK(rc == 1 && strstr(err_text, "empty: no .nii or .nii.gz files"), "an empty folder fails (%d): %s", rc,
        err_text);
  CHECK(!exists(ds), "and writes nothing");
  rc = run("prepare --images %s/missing --out %s", empty, ds);
  CHECK(rc == 1 && strstr(err_text, "missing: cannot open the folder"), "a missing folder fails (%d): %s", rc,
        err_text);

  mkdir(in_dir(bad, "bad"), 0777);
  char path[1024];
  snprintf(path, sizeof path, "%s/IXI001-x.nii.gz", bad);
  spit(path, "\x1f\x8b garbage", 10);
  snprintf(path, sizeof path, "%s/flat.nii", bad);
  int dim[3] = {8, 8, 8};
  write_phantom(path, dim, (double[3]){1, 1, 1}, 0); // too small to hold a brain
  rc = run("prepare --images %s --out %s", bad, ds);
  CHECK(rc == 1 && strstr(err_text, "no usable volumes (2 skipped") && strstr(err_text, "flat.nii: brain mask"),
        "an all-bad folder fails (%d): %s", rc, err_text);
  CHECK(!exists(cache), "and leaves no cache");

  // An output that cannot be written: below a file, or where the cache's name is a folder (the rename
  // fails, after the slices were written): no cache, and no temporary file left.
  mkdir(in_dir(images, "images"), 0777);
  snprintf(path, sizeof path, "%s/IXI002-Guys-0828-T1.nii.gz", images);
  write_phantom(path, GRID, GRID_MM, 0);
  rc = run("prepare --images %s --out %s/IXI002-Guys-0828-T1.nii.gz/ds", images, images);
  CHECK(rc == 1 && strstr(err_text, "cannot make the folder"), "an output below a file fails (%d): %s", rc, err_text);
  mkdir(ds, 0777);
  mkdir(cache, 0777);
  rc = run("prepare --images %s --out %s", images, ds);
  CHECK(rc == 1 && strstr(err_text, "slices.bin: cannot rename"), "an unwritable cache fails (%d): %s", rc, err_text);
  int temps = temps_in(ds);
  struct stat st;
  CHECK(temps == 0 && stat(cache, &st) == 0 && S_ISDIR(st.st_mode),
        "it leaves no cache file and no temporary file (%d)", temps);
  rmdir(cache);

  // Caches that are cut short or corrupt are refused on open, with the reason.
  rc = run("prepare --images %s --out %s --size 16", images, ds);
  CHECK(rc == 0, "prepare at 16x16: exit %d\n%s", rc, err_text);
  size_t len;
  char *bytes = slurp(cache, &len), err[512];
  SliceCache c;
  CHECK(bytes && cache_open(cache, &c, err, sizeof err) == 0 && c.volumes == 1, "the cache opens");
  // One volume: its record is followed by the slice table, 8 bytes a slice.
  size_t volume_record = len - 8 * ((size_t)c.count + 1);
  cache_close(&c);
  struct {
    const char *what, *message;
    size_t at, len;
    unsigned char byte;
  } cases[] = {
      {"truncated by 100 bytes", "truncated or corrupt", 0, len - 100, 0},
      {"truncated to its header", "truncated or corrupt", 0, 64, 0},
      {"one byte long", "not a slice cache", 0, 1, 0},
      {"empty", "empty file", 0, 0, 0},
      {"longer", "truncated or corrupt", len, len + 1, 0},
      {"with a wrong magic", "not a slice cache", 0, len, 'X'},
      {"of another version", "cache version 9", 8, len, 9},
      {"with a huge slice count", "truncated or corrupt", 31, len, 0x7f},
      {"with a huge size", "corrupt header", 13, len, 0x7f},
      {"with a bad split set", "corrupt volume table", volume_record, len, 7},
      {"with a bad slice's volume", "corrupt slice table", len - 8, len, 1},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char *copy = calloc(cases[k].len + 1, 1);
    memcpy(copy, bytes, cases[k].len < len ? cases[k].len : len);
    if (cases[k].byte)
      copy[cases[k].at] = (char)cases[k].byte;
    spit(cut, copy, cases[k].len);
    free(copy);
    rc = cache_open(cut, &c, err, sizeof err);
    CHECK(rc == -1 && strstr(err, cut) && strstr(err, cases[k].message), "a cache %s is refused: %s", cases[k].what,
          rc ? err : "opened");
    if (!rc)
      cache_close(&c);
  }
  free(bytes);
  // The same through preview.
  rename(cut, cache);
  rc = run("preview --data %s --out %s", ds, path_in_dir("p.png"));
  CHECK(rc == 1 && strstr(err_text, "slices.bin: corrupt slice table") && !exists(path_in_dir("p.png")),
        "preview of a bad cache fails (%d): %s", rc, err_text);
  CHECK(cache_open(path_in_dir("nothing.bin"), &c, err, sizeof err) == -1 && strstr(err, "nothing.bin: cannot open"),
        "a missing cache: %s", err);

  // The command line.
  CHECK(run("--help") == 0 && strstr(out_text, "prepare") && strstr(out_text, "preview"), "--help");
  CHECK(run("prepare --help") == 0 && strstr(out_text, "--images DIR"), "prepare --help");
  CHECK(run("inspect --help") == 0 && strstr(out_text, "orientation"), "inspect --help");
  CHECK(run("preview --help") == 0 && strstr(out_text, "--epoch"), "preview --help");
  CHECK(run("--version") == 0 && !strncmp(out_text, "caedata ", 8), "--version");
  CHECK(run("") == 2 && strstr(err_text, "usage"), "no command: exit 2");
  CHECK(run("frobnicate") == 2 && strstr(err_text, "unknown command 'frobnicate'"), "an unknown command: exit 2");
  CHECK(run("prepare --images %s --out %s --fast", images, ds) == 2 && strstr(err_text, "unknown option --fast"),
        "an unknown option: exit 2: %s", err_text);
  CHECK(run("prepare --images %s", images) == 2 && strstr(err_text, "--images and --out are required"),
        "a missing option: exit 2: %s", err_text);
  CHECK(run("prepare --images %s --out %s --size 0", images, ds) == 2 && strstr(err_text, "--size wants"),
        "a bad size: exit 2: %s", err_text);
  CHECK(run("prepare --images %s --out %s --test 1", images, ds) == 2 && strstr(err_text, "--test wants"),
        "a bad fraction: exit 2: %s", err_text);
  CHECK(run("prepare --images %s --out %s --select best", images, ds) == 2 && strstr(err_text, "'best'"),
        "a bad choice: exit 2: %s", err_text);
  CHECK(run("prepare --images %s --out %s --seed -1", images, ds) == 2 && strstr(err_text, "--seed wants"),
        "a bad seed: exit 2: %s", err_text);
  CHECK(run("prepare --images %s --out", images) == 2 && strstr(err_text, "--out needs a value"),
        "a missing value: exit 2: %s", err_text);
  CHECK(run("inspect") == 2 && strstr(err_text, "which file"), "inspect without a file: exit 2");
  CHECK(run("inspect a.nii b.nii") == 2 && strstr(err_text, "unexpected argument 'b.nii'"), "inspect two files");
  CHECK(run("inspect %s/none.nii", empty) == 1 && strstr(err_text, "none.nii"), "inspect a missing file: %s",
        err_text);
  CHECK(run("preview --data %s", ds) == 2, "preview without --out: exit 2");
  remove_folder(ds);
  remove_folder(images);
  remove_folder(bad);
  remove_folder(empty);
}

// ---- Colin27 -------------------------------------------------------------------------------

// prepare and inspect are separate tests: each computes the brain mask, which takes seconds under the
// sanitizers.
static void test_colin_prepare(const char *ch2) {
  Path images, ds;
  in_dir(ds, "ds");
  mkdir(in_dir(images, "colin"), 0777);
  char link[1024];
  snprintf(link, sizeof link, "%s/ch2.nii.gz", images);
  CHECK(symlink(ch2, link) == 0, "link %s", ch2);
  int rc = run("prepare --images %s --out %s", images, ds);
  CHECK(rc == 0, "prepare Colin27: exit %d\n%s", rc, err_text);
  Row rows[MAX_VOLUMES];
  long long slices = -1;
  char path[1024];
  snprintf(path, sizeof path, "%s/manifest.tsv", ds);
  int n = read_manifest(path, rows, &slices);
  CHECK(n == 1 && rows[0].slices == 181 && rows[0].kept >= 100 && rows[0].kept <= 181 && slices == rows[0].kept &&
            !strchr(rows[0].ranges, ','),
        "Colin27 keeps %d of %d sagittal slices (%s), one block of 100 to 181 expected", n ? rows[0].kept : -1,
        n ? rows[0].slices : -1, n ? rows[0].ranges : "");
  CHECK(n == 1 && !strcmp(rows[0].subject, "none") && !strcmp(rows[0].set, "train"), "no subject, so training");
  remove_folder(ds);
  remove_folder(images);
}

static void test_colin_inspect(const char *ch2) {
  int rc = run("inspect %s", ch2);
  CHECK(rc == 0 && strstr(out_text, "181 x 217 x 181 voxels") && strstr(out_text, "1 x 1 x 1 mm") &&
            strstr(out_text, "uint8") && strstr(out_text, "orientation RAS (i: L to R, j: P to A, k: I to S)") &&
            strstr(out_text, "plane       sagittal; auto would choose sagittal") &&
            strstr(out_text, "181 sagittal slices"),
        "inspect Colin27 (%d):\n%s%s", rc, out_text, err_text);
  const char *brain = strstr(out_text, "brain       ");
  int kept = -1, first = -1, last = -1;
  CHECK(brain && sscanf(brain, "brain %d of 181 kept: %d-%d", &kept, &first, &last) == 3 && kept >= 100 &&
            kept <= 181 && last - first + 1 == kept,
        "the brain rule keeps one block of 100 to 181 slices: %d, %d-%d", kept, first, last);
  CHECK(strstr(out_text, "nonzero     ") && strstr(out_text, "mean        "), "and the other rules are shown");
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "phantom")) {
    write_phantom(argv[2], (int[3]){256, 256, 150}, (double[3]){0.9375, 0.9375, 1.2}, 0);
    return 0;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: test_data prepare|errors|colin-prepare|colin-inspect CAEDATA [IXI.csv|CH2] (see "
            "test_data.c)\n");
    return 2;
  }
  caedata = argv[2];
  if (!strncmp(argv[1], "colin", 5) && argc == 4 && !exists(argv[3]))
    return printf("skipped: %s is absent (Debian's mricron-data): Colin27 left out\n", argv[3]), TEST_SKIPPED;
  make_dir("caedata");
  if (!strcmp(argv[1], "prepare") && argc == 4)
    test_prepare(argv[3]);
  else if (!strcmp(argv[1], "errors"))
    test_errors();
  else if (!strcmp(argv[1], "colin-prepare") && argc == 4)
    test_colin_prepare(argv[3]);
  else if (!strcmp(argv[1], "colin-inspect") && argc == 4)
    test_colin_inspect(argv[3]);
  else
    CHECK(0, "unknown test %s", argv[1]);
  return finish();
}
