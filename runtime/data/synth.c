// synth.c: an IXI-like cohort from one template (see synth.h).
//
// A subject's voxel (i, j, k) lies at p = P(i, j, k) + d(i, j, k) around the field of view's centre c:
// P places the voxel on IXI's grid, d is a cubic B-spline displacement field. It shows the template's point
// c + shift + R diag(1 / scale) p, sampled trilinearly, so the subject's head is the template's scaled by
// `scale`, rotated by R^-1 and deformed by -d. Its intensity x becomes gain (x / wm)^gamma (1 + b), with b a
// coarse B-spline (the bias field), and Rician noise: the magnitude of that plus complex Gaussian noise, as
// a scanner's magnitude image has it, including the background.
#include "synth.h"

#include "atomic.h"
#include "rng.h"

#include <errno.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

const double synth_voxel_mm[3] = {0.9375, 0.9375, 1.2};

static const double PI = 3.14159265358979323846;

// ---- the model's parameters -------------------------------------------------------------

// Knot spacing and coefficient bound of the displacement field, mm: displacements of 3.3 mm RMS, 7 to 8 mm
// at most. Coefficients below 0.4 times the spacing keep a cubic B-spline deformation one-to-one (Choi and
// Lee, 2000), so no anatomy folds over itself.
static const double DEFORM_SPACING = 32, DEFORM_MAX = 10;
// The bias field: 1 + b, b a B-spline over 80 mm knots with coefficients in [-BIAS_MAX, BIAS_MAX]; its
// smoothing keeps the field within +-10 to 16% over the field of view.
static const double BIAS_SPACING = 80, BIAS_MAX = 0.3;

// Each subject's Philox stream is (RNG_SYNTH, subject); the top 16 bits of the index say what a draw is for.
enum { DRAW_PARAMS, DRAW_DEFORM, DRAW_BIAS, DRAW_NOISE };

static uint64_t draw_bits(uint64_t seed, int k, int what, uint64_t n) {
  return rng_bits(seed, rng_stream(RNG_SYNTH, (uint32_t)k), (uint64_t)what << 48 | n);
}

static double draw(uint64_t seed, int k, int what, uint64_t n) {
  return (double)(draw_bits(seed, k, what, n) >> 11) * 0x1.0p-53;
}

// The parameter draws of one subject, numbered in the order they are taken.
typedef struct Draws {
  uint64_t seed;
  int k;
  uint64_t n;
} Draws;

static double uniform(Draws *d, double lo, double hi) {
  return lo + (hi - lo) * draw(d->seed, d->k, DRAW_PARAMS, d->n++);
}

SynthSubject synth_subject(uint64_t seed, int k) {
  Draws d = {seed, k, 0};
  SynthSubject s = {.index = k, .id = SYNTH_FIRST_ID + k};
  // IXI's T1s: 322 from Guy's, 185 from Hammersmith, 74 from the Institute of Psychiatry; 44% male.
  double site = uniform(&d, 0, 581);
  s.site = site < 322 ? "Guys" : site < 507 ? "HH" : "IOP";
  s.number = (int)uniform(&d, 0, 10000);
  s.sex = uniform(&d, 0, 1) < 0.44 ? 1 : 2;
  s.ethnic = uniform(&d, 0, 1) < 0.8 ? 1 : 3 + (int)uniform(&d, 0, 4);
  s.age = uniform(&d, 20, 86);
  // Colin27 lies in MNI space, larger than most heads (its brain is 1.8 l): subjects are 86 to 98% of its
  // size, and up to 3% more or less along each axis.
  double size = uniform(&d, 0.86, 0.98);
  for (int a = 0; a < 3; a++)
    s.scale[a] = size * uniform(&d, 0.97, 1.03);
  // Heads nod in the coil more than they tilt or turn.
  s.angle[0] = uniform(&d, -6, 6), s.angle[1] = uniform(&d, -3, 3), s.angle[2] = uniform(&d, -3, 3);
  for (int a = 0; a < 3; a++)
    s.shift[a] = uniform(&d, -4, 4);
  s.gamma = exp(uniform(&d, log(0.75), log(1.33)));
  s.gain = uniform(&d, 400, 1200); // IXI's raw T1 white matter lies in the hundreds to a thousand or two
  s.noise = uniform(&d, 0.01, 0.04);
  return s;
}

void synth_file_name(const SynthSubject *s, char *name, size_t len) {
  snprintf(name, len, "IXI%03d-%s-%04d-T1.nii.gz", s->id, s->site, s->number);
}

// ---- the template -----------------------------------------------------------------------

// The q-quantile of the positive values among the n of x, within 1/4096 of the largest.
static double positive_quantile(const float *x, size_t n, double q) {
  enum { BINS = 4096 };
  size_t count = 0;
  double top = 0;
  for (size_t i = 0; i < n; i++)
    top = x[i] > top ? x[i] : top;
  size_t *hist = calloc(BINS, sizeof *hist);
  if (!hist || top == 0) {
    free(hist);
    return 0;
  }
  for (size_t i = 0; i < n; i++)
    if (x[i] > 0) {
      hist[(int)(x[i] / top * (BINS - 1))]++;
      count++;
    }
  size_t want = (size_t)(q * (double)count), seen = 0;
  int b = 0;
  while (b < BINS - 1 && (seen += hist[b]) <= want)
    b++;
  free(hist);
  return (b + 0.5) * top / (BINS - 1);
}

// t's voxels from v's, axis a of t being v's voxel axis nearest to world axis world[a] (A-P, S-I, R-L), with
// a border of one zero voxel all round: trilinear sampling then needs no bounds check but one.
static int reorder(const Volume *v, SynthTemplate *t) {
  static const int world[3] = {1, 2, 0};
  int from[3];
  for (int a = 0; a < 3; a++) {
    from[a] = v->axis_of[world[a]];
    t->dim[a] = v->dim[from[a]] + 2;
  }
  size_t stride[3] = {1, (size_t)v->dim[0]};
  stride[2] = stride[1] * (size_t)v->dim[1];
  t->data = calloc((size_t)t->dim[0] * t->dim[1] * t->dim[2], sizeof *t->data);
  if (!t->data)
    return -1;
  for (int z = 1; z < t->dim[2] - 1; z++)
    for (int y = 1; y < t->dim[1] - 1; y++)
      for (int x = 1; x < t->dim[0] - 1; x++)
        t->data[x + (size_t)t->dim[0] * (y + (size_t)t->dim[1] * z)] =
            v->data[(size_t)(x - 1) * stride[from[0]] + (size_t)(y - 1) * stride[from[1]] +
                    (size_t)(z - 1) * stride[from[2]]];
  nifti_dmat44 m;
  memcpy(m.m, v->to_ras, sizeof m.m);
  nifti_dmat44 inv = nifti_dmat44_inverse(m); // vol_read refused singular matrices
  for (int a = 0; a < 3; a++) {
    memcpy(t->to_vox[a], inv.m[from[a]], sizeof t->to_vox[a]);
    t->to_vox[a][3] += 1; // the border
  }
  memcpy(t->to_vox[3], inv.m[3], sizeof t->to_vox[3]);
  for (int r = 0; r < 3; r++) {
    t->center[r] = m.m[r][3];
    for (int c = 0; c < 3; c++)
      t->center[r] += m.m[r][c] * (v->dim[c] - 1) / 2.0;
  }
  return 0;
}

int synth_template(const char *path, SynthTemplate *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  Volume v;
  if (vol_read(path, &v, err, errlen))
    return -1;
  int rc = 0;
  if (reorder(&v, t)) {
    snprintf(err, errlen, "%s: out of memory", path);
    rc = -1;
  } else if (!((t->wm = positive_quantile(t->data, (size_t)t->dim[0] * t->dim[1] * t->dim[2], 0.8)) > 0)) {
    snprintf(err, errlen, "%s: no positive voxels, nothing to synthesise from", path);
    rc = -1;
  }
  vol_free(&v);
  if (rc)
    synth_template_free(t);
  return rc;
}

void synth_template_free(SynthTemplate *t) {
  free(t->data);
  memset(t, 0, sizeof *t);
}

// IXI's storage: i runs anterior to posterior, j inferior to superior, k left to right; the grid's centre
// is the template's.
void synth_to_ras(const SynthTemplate *t, double m[4][4]) {
  const double *mm = synth_voxel_mm;
  memset(m, 0, 16 * sizeof m[0][0]);
  m[0][2] = mm[2], m[1][0] = -mm[0], m[2][1] = mm[1], m[3][3] = 1;
  m[0][3] = t->center[0] - mm[2] * (SYNTH_NK - 1) / 2.0;
  m[1][3] = t->center[1] + mm[0] * (SYNTH_NI - 1) / 2.0;
  m[2][3] = t->center[2] - mm[1] * (SYNTH_NJ - 1) / 2.0;
}

// ---- smooth random fields ---------------------------------------------------------------

// A cubic B-spline field of ncomp values on the output grid, with knots every `spacing` mm. Node m along an
// axis sits at voxel (m - 1) * step, so the four nodes around voxel x start at floor(x / step). Fields are
// tensor products, so a slice, a row and a voxel are each a contraction over one axis.
typedef struct Spline {
  int n[3], ncomp;
  double *coef;        // n[2] x n[1] x n[0] x ncomp, the first axis fastest after the components
  int *base[3];        // per voxel along each axis: its first node
  double (*w[3])[4];   // and the four weights
} Spline;

static void bspline_weights(double t, double w[4]) {
  double t2 = t * t, t3 = t2 * t;
  w[0] = (1 - t) * (1 - t) * (1 - t) / 6;
  w[1] = (3 * t3 - 6 * t2 + 4) / 6;
  w[2] = (-3 * t3 + 3 * t2 + 3 * t + 1) / 6;
  w[3] = t3 / 6;
}

// Coefficients uniform in [-amplitude, amplitude] from the subject's draws `what`; -1 when out of memory.
static int spline_make(Spline *s, double spacing, int ncomp, double amplitude, uint64_t seed, int k, int what) {
  static const int dim[3] = {SYNTH_NI, SYNTH_NJ, SYNTH_NK};
  memset(s, 0, sizeof *s);
  s->ncomp = ncomp;
  size_t ncoef = (size_t)ncomp;
  int ok = 1;
  for (int a = 0; a < 3; a++) {
    double step = spacing / synth_voxel_mm[a];
    s->n[a] = (int)floor((dim[a] - 1) / step) + 4;
    ncoef *= (size_t)s->n[a];
    s->base[a] = malloc((size_t)dim[a] * sizeof *s->base[a]);
    s->w[a] = malloc((size_t)dim[a] * sizeof *s->w[a]);
    ok = ok && s->base[a] && s->w[a];
    for (int x = 0; ok && x < dim[a]; x++) {
      double u = x / step, cell = floor(u);
      s->base[a][x] = (int)cell;
      bspline_weights(u - cell, s->w[a][x]);
    }
  }
  s->coef = ok ? malloc(ncoef * sizeof *s->coef) : NULL;
  for (size_t c = 0; s->coef && c < ncoef; c++)
    s->coef[c] = amplitude * (2 * draw(seed, k, what, c) - 1);
  return s->coef ? 0 : -1;
}

static void spline_free(Spline *s) {
  for (int a = 0; a < 3; a++) {
    free(s->base[a]);
    free(s->w[a]);
  }
  free(s->coef);
}

// plane (n[1] x n[0] x ncomp) = the field's coefficients contracted over slice k's four nodes.
static void spline_slice(const Spline *s, int k, double *plane) {
  size_t size = (size_t)s->n[0] * s->n[1] * s->ncomp;
  memset(plane, 0, size * sizeof *plane);
  for (int g = 0; g < 4; g++) {
    const double *c = s->coef + (size_t)(s->base[2][k] + g) * size, w = s->w[2][k][g];
    for (size_t x = 0; x < size; x++)
      plane[x] += w * c[x];
  }
}

// row (n[0] x ncomp) = plane contracted over row j's four nodes.
static void spline_row(const Spline *s, const double *plane, int j, double *row) {
  size_t size = (size_t)s->n[0] * s->ncomp;
  memset(row, 0, size * sizeof *row);
  for (int b = 0; b < 4; b++) {
    const double *c = plane + (size_t)(s->base[1][j] + b) * size, w = s->w[1][j][b];
    for (size_t x = 0; x < size; x++)
      row[x] += w * c[x];
  }
}

// value (ncomp) = row contracted over voxel i's four nodes.
static void spline_voxel(const Spline *s, const double *row, int i, double *value) {
  const double *w = s->w[0][i], *c = row + (size_t)s->base[0][i] * s->ncomp;
  for (int x = 0; x < s->ncomp; x++)
    value[x] = w[0] * c[x] + w[1] * c[s->ncomp + x] + w[2] * c[2 * s->ncomp + x] + w[3] * c[3 * s->ncomp + x];
}

// ---- one subject ------------------------------------------------------------------------

// The template at voxel position (x, y, z), trilinear, 0 outside (where its zero border fades to).
static double sample(const SynthTemplate *t, double x, double y, double z) {
  double fx = floor(x), fy = floor(y), fz = floor(z);
  if (!(fx >= 0 && fy >= 0 && fz >= 0 && fx < t->dim[0] - 1 && fy < t->dim[1] - 1 && fz < t->dim[2] - 1))
    return 0; // also NaN
  size_t sy = (size_t)t->dim[0], sz = sy * (size_t)t->dim[1];
  const float *p = t->data + (size_t)fx + sy * (size_t)fy + sz * (size_t)fz;
  double tx = x - fx, ty = y - fy, tz = z - fz;
  double c00 = p[0] + tx * (p[1] - p[0]), c10 = p[sy] + tx * (p[sy + 1] - p[sy]);
  double c01 = p[sz] + tx * (p[sz + 1] - p[sz]), c11 = p[sz + sy] + tx * (p[sz + sy + 1] - p[sz + sy]);
  double c0 = c00 + ty * (c10 - c00), c1 = c01 + ty * (c11 - c01);
  return c0 + tz * (c1 - c0);
}

// The subject-to-template map: template voxel = g (p + d) + g0, p + d in mm around the centre.
typedef struct Mapping {
  double g[3][3], g0[3];
} Mapping;

static Mapping mapping(const SynthTemplate *t, const SynthSubject *s) {
  double a[3], c[3], sn[3];
  for (int x = 0; x < 3; x++)
    a[x] = s->angle[x] * PI / 180, c[x] = cos(a[x]), sn[x] = sin(a[x]);
  // R = Rz Ry Rx.
  const double r[3][3] = {
      {c[2] * c[1], c[2] * sn[1] * sn[0] - sn[2] * c[0], c[2] * sn[1] * c[0] + sn[2] * sn[0]},
      {sn[2] * c[1], sn[2] * sn[1] * sn[0] + c[2] * c[0], sn[2] * sn[1] * c[0] - c[2] * sn[0]},
      {-sn[1], c[1] * sn[0], c[1] * c[0]},
  };
  Mapping m;
  for (int row = 0; row < 3; row++) {
    m.g0[row] = t->to_vox[row][3];
    for (int x = 0; x < 3; x++) {
      m.g0[row] += t->to_vox[row][x] * (t->center[x] + s->shift[x]);
      m.g[row][x] = 0;
      for (int y = 0; y < 3; y++)
        m.g[row][x] += t->to_vox[row][y] * r[y][x] / s->scale[x];
    }
  }
  return m;
}

// The magnitude of (y, 0) plus complex Gaussian noise of sd sigma, from 64 random bits: Box-Muller's two
// normal values as the real and imaginary parts. Where y is 0 (the background) that is the radius alone,
// sigma sqrt(-2 ln u1), Rayleigh distributed.
static double rician(double y, double sigma, uint64_t bits) {
  double u1 = ((double)(bits >> 32) + 0.5) * 0x1.0p-32, u2 = (double)(bits & 0xffffffffu) * 0x1.0p-32;
  double r = sigma * sqrt(-2 * log(u1));
  if (y == 0)
    return r;
  double re = y + r * cos(2 * PI * u2), im = r * sin(2 * PI * u2);
  return sqrt(re * re + im * im);
}

// Slice k of the volume; scratch holds the two fields' slice and row contractions.
static void synth_slice(const SynthTemplate *t, const SynthSubject *s, uint64_t seed, const Mapping *m,
                        const Spline *deform, const Spline *bias, int k, double *scratch, int16_t *out) {
  const double *mm = synth_voxel_mm;
  double *dplane = scratch, *drow = dplane + (size_t)deform->n[0] * deform->n[1] * 3;
  double *bplane = drow + (size_t)deform->n[0] * 3, *brow = bplane + (size_t)bias->n[0] * bias->n[1];
  spline_slice(deform, k, dplane);
  spline_slice(bias, k, bplane);
  double px = (k - (SYNTH_NK - 1) / 2.0) * mm[2], sigma = s->noise * s->gain;
  for (int j = 0; j < SYNTH_NJ; j++) {
    spline_row(deform, dplane, j, drow);
    spline_row(bias, bplane, j, brow);
    double pz = (j - (SYNTH_NJ - 1) / 2.0) * mm[1];
    for (int i = 0; i < SYNTH_NI; i++) {
      double d[3], b, p[3] = {px, -(i - (SYNTH_NI - 1) / 2.0) * mm[0], pz}, v[3];
      spline_voxel(deform, drow, i, d);
      for (int x = 0; x < 3; x++)
        p[x] += d[x];
      for (int x = 0; x < 3; x++)
        v[x] = m->g[x][0] * p[0] + m->g[x][1] * p[1] + m->g[x][2] * p[2] + m->g0[x];
      double x = sample(t, v[0], v[1], v[2]) / t->wm, y = 0;
      if (x > 0) {
        spline_voxel(bias, brow, i, &b);
        y = s->gain * pow(x, s->gamma) * (1 + b);
      }
      size_t at = (size_t)i + SYNTH_NI * ((size_t)j + (size_t)SYNTH_NJ * k);
      double q = round(rician(y, sigma, draw_bits(seed, s->index, DRAW_NOISE, at)));
      out[at] = (int16_t)(q < 32767 ? q : 32767);
    }
  }
}

int synth_volume(const SynthTemplate *t, const SynthSubject *s, uint64_t seed, int threads, int16_t *out) {
  Spline deform, bias;
  int ok = !spline_make(&deform, DEFORM_SPACING, 3, DEFORM_MAX, seed, s->index, DRAW_DEFORM);
  ok = !spline_make(&bias, BIAS_SPACING, 1, BIAS_MAX, seed, s->index, DRAW_BIAS) && ok;
  size_t scratch = (size_t)deform.n[0] * (deform.n[1] + 1) * 3 + (size_t)bias.n[0] * (bias.n[1] + 1);
  Mapping m = mapping(t, s);
  if (ok) {
#pragma omp parallel num_threads(threads)
    {
      double *work = malloc(scratch * sizeof *work);
      if (!work) {
#pragma omp atomic write
        ok = 0;
      }
#pragma omp for schedule(static)
      for (int k = 0; k < SYNTH_NK; k++)
        if (work)
          synth_slice(t, s, seed, &m, &deform, &bias, k, work, out);
      free(work);
    }
  }
  spline_free(&deform);
  spline_free(&bias);
  return ok ? 0 : -1;
}

// ---- writing ----------------------------------------------------------------------------

// The NIfTI-1 header of a subject's volume, made by libnifti from an image description.
static int make_header(const SynthTemplate *t, const char *descrip, nifti_1_header *h) {
  const int64_t dims[8] = {3, SYNTH_NI, SYNTH_NJ, SYNTH_NK, 1, 1, 1, 1};
  nifti_image *nim = nifti_make_new_nim(dims, DT_INT16, 0);
  if (!nim)
    return -1;
  double to_ras[4][4];
  synth_to_ras(t, to_ras);
  nifti_dmat44 m;
  memcpy(m.m, to_ras, sizeof m.m);
  for (int a = 0; a < 3; a++)
    nim->pixdim[a + 1] = synth_voxel_mm[a];
  nim->dx = synth_voxel_mm[0], nim->dy = synth_voxel_mm[1], nim->dz = synth_voxel_mm[2];
  nim->xyz_units = NIFTI_UNITS_MM;
  // The same matrix as the sform and as the qform (a rotation and voxel sizes, so exact as a quaternion).
  nim->sform_code = nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
  nim->sto_xyz = m;
  double dx, dy, dz;
  nifti_dmat44_to_quatern(m, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d, &nim->qoffset_x, &nim->qoffset_y,
                          &nim->qoffset_z, &dx, &dy, &dz, &nim->qfac);
  snprintf(nim->descrip, sizeof nim->descrip, "%s", descrip);
  nifti_set_iname_offset(nim, 1);
  int rc = nifti_convert_nim2n1hdr(nim, h);
  nifti_image_free(nim);
  return rc;
}

// Deflates n bytes into the gzip stream z, writing what comes out to f; flush is Z_NO_FLUSH or Z_FINISH.
static int deflate_to(z_stream *z, const void *data, size_t n, int flush, FILE *f) {
  unsigned char buf[1 << 16];
  z->next_in = (Bytef *)(uintptr_t)data; // zlib does not write through next_in
  z->avail_in = (uInt)n;
  int rc;
  do {
    z->next_out = buf;
    z->avail_out = sizeof buf;
    rc = deflate(z, flush);
    size_t got = sizeof buf - z->avail_out;
    if (rc == Z_STREAM_ERROR || fwrite(buf, 1, got, f) != got)
      return -1;
  } while (z->avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
  return 0;
}

int synth_write(const char *path, const SynthTemplate *t, const int16_t *vol, const char *descrip, char *err,
                size_t errlen) {
  nifti_1_header h;
  // The header, then 4 zero bytes: no extensions.
  unsigned char head[sizeof h + 4] = {0};
  if (make_header(t, descrip, &h)) {
    snprintf(err, errlen, "%s: cannot make the NIfTI header", path);
    return -1;
  }
  memcpy(head, &h, sizeof h);
  AtomicFile a;
  if (atomic_open(&a, path, err, errlen))
    return -1;
  // Level 1: the noise makes harder levels slow for a few percent of size. A gzip header without a time
  // stamp or name keeps the bytes the same from run to run.
  z_stream z = {0};
  errno = 0;
  int bad = deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK;
  bad = bad || deflate_to(&z, head, sizeof head, Z_NO_FLUSH, a.f) ||
        deflate_to(&z, vol, (size_t)SYNTH_NI * SYNTH_NJ * SYNTH_NK * sizeof *vol, Z_FINISH, a.f);
  int e = bad ? (ferror(a.f) && errno ? errno : EIO) : 0;
  deflateEnd(&z);
  return atomic_commit(&a, e, err, errlen);
}
