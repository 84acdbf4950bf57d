// fuzz_volume.c: the NIfTI reader on arbitrary bytes. libnifti reads only files, so the bytes go to one:
// named .nii.gz when they start with the gzip magic; otherwise named .nii and also, gzip-compressed, as
// .nii.gz, which must read the same. Beyond the sanitizers it checks the promises of volume.h: a rejected
// file says why in one line naming it and leaves the volume empty; an accepted one has sane dims and voxel
// sizes, finite data, a one-to-one axis assignment, and slices of every plane of the documented size.
#include "volume.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64], nii[96], niigz[96];

static void remove_files(void) {
  unlink(nii);
  unlink(niigz);
  rmdir(dir);
}

static void write_file(const char *path, const uint8_t *data, size_t size, int compress) {
  int ok;
  if (compress) {
    gzFile f = gzopen(path, "wb");
    ok = f && (size == 0 || gzwrite(f, data, (unsigned)size) == (int)size);
    ok = f && gzclose(f) == Z_OK && ok;
  } else {
    FILE *f = fopen(path, "wb");
    ok = f && fwrite(data, 1, size, f) == size;
    ok = f && !fclose(f) && ok;
  }
  if (!ok) {
    fprintf(stderr, "fuzz_volume: cannot write %s\n", path);
    abort();
  }
}

static size_t voxels(const Volume *v) { return (size_t)v->dim[0] * v->dim[1] * v->dim[2]; }

static int read_checked(const char *path, Volume *v) {
  char err[512];
  if (vol_read(path, v, err, sizeof err)) {
    size_t n = strlen(path);
    Volume empty;
    memset(&empty, 0, sizeof empty);
    if (strncmp(err, path, n) || strncmp(err + n, ": ", 2) || !err[n + 2] || strchr(err, '\n') ||
        memcmp(v, &empty, sizeof *v))
      abort();
    return -1;
  }
  int used[3] = {0, 0, 0};
  for (int a = 0; a < 3; a++) {
    if (v->dim[a] < 1 || v->dim[a] > 4096 || !(v->voxel[a] > 0 && isfinite(v->voxel[a])) || v->axis_of[a] < 0 ||
        v->axis_of[a] > 2 || used[v->axis_of[a]]++ || (v->flip_of[a] != 0 && v->flip_of[a] != 1))
      abort();
  }
  size_t n = voxels(v);
  if (n > (size_t)1 << 28)
    abort();
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v->data[i]))
      abort();
  if (vol_plane(v, PLANE_AUTO) > PLANE_AXIAL)
    abort();
  float *slice = malloc(n * sizeof *slice);
  for (Plane p = PLANE_SAGITTAL; p <= PLANE_AXIAL; p++) {
    int count = vol_slices(v, p), h, w;
    if (count != v->dim[v->axis_of[p]])
      abort();
    vol_slice(v, p, count - 1, slice, &h, &w);
    if ((size_t)h * w * count != n)
      abort();
  }
  free(slice);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!dir[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/caec_fuzzvol_XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(dir))
      abort();
    snprintf(nii, sizeof nii, "%s/in.nii", dir);
    snprintf(niigz, sizeof niigz, "%s/in.nii.gz", dir);
    atexit(remove_files);
  }
  int gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  Volume a, b;
  write_file(gzip ? niigz : nii, data, size, 0);
  int rc = read_checked(gzip ? niigz : nii, &a);
  if (!gzip) {
    write_file(niigz, data, size, 1);
    if (read_checked(niigz, &b) != rc ||
        (!rc && (memcmp(a.dim, b.dim, sizeof a.dim) || memcmp(a.voxel, b.voxel, sizeof a.voxel) ||
                 memcmp(a.to_ras, b.to_ras, sizeof a.to_ras) || memcmp(a.axis_of, b.axis_of, sizeof a.axis_of) ||
                 memcmp(a.flip_of, b.flip_of, sizeof a.flip_of) ||
                 memcmp(a.data, b.data, voxels(&a) * sizeof *a.data))))
      abort();
    if (!rc)
      vol_free(&b);
  }
  if (!rc)
    vol_free(&a);
  return 0;
}
