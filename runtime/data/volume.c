// volume.c: NIfTI volumes and their canonical slices (see volume.h).
//
// Files are untrusted, so libnifti is used with care, to interpret headers but not to read files. Its
// reading functions go through znzread, which on a .nii.gz returns a short read that ends inside a voxel
// as complete and a zlib error as (size_t)-1; its header reader quietly repairs some bad fields (a dim of
// 0 or -5 becomes 1); its image reader allocates what the header claims before reading a byte, reads the
// extensions with the sizes they claim, and silently turns NaN and Inf into 0. So the bytes are read here
// with zlib (which reads plain files as they are), and the header is checked here before
// nifti_convert_n?hdr2nim turns it into the qform and sform matrices. The voxels come in chunks, converted
// to float as they arrive, into a buffer that grows with what the file really holds: a .nii.gz cannot tell
// its size until it is decompressed.
#include "volume.h"

#include "errors.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { MAX_DIM = 4096, CHUNK = 1 << 16, GZ_BUFFER = 1 << 17 }; // voxels along one axis; voxels per read; bytes
static const int64_t MAX_VOXELS = (int64_t)1 << 28;

// ---- the header ----------------------------------------------------------------

// The fields vol_read checks, in host byte order, from either version of the header.
typedef struct Header {
  int64_t dim[8];
  double pixdim[4];
  int datatype;
  double vox_offset, slope, inter;
} Header;

typedef union RawHeader {
  nifti_1_header n1;
  nifti_2_header n2;
} RawHeader;

static Header header_fields(const RawHeader *raw, int version) {
  Header h;
  if (version == 1) {
    nifti_1_header n = raw->n1;
    if (n.sizeof_hdr != (int)sizeof n)
      swap_nifti_header(&n, 1);
    h = (Header){.datatype = n.datatype, .vox_offset = n.vox_offset, .slope = n.scl_slope, .inter = n.scl_inter};
    for (int d = 0; d < 8; d++)
      h.dim[d] = n.dim[d];
    for (int d = 0; d < 4; d++)
      h.pixdim[d] = n.pixdim[d];
  } else {
    nifti_2_header n = raw->n2;
    if (n.sizeof_hdr != (int)sizeof n)
      swap_nifti_header(&n, 2);
    h = (Header){.datatype = n.datatype, .vox_offset = (double)n.vox_offset, .slope = n.scl_slope,
                 .inter = n.scl_inter};
    for (int d = 0; d < 8; d++)
      h.dim[d] = n.dim[d];
    for (int d = 0; d < 4; d++)
      h.pixdim[d] = n.pixdim[d];
  }
  return h;
}

static int supported(int datatype) {
  switch (datatype) {
  case DT_UINT8: case DT_INT8: case DT_UINT16: case DT_INT16: case DT_UINT32: case DT_INT32:
  case DT_UINT64: case DT_INT64: case DT_FLOAT32: case DT_FLOAT64:
    return 1;
  }
  return 0;
}

static int check_header(const Header *h, const char *path, char *err, size_t errlen) {
  const int64_t *dim = h->dim;
  if (dim[0] < 1 || dim[0] > 7)
    return err_fail(err, errlen, path, "bad number of dimensions %lld", (long long)dim[0]);
  if (dim[0] != 3 && dim[0] != 4)
    return err_fail(err, errlen, path, "%lldD image, expected a 3D volume", (long long)dim[0]);
  if (dim[0] == 4 && dim[4] != 1)
    return err_fail(err, errlen, path, "4D image of %lld volumes, expected one volume", (long long)dim[4]);
  for (int d = 1; d <= 3; d++)
    if (dim[d] < 1 || dim[d] > MAX_DIM)
      return err_fail(err, errlen, path, "dimensions %lld x %lld x %lld out of range (1 to %d each)", (long long)dim[1],
                  (long long)dim[2], (long long)dim[3], MAX_DIM);
  if (dim[1] * dim[2] * dim[3] > MAX_VOXELS)
    return err_fail(err, errlen, path, "%lld x %lld x %lld voxels, more than the limit of 2^28", (long long)dim[1],
                (long long)dim[2], (long long)dim[3]);
  if (!supported(h->datatype))
    return err_fail(err, errlen, path, "unsupported datatype %s (%d)", nifti_datatype_string(h->datatype), h->datatype);
  for (int d = 1; d <= 3; d++)
    if (!(h->pixdim[d] > 0 && isfinite(h->pixdim[d])))
      return err_fail(err, errlen, path, "bad voxel size %g x %g x %g mm", h->pixdim[1], h->pixdim[2], h->pixdim[3]);
  // libnifti casts vox_offset to int.
  if (!(h->vox_offset >= 0 && h->vox_offset < 2147483648.0))
    return err_fail(err, errlen, path, "bad vox_offset %g", h->vox_offset);
  if (h->slope != 0 && !(isfinite(h->slope) && isfinite(h->inter)))
    return err_fail(err, errlen, path, "bad scl_slope %g or scl_inter %g", h->slope, h->inter);
  return 0;
}

// ---- orientation ---------------------------------------------------------------

// The voxel-to-world matrix by the standard's precedence: sform, else qform, else the pixdims alone.
static int orientation(const nifti_image *nim, Volume *v, const char *path, char *err, size_t errlen) {
  const double(*m)[4] = nim->sform_code > 0 ? nim->sto_xyz.m : nim->qform_code > 0 ? nim->qto_xyz.m : NULL;
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++)
      v->to_ras[r][c] = m ? m[r][c] : r == c ? (r < 3 ? v->voxel[r] : 1) : 0;
  const double(*a)[4] = v->to_ras;
  double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
               a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++)
      if (!isfinite(a[r][c]))
        det = NAN;
  if (!(det != 0 && isfinite(det)))
    return err_fail(err, errlen, path, "degenerate or non-finite %s matrix", m == nim->sto_xyz.m ? "sform" : "qform");

  // Each world axis gets the voxel axis most nearly parallel to it: of the 6 one-to-one assignments, the
  // one with the largest sum of |direction cosines|.
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  double cosine[3][3]; // [world axis][voxel axis]
  for (int c = 0; c < 3; c++) {
    double norm = sqrt(a[0][c] * a[0][c] + a[1][c] * a[1][c] + a[2][c] * a[2][c]);
    for (int w = 0; w < 3; w++)
      cosine[w][c] = a[w][c] / norm;
  }
  int best = 0;
  double best_sum = -1;
  for (int p = 0; p < 6; p++) {
    double sum = fabs(cosine[0][perms[p][0]]) + fabs(cosine[1][perms[p][1]]) + fabs(cosine[2][perms[p][2]]);
    if (sum > best_sum)
      best = p, best_sum = sum;
  }
  for (int w = 0; w < 3; w++) {
    v->axis_of[w] = perms[best][w];
    v->flip_of[w] = cosine[w][perms[best][w]] < 0;
  }
  return 0;
}

// ---- the voxels ----------------------------------------------------------------

static inline double stored(int datatype, const void *raw, size_t i) {
  switch (datatype) {
  case DT_UINT8: return ((const uint8_t *)raw)[i];
  case DT_INT8: return ((const int8_t *)raw)[i];
  case DT_UINT16: return ((const uint16_t *)raw)[i];
  case DT_INT16: return ((const int16_t *)raw)[i];
  case DT_UINT32: return ((const uint32_t *)raw)[i];
  case DT_INT32: return ((const int32_t *)raw)[i];
  case DT_UINT64: return (double)((const uint64_t *)raw)[i];
  case DT_INT64: return (double)((const int64_t *)raw)[i];
  case DT_FLOAT32: return ((const float *)raw)[i];
  default: return ((const double *)raw)[i]; // DT_FLOAT64, the last that check_header lets through
  }
}

// out[i] = stored value i * slope + inter as a float, for i < n: infinite beyond float range, as IEC 60559
// (C's Annex F) has it. Inlined with a constant datatype, the loop is the type's own and vectorises.
static inline __attribute__((always_inline)) void scale_voxels(int datatype, const void *raw, size_t n,
                                                               double slope, double inter, float *out) {
  for (size_t i = 0; i < n; i++)
    out[i] = (float)(stored(datatype, raw, i) * slope + inter);
}

// scale_voxels for the datatype of the header.
static void scale_any(int datatype, const void *raw, size_t n, double slope, double inter, float *out) {
  switch (datatype) {
  case DT_UINT8: scale_voxels(DT_UINT8, raw, n, slope, inter, out); break;
  case DT_INT8: scale_voxels(DT_INT8, raw, n, slope, inter, out); break;
  case DT_UINT16: scale_voxels(DT_UINT16, raw, n, slope, inter, out); break;
  case DT_INT16: scale_voxels(DT_INT16, raw, n, slope, inter, out); break;
  case DT_UINT32: scale_voxels(DT_UINT32, raw, n, slope, inter, out); break;
  case DT_INT32: scale_voxels(DT_INT32, raw, n, slope, inter, out); break;
  case DT_UINT64: scale_voxels(DT_UINT64, raw, n, slope, inter, out); break;
  case DT_INT64: scale_voxels(DT_INT64, raw, n, slope, inter, out); break;
  case DT_FLOAT32: scale_voxels(DT_FLOAT32, raw, n, slope, inter, out); break;
  default: scale_voxels(DT_FLOAT64, raw, n, slope, inter, out);
  }
}

// The first of n floats that is not finite, or n. The flag, not an early exit, lets the loop vectorise.
static size_t first_nonfinite(const float *x, size_t n) {
  int bad = 0;
  for (size_t i = 0; i < n; i++)
    bad |= !(fabsf(x[i]) <= FLT_MAX);
  size_t i = 0;
  while (bad && isfinite(x[i]))
    i++;
  return bad ? i : n;
}

// A message for a read that failed or came up short.
static const char *read_error(gzFile f) {
  int e;
  gzerror(f, &e);
  return e == Z_ERRNO ? strerror(errno) : e == Z_DATA_ERROR ? "corrupt compressed data" : "truncated";
}

static int read_voxels(const nifti_image *nim, const Header *h, Volume *v, const char *path, char *err,
                       size_t errlen) {
  size_t nvox = (size_t)v->dim[0] * v->dim[1] * v->dim[2], nbyper = (size_t)nim->nbyper, done = 0, cap = 0;
  double slope = h->slope != 0 ? h->slope : 1, inter = h->slope != 0 ? h->inter : 0;
  int swap = nim->byteorder != nifti_short_order() && nim->swapsize > 1;
  gzFile f = gzopen(nim->iname, "rb");
  if (!f)
    return err_fail(err, errlen, path, "cannot open the image data in %s: %s", nim->iname, strerror(errno));
  void *raw = malloc(CHUNK * nbyper);
  float *data = NULL;
  int rc = raw ? 0 : err_fail(err, errlen, path, "out of memory");
  // A larger input buffer than zlib's 8 KiB, so that inflate's fast loop runs longer between refills (a
  // sixth less time). It fails only after a read.
  gzbuffer(f, GZ_BUFFER);
  if (!rc && gzseek(f, (z_off_t)nim->iname_offset, SEEK_SET) < 0)
    rc = err_fail(err, errlen, path, "cannot seek to the data at byte %lld: %s", (long long)nim->iname_offset,
              read_error(f));
  while (!rc && done < nvox) {
    size_t n = nvox - done < CHUNK ? nvox - done : CHUNK;
    if (done + n > cap) {
      cap = cap ? 2 * cap : CHUNK;
      cap = cap < nvox ? cap : nvox;
      float *grown = realloc(data, cap * sizeof *data);
      if (!grown) {
        rc = err_fail(err, errlen, path, "out of memory");
        break;
      }
      data = grown;
    }
    int got = gzread(f, raw, (unsigned)(n * nbyper));
    if (got < 0 || (size_t)got < n * nbyper) {
      rc = err_fail(err, errlen, path, "%s: the data end after %zu of %zu voxels", read_error(f),
                done + (got > 0 ? (size_t)got / nbyper : 0), nvox);
      break;
    }
    if (swap)
      nifti_swap_Nbytes((int64_t)n, nim->swapsize, raw);
    scale_any(nim->datatype, raw, n, slope, inter, data + done);
    size_t ok = first_nonfinite(data + done, n);
    if (ok < n) {
      double x = stored(nim->datatype, raw, ok) * slope + inter;
      done += ok;
      size_t nx = (size_t)v->dim[0], ny = (size_t)v->dim[1];
      rc = err_fail(err, errlen, path, "%s (%g) at voxel (%zu, %zu, %zu)",
                isfinite(x) ? "value beyond float range" : "NaN or infinite value", x, done % nx, done / nx % ny,
                done / nx / ny);
      break;
    }
    done += n;
  }
  gzclose(f);
  free(raw);
  if (rc)
    free(data);
  else
    v->data = data;
  return rc;
}

// ---- reading -------------------------------------------------------------------

// Reads the raw header (either byte order); returns its version, 1 or 2, or -1 with a message.
static int read_header(const char *path, RawHeader *raw, char *err, size_t errlen) {
  gzFile f = gzopen(path, "rb");
  if (!f)
    return err_fail(err, errlen, path, "%s", strerror(errno));
  int32_t size = 0, swapped;
  int got = gzread(f, &size, sizeof size), zerr;
  gzerror(f, &zerr);
  swapped = size;
  nifti_swap_4bytes(1, &swapped);
  int version = got != sizeof size ? 0 : size == 348 || swapped == 348 ? 1 : size == 540 || swapped == 540 ? 2 : 0;
  int rc = 0;
  if (got < (int)sizeof size && zerr != Z_OK) {
    rc = err_fail(err, errlen, path, "%s", read_error(f));
  } else if (got == 0) {
    rc = err_fail(err, errlen, path, "empty file");
  } else if (!version) {
    rc = err_fail(err, errlen, path, "not a NIfTI-1 or NIfTI-2 file (bad sizeof_hdr)");
  } else {
    size_t rest = (version == 1 ? sizeof raw->n1 : sizeof raw->n2) - sizeof size;
    memcpy(raw, &size, sizeof size);
    got = gzread(f, (char *)raw + sizeof size, (unsigned)rest);
    if (got < 0 || (size_t)got < rest)
      rc = err_fail(err, errlen, path, "%s: the header ends early", read_error(f));
  }
  gzclose(f);
  if (rc)
    return -1;
  // The magic: "n+1" for one file, "ni1" for a .hdr/.img pair; "n+2", "ni2" in NIfTI-2.
  const char *magic = version == 1 ? raw->n1.magic : raw->n2.magic;
  if (magic[0] != 'n' || (magic[1] != '+' && magic[1] != 'i') || magic[2] != '0' + version || magic[3])
    return err_fail(err, errlen, path, "no NIfTI magic (an ANALYZE 7.5 file?): its orientation is unknown");
  return version;
}

int vol_read(const char *path, Volume *v, char *err, size_t errlen) {
  memset(v, 0, sizeof *v);
  RawHeader raw;
  int version = read_header(path, &raw, err, errlen);
  if (version < 0)
    return -1;
  if (!nifti_find_file_extension(path))
    return err_fail(err, errlen, path, "not a NIfTI file name (.nii, .nii.gz or .hdr)");
  Header h = header_fields(&raw, version);
  if (check_header(&h, path, err, errlen))
    return -1;
  // libnifti swaps bytes when dim[0] is outside 0..7, which agrees with sizeof_hdr once check_header passed.
  nifti_set_debug_level(0); // our own one-line messages replace libnifti's
  nifti_image *nim = version == 1 ? nifti_convert_n1hdr2nim(raw.n1, path) : nifti_convert_n2hdr2nim(raw.n2, path);
  if (!nim)
    return err_fail(err, errlen, path, "libnifti rejected the header");
  for (int d = 0; d < 3; d++) {
    v->dim[d] = (int)h.dim[d + 1];
    v->voxel[d] = h.pixdim[d + 1];
  }
  int rc = orientation(nim, v, path, err, errlen);
  if (!rc)
    rc = read_voxels(nim, &h, v, path, err, errlen);
  nifti_image_free(nim);
  if (rc)
    memset(v, 0, sizeof *v);
  return rc;
}

void vol_free(Volume *v) {
  free(v->data);
  memset(v, 0, sizeof *v);
}

// ---- slices --------------------------------------------------------------------

// A plane's value is the world axis normal to it, so its slices run along axis_of[plane]. The finest
// in-plane resolution is across the coarsest axis; sizes within 0.1% count as equal (headers store them as
// float32, written by many tools) and ties go to the earlier plane, sagittal first.
Plane vol_plane(const Volume *v, Plane p) {
  if (p != PLANE_AUTO)
    return p;
  Plane best = PLANE_SAGITTAL;
  for (Plane q = PLANE_CORONAL; q <= PLANE_AXIAL; q++)
    if (v->voxel[v->axis_of[q]] > v->voxel[v->axis_of[best]] * 1.001)
      best = q;
  return best;
}

int vol_slices(const Volume *v, Plane p) { return v->dim[v->axis_of[vol_plane(v, p)]]; }

// How each plane's slices, rows and columns run: the world axis and direction (+1 towards R, A or S).
static const struct {
  int axis, dir;
} layout[3][3] = {
    [PLANE_SAGITTAL] = {{0, -1}, {2, -1}, {1, -1}}, // slices R to L, rows S to I, columns A to P
    [PLANE_CORONAL] = {{1, -1}, {2, -1}, {0, -1}},  // slices A to P, rows S to I, columns R to L
    [PLANE_AXIAL] = {{2, +1}, {1, -1}, {0, -1}},    // slices I to S, rows A to P, columns R to L
};

// The voxels met along world axis `axis` in direction dir: the first one's offset in data, the step, the count.
typedef struct Walk {
  ptrdiff_t start, step;
  int n;
} Walk;

static Walk walk(const Volume *v, int axis, int dir) {
  int c = v->axis_of[axis], n = v->dim[c];
  ptrdiff_t stride = c == 0 ? 1 : c == 1 ? v->dim[0] : (ptrdiff_t)v->dim[0] * v->dim[1];
  if ((dir > 0) != v->flip_of[axis])
    return (Walk){0, stride, n};
  return (Walk){(ptrdiff_t)(n - 1) * stride, -stride, n};
}

// Slice s of plane p: the offset of its top-left pixel in data, and how its rows and columns run.
static ptrdiff_t slice_walk(const Volume *v, Plane p, int s, Walk *row, Walk *col) {
  p = vol_plane(v, p);
  Walk slice = walk(v, layout[p][0].axis, layout[p][0].dir);
  *row = walk(v, layout[p][1].axis, layout[p][1].dir);
  *col = walk(v, layout[p][2].axis, layout[p][2].dir);
  return slice.start + s * slice.step + row->start + col->start;
}

void vol_slice(const Volume *v, Plane p, int s, float *out, int *h, int *w) {
  Walk row, col;
  const float *first = v->data + slice_walk(v, p, s, &row, &col);
  for (int r = 0; r < row.n; r++, out += col.n) {
    const float *in = first + r * row.step;
    if (col.step == 1) // columns along i, as in sagittal slices of IXI's volumes
      memcpy(out, in, (size_t)col.n * sizeof *out);
    else
      for (int c = 0; c < col.n; c++)
        out[c] = in[c * col.step];
  }
  *h = row.n;
  *w = col.n;
}

void vol_put_slice(Volume *v, Plane p, int s, const float *in) {
  Walk row, col;
  float *first = v->data + slice_walk(v, p, s, &row, &col);
  for (int r = 0; r < row.n; r++)
    for (int c = 0; c < col.n; c++)
      first[r * row.step + c * col.step] = *in++;
}
