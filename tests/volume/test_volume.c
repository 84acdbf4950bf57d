// test_volume.c: the NIfTI reader and canonical slices (volume.h).
//
// With no arguments: an asymmetric pattern stored in five orientations, with the sform, the qform or
// neither, in every datatype and container (NIfTI-1 and -2, .nii and .nii.gz, either byte order), whose
// slices must all be exactly those computed from the pattern itself; the AUTO plane rule; malformed files
// with the message each must give, and not a word from libnifti. With three arguments, Colin27 and ITK's T1
// example (with its skull-strip label): their mid-sagittal slices must come out the same way up.
#include "volume.h"
#include "../testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


// vol_read, with whatever it prints to stderr caught: it must print nothing.
static int read_quietly(const char *path, Volume *v, char *err, size_t errlen) {
  char *log = path_in_dir("stderr.log");
  int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fd, 2);
  int rc = vol_read(path, v, err, errlen);
  dup2(saved, 2);
  close(saved);
  close(fd);
  struct stat st;
  CHECK(stat(log, &st) == 0 && st.st_size == 0, "%s: vol_read printed to stderr", path);
  return rc;
}

// ---- writing NIfTI files -------------------------------------------------------

typedef union Header {
  nifti_1_header n1;
  nifti_2_header n2;
} Header;

// nim's header as NIfTI-`version` (host order, data right after the 4-byte extender); returns its size.
static size_t header_of(nifti_image *nim, int version, Header *h) {
  if (version == 1) {
    nifti_convert_nim2n1hdr(nim, &h->n1);
    h->n1.vox_offset = 352;
    return sizeof h->n1;
  }
  nim->nifti_type = NIFTI_FTYPE_NIFTI2_1;
  nifti_convert_nim2n2hdr(nim, &h->n2);
  h->n2.vox_offset = 544;
  return sizeof h->n2;
}

// A header, the extender (extension bytes when ext is set) and data, gzip-compressed when path ends in .gz.
static void write_parts(const char *path, const void *hdr, size_t hsize, const void *ext, size_t extlen,
                        const void *data, size_t nbytes) {
  static const char no_extension[4];
  znzFile f = znzopen(path, "wb", nifti_is_gzfile(path));
  if (znz_isnull(f) || znzwrite(hdr, 1, hsize, f) != hsize ||
      znzwrite(ext ? ext : no_extension, 1, ext ? extlen : 4, f) != (ext ? extlen : 4) ||
      znzwrite(data, 1, nbytes, f) != nbytes) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  znzclose(f);
}

static void write_nifti(const char *path, nifti_image *nim, int version, int big_endian) {
  Header h;
  size_t hsize = header_of(nim, version, &h), nbytes = (size_t)nim->nvox * nim->nbyper;
  unsigned char *data = malloc(nbytes);
  memcpy(data, nim->data, nbytes);
  if (big_endian) {
    swap_nifti_header(&h, version);
    if (nim->swapsize > 1)
      nifti_swap_Nbytes(nim->nvox, nim->swapsize, data);
  }
  write_parts(path, &h, hsize, NULL, 0, data, nbytes);
  free(data);
}

// ---- the pattern ---------------------------------------------------------------

// A pattern on a world grid of N voxels (index g[a] grows towards R, A, S), all values distinct, even and
// in 10..248 so that uint8 holds them and int16 holds them as 2 * stored + 10.
enum { NX = 4, NY = 5, NZ = 6 };
static const int N[3] = {NX, NY, NZ};
static const double SIZE[3] = {1.0, 1.0, 1.5}; // mm, so AUTO picks axial
static double pattern(const int g[3]) { return 10 + 2 * (g[0] + NX * g[1] + NX * NY * g[2]); }

// How a file stores the grid: voxel axis c runs along world axis axis[c], towards + when sign[c] > 0; the
// whole grid may be turned about the S axis too.
typedef struct Order {
  const char *name;
  int axis[3], sign[3];
  double degrees;
} Order;

static const Order orders[] = {
    {"RAS", {0, 1, 2}, {1, 1, 1}, 0},
    {"LPS", {0, 1, 2}, {-1, -1, 1}, 0},
    {"PSR (IXI)", {1, 2, 0}, {-1, 1, 1}, 0},
    {"LSA (ITK's coronal slices)", {0, 2, 1}, {-1, 1, 1}, 0},
    {"PSR turned 25 degrees", {1, 2, 0}, {-1, 1, 1}, 25},
};

static void put(void *data, int datatype, size_t i, double x) {
  switch (datatype) {
  case DT_UINT8: ((uint8_t *)data)[i] = (uint8_t)x; break;
  case DT_INT8: ((int8_t *)data)[i] = (int8_t)x; break;
  case DT_UINT16: ((uint16_t *)data)[i] = (uint16_t)x; break;
  case DT_INT16: ((int16_t *)data)[i] = (int16_t)x; break;
  case DT_UINT32: ((uint32_t *)data)[i] = (uint32_t)x; break;
  case DT_INT32: ((int32_t *)data)[i] = (int32_t)x; break;
  case DT_UINT64: ((uint64_t *)data)[i] = (uint64_t)x; break;
  case DT_INT64: ((int64_t *)data)[i] = (int64_t)x; break;
  case DT_FLOAT32: ((float *)data)[i] = (float)x; break;
  case DT_FLOAT64: ((double *)data)[i] = x; break;
  }
}

// The voxel-to-world matrix of order o.
static nifti_dmat44 matrix_of(const Order *o) {
  nifti_dmat44 m = {{{0}}};
  for (int c = 0; c < 3; c++) {
    int a = o->axis[c];
    m.m[a][c] = o->sign[c] * SIZE[a];
    m.m[a][3] = -20 - 10 * a + (o->sign[c] < 0 ? (N[a] - 1) * SIZE[a] : 0);
  }
  m.m[3][3] = 1;
  double t = o->degrees * M_PI / 180, turn[4][4] = {{cos(t), -sin(t), 0, 0}, {sin(t), cos(t), 0, 0}, {0, 0, 1, 0}};
  turn[3][3] = 1;
  nifti_dmat44 r = {{{0}}};
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 4; k++)
        r.m[i][j] += turn[i][k] * m.m[k][j];
  return r;
}

static void set_qform(nifti_image *nim, nifti_dmat44 m) {
  double dx, dy, dz;
  nifti_dmat44_to_quatern(m, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d, &nim->qoffset_x, &nim->qoffset_y,
                          &nim->qoffset_z, &dx, &dy, &dz, &nim->qfac);
  nim->qto_xyz = m;
}

// The pattern stored in order o as datatype (value = slope * stored + inter when slope is set), oriented by
// the sform ('s'), the qform ('q') or neither ('n'). The unused one of the two holds a wrong matrix, which
// the reader must ignore.
static nifti_image *make_image(const Order *o, int datatype, double slope, double inter, char xform) {
  int64_t dims[8] = {3, 1, 1, 1, 1, 1, 1, 1};
  for (int c = 0; c < 3; c++)
    dims[c + 1] = N[o->axis[c]];
  nifti_image *nim = nifti_make_new_nim(dims, datatype, 1);
  for (int c = 0; c < 3; c++)
    nim->pixdim[c + 1] = SIZE[o->axis[c]];
  nim->dx = nim->pixdim[1], nim->dy = nim->pixdim[2], nim->dz = nim->pixdim[3];
  nim->scl_slope = slope;
  nim->scl_inter = inter;
  size_t i = 0;
  for (int k = 0; k < dims[3]; k++)
    for (int j = 0; j < dims[2]; j++)
      for (int ii = 0; ii < dims[1]; ii++, i++) {
        int idx[3] = {ii, j, k}, g[3];
        for (int c = 0; c < 3; c++)
          g[o->axis[c]] = o->sign[c] > 0 ? idx[c] : N[o->axis[c]] - 1 - idx[c];
        put(nim->data, datatype, i, slope ? (pattern(g) - inter) / slope : pattern(g));
      }
  nifti_dmat44 right = matrix_of(o), wrong = matrix_of(&orders[3]);
  if (o == &orders[3])
    wrong = matrix_of(&orders[1]);
  nim->sto_xyz = xform == 's' ? right : wrong;
  nim->sform_code = xform == 's' ? NIFTI_XFORM_ALIGNED_ANAT : 0;
  set_qform(nim, xform == 'q' ? right : wrong);
  nim->qform_code = xform == 'n' ? 0 : NIFTI_XFORM_SCANNER_ANAT;
  return nim;
}

// Slice s of plane p as volume.h defines it, from the pattern on the world grid.
static void expected_slice(Plane p, int s, float *out, int *h, int *w) {
  *h = p == PLANE_AXIAL ? NY : NZ;
  *w = p == PLANE_SAGITTAL ? NY : NX;
  for (int r = 0; r < *h; r++)
    for (int c = 0; c < *w; c++) {
      int sag[3] = {NX - 1 - s, NY - 1 - c, NZ - 1 - r}, cor[3] = {NX - 1 - c, NY - 1 - s, NZ - 1 - r},
          axi[3] = {NX - 1 - c, NY - 1 - r, s};
      *out++ = (float)pattern(p == PLANE_SAGITTAL ? sag : p == PLANE_CORONAL ? cor : axi);
    }
}

static const char *const plane_names[] = {"sagittal", "coronal", "axial", "auto"};

// Reads path, which holds the pattern stored in order o, and checks the geometry and every slice.
static void check_pattern_file(const char *what, const char *path, const Order *o) {
  Volume v;
  char err[512];
  if (read_quietly(path, &v, err, sizeof err)) {
    CHECK(0, "%s: %s", what, err);
    return;
  }
  int geometry_ok = 1;
  for (int c = 0; c < 3; c++) {
    int a = o->axis[c];
    geometry_ok &= v.dim[c] == N[a] && v.voxel[c] == SIZE[a] && v.axis_of[a] == c && v.flip_of[a] == (o->sign[c] < 0);
  }
  CHECK(geometry_ok, "%s: dims %d %d %d, voxel %g %g %g, axis_of %d %d %d, flip_of %d %d %d", what, v.dim[0],
        v.dim[1], v.dim[2], v.voxel[0], v.voxel[1], v.voxel[2], v.axis_of[0], v.axis_of[1], v.axis_of[2],
        v.flip_of[0], v.flip_of[1], v.flip_of[2]);
  CHECK(vol_plane(&v, PLANE_AUTO) == PLANE_AXIAL, "%s: AUTO picks %s", what, plane_names[vol_plane(&v, PLANE_AUTO)]);
  for (Plane p = PLANE_SAGITTAL; p <= PLANE_AXIAL; p++) {
    CHECK(vol_slices(&v, p) == N[p], "%s: %d %s slices", what, vol_slices(&v, p), plane_names[p]);
    int same = 1;
    for (int s = 0; s < N[p]; s++) {
      float got[NX * NY * NZ], want[NX * NY * NZ];
      int h, w, eh, ew;
      vol_slice(&v, p, s, got, &h, &w);
      expected_slice(p, s, want, &eh, &ew);
      same &= h == eh && w == ew && !memcmp(got, want, sizeof(float) * (size_t)(h * w));
    }
    CHECK(same, "%s: %s slices differ from the pattern's", what, plane_names[p]);
    // vol_put_slice undoes vol_slice: every slice put back rebuilds the stored voxels exactly.
    float rebuilt[NX * NY * NZ] = {0}, image[NX * NY * NZ];
    Volume copy = v;
    copy.data = rebuilt;
    for (int s = 0; s < N[p]; s++) {
      int h, w;
      vol_slice(&v, p, s, image, &h, &w);
      vol_put_slice(&copy, p, s, image);
    }
    CHECK(!memcmp(rebuilt, v.data, sizeof rebuilt), "%s: %s slices put back differ from the volume", what,
          plane_names[p]);
  }
  vol_free(&v);
  CHECK(!v.data, "%s: vol_free leaves data", what);
}

static void test_orientations(void) {
  static const struct {
    const char *name;
    int datatype;
    double slope, inter;
  } types[] = {
      {"uint8", DT_UINT8, 0, 0},
      {"int16 scaled", DT_INT16, 2, 10},
      {"float32", DT_FLOAT32, 0, 0},
      {"float64", DT_FLOAT64, 1, 0},
  };
  int files = 0;
  for (size_t o = 0; o < sizeof orders / sizeof *orders; o++)
    for (const char *x = "sqn"; *x; x++) {
      if (*x == 'n' && o > 0)
        continue; // without a matrix the pixdims say RAS
      for (size_t t = 0; t < sizeof types / sizeof *types; t++)
        for (int version = 1; version <= 2; version++)
          for (int gz = 0; gz <= 1; gz++)
            for (int big = 0; big <= 1; big++) {
              nifti_image *nim = make_image(&orders[o], types[t].datatype, types[t].slope, types[t].inter, *x);
              char what[200], *path = path_in_dir(gz ? "pattern.nii.gz" : "pattern.nii");
              snprintf(what, sizeof what, "%s, %s, %s, NIfTI-%d%s%s", orders[o].name,
                       *x == 's' ? "sform" : *x == 'q' ? "qform only" : "no matrix", types[t].name, version,
                       gz ? ", .nii.gz" : "", big ? ", big-endian" : "");
              write_nifti(path, nim, version, big);
              check_pattern_file(what, path, &orders[o]);
              nifti_image_free(nim);
              unlink(path);
              files++;
            }
    }
  printf("%d pattern files in every orientation, datatype and container\n", files);

  static const int more_types[] = {DT_INT8, DT_UINT16, DT_INT32, DT_UINT32, DT_INT64, DT_UINT64};
  for (size_t t = 0; t < sizeof more_types / sizeof *more_types; t++) {
    nifti_image *nim = make_image(&orders[2], more_types[t], 2, 10, 's');
    char what[100], *path = path_in_dir("pattern.nii");
    snprintf(what, sizeof what, "PSR, %s scaled", nifti_datatype_string(more_types[t]));
    write_nifti(path, nim, 1, 0);
    check_pattern_file(what, path, &orders[2]);
    nifti_image_free(nim);
  }

  // A 4D file of one volume, a real extension before the data, and a .hdr/.img pair.
  nifti_image *nim = make_image(&orders[1], DT_FLOAT32, 0, 0, 's');
  nim->ndim = nim->dim[0] = 4;
  nim->nt = nim->dim[4] = 1;
  Header h;
  size_t hsize = header_of(nim, 1, &h), nbytes = (size_t)nim->nvox * nim->nbyper;
  write_parts(path_in_dir("4d.nii"), &h, hsize, NULL, 0, nim->data, nbytes);
  check_pattern_file("4D of one volume", path_in_dir("4d.nii"), &orders[1]);
  // The extender says an extension follows: 16 bytes (size, code 6 = comment, 8 bytes of text).
  static const unsigned char ext[20] = {1, 0, 0, 0, 16, 0, 0, 0, 6, 0, 0, 0, 'c', 'o', 'm', 'm', 'e', 'n', 't', 0};
  nim->ndim = nim->dim[0] = 3;
  hsize = header_of(nim, 1, &h);
  h.n1.vox_offset = 368;
  write_parts(path_in_dir("ext.nii"), &h, hsize, ext, sizeof ext, nim->data, nbytes);
  check_pattern_file("with an extension", path_in_dir("ext.nii"), &orders[1]);
  nim->nifti_type = NIFTI_FTYPE_NIFTI1_2;
  nifti_convert_nim2n1hdr(nim, &h.n1);
  h.n1.vox_offset = 0;
  spit(path_in_dir("pair.hdr"), &h.n1, sizeof h.n1);
  spit(path_in_dir("pair.img"), nim->data, nbytes);
  check_pattern_file(".hdr/.img pair", path_in_dir("pair.hdr"), &orders[1]);
  nifti_image_free(nim);
}

// The AUTO rule on the geometry alone: the plane across the coarsest axis, ties to sagittal, then coronal.
static void test_auto_plane(void) {
  static const struct {
    const char *name;
    double voxel[3];
    int axis_of[3];
    Plane want;
  } cases[] = {
      {"isotropic", {1, 1, 1}, {0, 1, 2}, PLANE_SAGITTAL},
      {"IXI: 0.9375 x 0.9375 x 1.2 mm, PSR", {0.9375, 0.9375, 1.2}, {2, 0, 1}, PLANE_SAGITTAL},
      {"ITK: 2 x 2 x 3 mm, LSA", {2, 2, 3}, {0, 2, 1}, PLANE_CORONAL},
      {"thick axial slices", {0.5, 0.5, 5}, {0, 1, 2}, PLANE_AXIAL},
      {"coronal and axial tie", {1, 2, 2}, {0, 1, 2}, PLANE_CORONAL},
      {"float32 rounding noise", {1, 1.0000001, 0.9999999}, {0, 1, 2}, PLANE_SAGITTAL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    Volume v = {.dim = {10, 10, 10}};
    memcpy(v.voxel, cases[i].voxel, sizeof v.voxel);
    memcpy(v.axis_of, cases[i].axis_of, sizeof v.axis_of);
    Plane got = vol_plane(&v, PLANE_AUTO);
    CHECK(got == cases[i].want, "%s: AUTO picks %s, want %s", cases[i].name, plane_names[got],
          plane_names[cases[i].want]);
    for (Plane p = PLANE_SAGITTAL; p <= PLANE_AXIAL; p++)
      CHECK(vol_plane(&v, p) == p, "%s: %s is kept", cases[i].name, plane_names[p]);
  }
}

// ---- malformed files -----------------------------------------------------------

static void expect_error(const char *path, const char *want) {
  Volume v;
  char err[512];
  memset(&v, 0x5a, sizeof v);
  int rc = read_quietly(path, &v, err, sizeof err);
  size_t n = strlen(path);
  CHECK(rc == -1 && !strncmp(err, path, n) && !strncmp(err + n, ": ", 2) && strstr(err + n, want) &&
            !strchr(err, '\n'),
        "%s: got rc %d, '%s', want '%s'", path, rc, rc ? err : "", want);
  Volume empty;
  memset(&empty, 0, sizeof empty);
  CHECK(!memcmp(&v, &empty, sizeof v), "%s: the volume is not left empty", path);
  if (!rc)
    vol_free(&v);
}

// A 4x4x4 float32 NIfTI file (values 0 to 63) with one thing changed in its header (n1 or n2, as the
// version says) or data.
typedef struct Edited {
  Header h;
  float data[64];
} Edited;
typedef void (*Edit)(Edited *e);

static void write_edited(const char *name, int version, Edit edit) {
  int64_t dims[8] = {3, 4, 4, 4, 1, 1, 1, 1};
  nifti_image *nim = nifti_make_new_nim(dims, DT_FLOAT32, 1);
  Edited e;
  size_t hsize = header_of(nim, version, &e.h);
  for (int i = 0; i < 64; i++)
    e.data[i] = (float)i;
  edit(&e);
  write_parts(path_in_dir(name), &e.h, hsize, NULL, 0, e.data, sizeof e.data);
  nifti_image_free(nim);
}

static void huge_dims(Edited *e) { e->h.n2.dim[1] = e->h.n2.dim[2] = e->h.n2.dim[3] = 100000; }
static void too_many_voxels(Edited *e) { e->h.n2.dim[1] = e->h.n2.dim[2] = e->h.n2.dim[3] = 4096; }
static void negative_dim(Edited *e) { e->h.n1.dim[2] = -5; }
static void zero_dim(Edited *e) { e->h.n1.dim[3] = 0; }
static void image_2d(Edited *e) { e->h.n1.dim[0] = 2; }
static void image_5d(Edited *e) { e->h.n1.dim[0] = 5, e->h.n1.dim[4] = 1, e->h.n1.dim[5] = 2; }
static void volumes_3(Edited *e) { e->h.n1.dim[0] = 4, e->h.n1.dim[4] = 3; }
static void ndim_9(Edited *e) { e->h.n1.dim[0] = 9; }
static void nan_voxel(Edited *e) { e->data[21] = NAN; }
static void inf_voxel(Edited *e) { e->data[63] = -INFINITY; }
static void overflow_scaled(Edited *e) { e->h.n1.scl_slope = 1e38f; }
static void complex64(Edited *e) { e->h.n1.datatype = DT_COMPLEX64, e->h.n1.bitpix = 64; }
static void rgb24(Edited *e) { e->h.n1.datatype = DT_RGB24, e->h.n1.bitpix = 24; }
static void datatype_7(Edited *e) { e->h.n1.datatype = 7; }
static void zero_voxel(Edited *e) { e->h.n1.pixdim[2] = 0; }
static void nan_voxel_size(Edited *e) { e->h.n1.pixdim[3] = NAN; }
static void flat_sform(Edited *e) {
  nifti_1_header *h = &e->h.n1;
  h->sform_code = 1;
  memset(h->srow_x, 0, sizeof h->srow_x);
  h->srow_y[1] = h->srow_z[2] = 1;
}
static void inf_sform(Edited *e) {
  nifti_1_header *h = &e->h.n1;
  h->sform_code = 1;
  h->srow_x[0] = h->srow_y[1] = 1, h->srow_z[2] = INFINITY;
}
static void negative_offset(Edited *e) { e->h.n1.vox_offset = -1000; }
static void huge_offset(Edited *e) { e->h.n1.vox_offset = 1e30f; }
static void far_offset(Edited *e) { e->h.n1.vox_offset = 2e9f; }
static void nan_slope(Edited *e) { e->h.n1.scl_slope = NAN; }
static void analyze(Edited *e) { memset(e->h.n1.magic, 0, 4); }

static void test_malformed(void) {
  expect_error(path_in_dir("missing.nii"), "No such file or directory");
  expect_error(dir, "Is a directory");
  spit(path_in_dir("empty.nii"), "", 0);
  expect_error(path_in_dir("empty.nii"), "empty file");
  unsigned char junk[400];
  for (int i = 0; i < 400; i++)
    junk[i] = (unsigned char)(i * 37 + 11);
  spit(path_in_dir("junk.nii"), junk, sizeof junk);
  expect_error(path_in_dir("junk.nii"), "not a NIfTI-1 or NIfTI-2 file");
  spit(path_in_dir("junk.nii.gz"), junk, sizeof junk);
  expect_error(path_in_dir("junk.nii.gz"), "not a NIfTI-1 or NIfTI-2 file");

  static const struct {
    const char *name;
    int version;
    Edit edit;
    const char *want;
  } cases[] = {
      {"huge_dims.nii", 2, huge_dims, "dimensions 100000 x 100000 x 100000 out of range (1 to 4096 each)"},
      {"too_many_voxels.nii", 2, too_many_voxels, "4096 x 4096 x 4096 voxels, more than the limit of 2^28"},
      {"negative_dim.nii", 1, negative_dim, "dimensions 4 x -5 x 4 out of range"},
      {"zero_dim.nii", 1, zero_dim, "dimensions 4 x 4 x 0 out of range"},
      {"2d.nii", 1, image_2d, "2D image, expected a 3D volume"},
      {"5d.nii", 1, image_5d, "5D image, expected a 3D volume"},
      {"4d.nii", 1, volumes_3, "4D image of 3 volumes, expected one volume"},
      {"ndim_9.nii", 1, ndim_9, "bad number of dimensions 9"},
      {"nan.nii", 1, nan_voxel, "NaN or infinite value (nan) at voxel (1, 1, 1)"},
      {"inf.nii.gz", 2, inf_voxel, "NaN or infinite value (-inf) at voxel (3, 3, 3)"},
      {"overflow.nii", 1, overflow_scaled, "value beyond float range (4e+38) at voxel (0, 1, 0)"},
      {"complex.nii", 1, complex64, "unsupported datatype COMPLEX64 (32)"},
      {"rgb.nii", 1, rgb24, "unsupported datatype RGB24 (128)"},
      {"datatype_7.nii", 1, datatype_7, "unsupported datatype"},
      {"zero_voxel.nii", 1, zero_voxel, "bad voxel size 1 x 0 x 1 mm"},
      {"nan_voxel.nii", 1, nan_voxel_size, "bad voxel size 1 x 1 x nan mm"},
      {"flat_sform.nii", 1, flat_sform, "degenerate or non-finite sform matrix"},
      {"inf_sform.nii", 1, inf_sform, "degenerate or non-finite sform matrix"},
      {"negative_offset.nii", 1, negative_offset, "bad vox_offset -1000"},
      {"huge_offset.nii", 1, huge_offset, "bad vox_offset 1e+30"},
      {"far_offset.nii", 1, far_offset, "truncated: the data end after 0 of 64 voxels"},
      {"far_offset.nii.gz", 1, far_offset, "truncated"},
      {"nan_slope.nii", 1, nan_slope, "bad scl_slope nan"},
      {"analyze.nii", 1, analyze, "no NIfTI magic (an ANALYZE 7.5 file?)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    write_edited(cases[i].name, cases[i].version, cases[i].edit);
    expect_error(path_in_dir(cases[i].name), cases[i].want);
  }

  // A valid file under a name libnifti does not take for NIfTI, then cut short in several ways.
  nifti_image *nim = make_image(&orders[0], DT_FLOAT32, 0, 0, 's');
  free(nim->data);
  nim->nx = nim->ny = nim->nz = nim->dim[1] = nim->dim[2] = nim->dim[3] = 32;
  nim->nvox = 32 * 32 * 32;
  nim->data = malloc(nim->nvox * sizeof(float));
  for (int i = 0; i < 32 * 32 * 32; i++)
    ((float *)nim->data)[i] = (float)((i * 7919) % 1000); // poorly compressible
  write_nifti(path_in_dir("scan.txt"), nim, 1, 0);
  expect_error(path_in_dir("scan.txt"), "not a NIfTI file name");
  write_nifti(path_in_dir("whole.nii.gz"), nim, 1, 0);
  write_nifti(path_in_dir("whole.nii"), nim, 2, 0);
  nifti_image_free(nim);
  size_t len;
  unsigned char *gz = slurp(path_in_dir("whole.nii.gz"), &len), *plain = slurp(path_in_dir("whole.nii"), &len);
  spit(path_in_dir("cut_data.nii.gz"), gz, 2000);
  expect_error(path_in_dir("cut_data.nii.gz"), "truncated: the data end after ");
  spit(path_in_dir("cut_header.nii.gz"), gz, 60);
  expect_error(path_in_dir("cut_header.nii.gz"), ": truncated");
  spit(path_in_dir("cut_data.nii"), plain, len - 5);
  expect_error(path_in_dir("cut_data.nii"), "truncated: the data end after 32766 of 32768 voxels");
  spit(path_in_dir("cut_header.nii"), plain, 300);
  expect_error(path_in_dir("cut_header.nii"), "truncated: the header ends early");
  free(gz);
  free(plain);
}

// ---- real scans ----------------------------------------------------------------

// Colin27's brain (ch2bet) and the brain of ITK's T1 (the T1 where its skull-strip label is set), their
// mid-sagittal slices compared. Whole heads compare poorly: the two fields of view cut the face and neck
// differently, and the scalp's fat is bright in one and faint in the other.

// img (h x w pixels of dy x dx mm) resampled, bilinear, to S x S pixels covering FOV x FOV mm about its
// centre of mass and turned by deg; 0 outside the image.
enum { S = 64 };
static const double FOV = 200;
static void resample(const float *img, int h, int w, double dy, double dx, double deg, double *out) {
  double sum = 0, cy = 0, cx = 0, co = cos(deg * M_PI / 180), si = sin(deg * M_PI / 180);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      sum += img[y * w + x], cy += y * img[y * w + x], cx += x * img[y * w + x];
  cy /= sum, cx /= sum;
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      double u = (y + 0.5 - S / 2.0) * FOV / S, v = (x + 0.5 - S / 2.0) * FOV / S;
      double fy = cy + (co * u - si * v) / dy, fx = cx + (si * u + co * v) / dx;
      int y0 = (int)floor(fy), x0 = (int)floor(fx);
      double ty = fy - y0, tx = fx - x0, sample = 0;
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
          if (y0 + i >= 0 && y0 + i < h && x0 + j >= 0 && x0 + j < w)
            sample += (i ? ty : 1 - ty) * (j ? tx : 1 - tx) * img[(y0 + i) * w + x0 + j];
      out[y * S + x] = sample;
    }
}

static double correlation(const double *a, const double *b) {
  double ma = 0, mb = 0, ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < S * S; i++)
    ma += a[i] / (S * S), mb += b[i] / (S * S);
  for (int i = 0; i < S * S; i++)
    ab += (a[i] - ma) * (b[i] - mb), aa += (a[i] - ma) * (a[i] - ma), bb += (b[i] - mb) * (b[i] - mb);
  return ab / sqrt(aa * bb);
}

typedef struct Slice {
  float *pix;
  int h, w;
  double dy, dx; // mm per row, per column
} Slice;

// The mid-sagittal slice of path, after checking and printing the geometry; pix is NULL on failure.
static Slice mid_sagittal(const char *path, const int dims[3], const double voxel[3], Plane auto_plane) {
  Slice sl = {0};
  Volume v;
  char err[512];
  if (read_quietly(path, &v, err, sizeof err)) {
    CHECK(0, "%s", err);
    return sl;
  }
  Plane p = vol_plane(&v, PLANE_AUTO);
  printf("%s: %d x %d x %d voxels of %g x %g x %g mm; voxel axes %d, %d, %d run along R-L, A-P, S-I, "
         "flipped %d, %d, %d; AUTO picks %s\n",
         path, v.dim[0], v.dim[1], v.dim[2], v.voxel[0], v.voxel[1], v.voxel[2], v.axis_of[0], v.axis_of[1],
         v.axis_of[2], v.flip_of[0], v.flip_of[1], v.flip_of[2], plane_names[p]);
  CHECK(v.dim[0] == dims[0] && v.dim[1] == dims[1] && v.dim[2] == dims[2], "%s: dims", path);
  CHECK(v.voxel[0] == voxel[0] && v.voxel[1] == voxel[1] && v.voxel[2] == voxel[2], "%s: voxel sizes", path);
  CHECK(p == auto_plane, "%s: AUTO picks %s, want %s", path, plane_names[p], plane_names[auto_plane]);
  // The rule itself: the plane picked is across the coarsest axis, so its in-plane voxels are the finest.
  for (Plane q = PLANE_SAGITTAL; q <= PLANE_AXIAL; q++)
    CHECK(!(v.voxel[v.axis_of[q]] > v.voxel[v.axis_of[p]]), "%s: %s has finer in-plane voxels than %s", path,
          plane_names[q], plane_names[p]);
  int n = vol_slices(&v, PLANE_SAGITTAL);
  sl.pix = malloc(sizeof(float) * (size_t)v.dim[0] * v.dim[1] * v.dim[2]);
  vol_slice(&v, PLANE_SAGITTAL, n / 2, sl.pix, &sl.h, &sl.w);
  sl.dy = v.voxel[v.axis_of[2]], sl.dx = v.voxel[v.axis_of[1]];
  printf("  mid-sagittal slice %d of %d: %d x %d pixels of %g x %g mm\n", n / 2, n, sl.h, sl.w, sl.dy, sl.dx);
  vol_free(&v);
  return sl;
}

static void test_scans(const char *colin_brain, const char *itk, const char *itk_mask) {
  static const int colin_dims[3] = {181, 217, 181}, itk_dims[3] = {128, 128, 62};
  static const double colin_voxel[3] = {1, 1, 1}, itk_voxel[3] = {2, 2, 3};
  Slice a = mid_sagittal(colin_brain, colin_dims, colin_voxel, PLANE_SAGITTAL);
  Slice b = mid_sagittal(itk, itk_dims, itk_voxel, PLANE_CORONAL);
  Slice m = mid_sagittal(itk_mask, itk_dims, itk_voxel, PLANE_CORONAL);
  if (a.pix && b.pix && m.pix) {
    for (int i = 0; i < b.h * b.w; i++)
      b.pix[i] = m.pix[i] > 0 ? b.pix[i] : 0;
    // The ITK head is tilted, chin down, against Colin's: take each transform at its best tilt.
    static double A[S * S], B[S * S], T[S * S];
    static const char *const names[8] = {"identity",   "flip left-right", "flip up-down",
                                         "rotate 180", "transpose",       "rotate 90 counter-clockwise",
                                         "rotate 90 clockwise",           "transpose on the other diagonal"};
    double corr[8] = {-2, -2, -2, -2, -2, -2, -2, -2};
    int tilt[8] = {0};
    resample(a.pix, a.h, a.w, a.dy, a.dx, 0, A);
    for (int deg = -45; deg <= 45; deg += 5) {
      resample(b.pix, b.h, b.w, b.dy, b.dx, deg, B);
      for (int k = 0; k < 8; k++) {
        for (int y = 0; y < S; y++)
          for (int x = 0; x < S; x++) {
            int r = k & 4 ? x : y, c = k & 4 ? y : x;
            T[y * S + x] = B[(k & 2 ? S - 1 - r : r) * S + (k & 1 ? S - 1 - c : c)];
          }
        double cc = correlation(A, T);
        if (cc > corr[k])
          corr[k] = cc, tilt[k] = deg;
      }
    }
    printf("correlation of the ITK brain's mid-sagittal slice with Colin27's, under each flip and transpose:\n");
    for (int k = 0; k < 8; k++)
      printf("  %-32s %+.3f (tilted %+d degrees)\n", names[k], corr[k], tilt[k]);
    for (int k = 1; k < 8; k++)
      CHECK(corr[0] > corr[k] + 0.05, "identity %.3f does not beat %s %.3f by 0.05", corr[0], names[k], corr[k]);
  }
  free(a.pix);
  free(b.pix);
  free(m.pix);
}

int main(int argc, char **argv) {
  if (argc != 1 && argc != 4) {
    fprintf(stderr, "usage: test_volume [COLIN27_BRAIN ITK_T1 ITK_T1_SKULL_STRIP]\n");
    return 2;
  }
  make_dir("caec_vol");
  if (argc == 4) {
    test_scans(argv[1], argv[2], argv[3]);
  } else {
    test_orientations();
    test_auto_plane();
    test_malformed();
  }
  return finish();
}
