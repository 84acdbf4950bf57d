// brainmask.c: brain extraction by thresholds and morphology in mm, and the
// seed's slice-selection statistics (see brainmask.h).
//
// The mask, step by step (radii in mm, so the voxel size does not matter):
//  1. BET's robust range (Smith 2002): t2 and t98, the 2nd and 98th percentiles,
//     and the head as the voxels above t2 + 10% of the range.
//  2. The brain's typical intensity tm: the median of the head voxels within
//     half the head's radius of its centre of gravity, which is brain in any
//     head scan. Tissue is what lies above t2 + 60% of (tm - t2): white and
//     grey matter, and also scalp, fat and muscle, but not CSF or bone.
//  3. Erosion by a 6 mm ball cuts the thin bridges of tissue that join the
//     brain to the scalp; its largest 6-connected component is the brain's core.
//  4. The tissue within 9 mm of the core: what an opening (dilation back by
//     6 mm) would give, and 3 mm more for the gyri the erosion shaved off.
//  5. A closing by 8 mm takes in the sulcal CSF, and hole filling the
//     ventricles, to give the brain's outer envelope as BET draws it.
#include "brainmask.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_FRAC 0.1   // of the robust range: the head/background threshold (BET's)
#define TISSUE_FRAC 0.6 // of the way from t2 to tm: the tissue/CSF threshold
#define R_OPEN 6.0
#define R_GROW 9.0
#define R_CLOSE 8.0
#define FAR 1e30f // a squared distance beyond any volume's

enum { BINS = 4096, TILE = 16 };

typedef struct {
  double lo, scale; // bin of x: (x - lo) * scale, clamped to the range
  size_t count[BINS];
} Hist;

static void hist_init(Hist *h, double lo, double hi) {
  memset(h, 0, sizeof *h);
  h->lo = lo;
  h->scale = BINS / (hi - lo);
}

static void hist_add(Hist *h, double x) {
  double b = (x - h->lo) * h->scale;
  h->count[b < 0 ? 0 : b < BINS ? (int)b : BINS - 1]++;
}

// The value below which a fraction q of the values lie, interpolated within its bin.
static double hist_quantile(const Hist *h, double q) {
  double total = 0, below = 0;
  for (int b = 0; b < BINS; b++) // not counted as they come: that would chain every add through memory
    total += (double)h->count[b];
  double want = q * total;
  int b = 0;
  for (; b < BINS - 1 && below + (double)h->count[b] < want; b++)
    below += (double)h->count[b];
  double within = h->count[b] ? (want - below) / (double)h->count[b] : 0;
  return h->lo + (b + within) / h->scale;
}

// Non-finite values are background everywhere.
static int above(float x, double t) { return isfinite(x) && x > t; }

// A box of voxels: lo[a] <= c[a] < hi[a]. The morphology and the flood fills
// work only in the bounding box of what they can change.
typedef struct {
  int lo[3], hi[3];
} Box;

// The bounding box of m's nonzero voxels, grown by pad[a] voxels and clipped to
// the volume; lo[0] == hi[0] when there are none.
static Box bounds(const unsigned char *m, const int dim[3], const int pad[3]) {
  Box b = {{dim[0], dim[1], dim[2]}, {0, 0, 0}};
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++) {
      const unsigned char *row = m + (size_t)dim[0] * (j + (size_t)dim[1] * k);
      int first = 0, last = dim[0] - 1;
      while (first < dim[0] && !row[first])
        first++;
      if (first == dim[0])
        continue;
      while (!row[last])
        last--;
      int lo[3] = {first, j, k}, hi[3] = {last + 1, j + 1, k + 1};
      for (int a = 0; a < 3; a++) {
        b.lo[a] = lo[a] < b.lo[a] ? lo[a] : b.lo[a];
        b.hi[a] = hi[a] > b.hi[a] ? hi[a] : b.hi[a];
      }
    }
  if (b.hi[0] == 0)
    return (Box){{0, 0, 0}, {0, 0, 0}};
  for (int a = 0; a < 3; a++) {
    b.lo[a] = b.lo[a] - pad[a] > 0 ? b.lo[a] - pad[a] : 0;
    b.hi[a] = b.hi[a] + pad[a] < dim[a] ? b.hi[a] + pad[a] : dim[a];
  }
  return b;
}

// Squared distance transform along one line (Felzenszwalb and Huttenlocher,
// "Distance transforms of sampled functions", 2012): d[q] = min_p (w(q-p))^2 + f[p],
// the lower envelope of the parabolas rooted at the samples, which is built
// left to right on a stack. Samples at FAR root none, nor do zeros inside a
// run of zeros: the run's ends are nearer to everything outside it. v, h and z
// are scratch for n entries.
static void edt_line(const float *f, int n, float w, float *d, int *v, float *h, float *z) {
  int k = -1; // the stack's top; parabola v[k] (value h[k] at 0) is lowest from z[k] on
  for (int q = 0; q < n; q++) {
    if (f[q] >= FAR || (f[q] == 0 && q > 0 && q < n - 1 && f[q - 1] == 0 && f[q + 1] == 0))
      continue;
    float x = q * w, hq = f[q] + x * x, s = -FAR;
    while (k >= 0) {
      s = (hq - h[k]) / (2 * (x - v[k] * w)); // where parabolas q and v[k] cross
      if (s > z[k])
        break;
      k--;
      s = -FAR;
    }
    k++;
    v[k] = q, h[k] = hq, z[k] = s;
  }
  for (int q = 0, j = 0; q < n; q++) {
    float x = q * w;
    while (j < k && z[j + 1] < x)
      j++;
    float dx = x - v[j] * w;
    d[q] = f[q] == 0 ? 0 : dx * dx + f[v[j]];
  }
}

// Scratch for the morphology: one line in and out, and the envelope's stacks.
typedef struct {
  float *in, *out, *h, *z, *tile;
  int *v;
} Lines;

// Dilation (grow = 1: add the voxels within r mm of the set) or erosion (grow =
// 0: keep the voxels farther than r mm from any voxel outside it) of m by a
// ball, in place: the exact Euclidean distance transform to the set (or to its
// outside), thresholded. The first pass, along i, is two sweeps over the
// binary line; the others take the lower envelope. Distances beyond r are cut
// to FAR after each pass (passes only add to them), so that lines of only FAR,
// or only zeros, can be skipped. Voxels beyond the volume's border are neither
// in the set nor outside it.
static void morph(unsigned char *m, int grow, double r, const int dim[3], const double mm[3], float *d2,
                  Lines *l) {
  int pad[3];
  for (int a = 0; a < 3; a++) { // outside the box, nothing is within r of the set, and there is no set to erode
    double reach = ceil(r / mm[a]);
    pad[a] = !grow ? 1 : reach < dim[a] ? (int)reach : dim[a];
  }
  Box b = bounds(m, dim, pad);
  size_t stride[3] = {1, (size_t)dim[0], (size_t)dim[0] * dim[1]};
  float r2 = (float)(r * r);
  for (int k = b.lo[2]; k < b.hi[2]; k++)
    for (int j = b.lo[1]; j < b.hi[1]; j++) {
      size_t row = stride[1] * j + stride[2] * k;
      float w = (float)mm[0];
      int last = -1; // the feature nearest before i, then after it
      for (int i = b.lo[0]; i < b.hi[0]; i++) {
        if ((m[row + i] != 0) == grow)
          last = i;
        d2[row + i] = last < 0 ? FAR : (i - last) * w * (i - last) * w;
      }
      last = -1;
      for (int i = b.hi[0] - 1; i >= b.lo[0]; i--) {
        if ((m[row + i] != 0) == grow)
          last = i;
        float d = last < 0 ? FAR : (last - i) * w * (last - i) * w;
        d = d < d2[row + i] ? d : d2[row + i];
        d2[row + i] = d <= r2 ? d : FAR;
      }
    }
  for (int a = 1; a < 3; a++) {
    int a2 = 3 - a, n = b.hi[a] - b.lo[a]; // lines along a, by a2 and then i
    for (int c2 = b.lo[a2]; c2 < b.hi[a2]; c2++)
      for (int i0 = b.lo[0]; i0 < b.hi[0]; i0 += TILE) {
        // TILE neighbouring lines at once, copied by whole cache lines.
        float *p = d2 + i0 + c2 * stride[a2] + b.lo[a] * stride[a];
        int width = b.hi[0] - i0 < TILE ? b.hi[0] - i0 : TILE;
        for (int q = 0; q < n; q++)
          memcpy(l->tile + q * TILE, p + q * stride[a], width * sizeof *p);
        for (int t = 0; t < width; t++) {
          int near = 0, zeros = 0;
          for (int q = 0; q < n; q++) {
            float x = l->tile[q * TILE + t];
            l->in[q] = x;
            near += x < FAR;
            zeros += x == 0;
          }
          if (near == 0 || zeros == n)
            continue;
          edt_line(l->in, n, (float)mm[a], l->out, l->v, l->h, l->z);
          for (int q = 0; q < n; q++)
            l->tile[q * TILE + t] = l->out[q] <= r2 ? l->out[q] : FAR;
        }
        for (int q = 0; q < n; q++)
          memcpy(p + q * stride[a], l->tile + q * TILE, width * sizeof *p);
      }
  }
  for (int k = b.lo[2]; k < b.hi[2]; k++)
    for (int j = b.lo[1]; j < b.hi[1]; j++)
      for (int i = b.lo[0]; i < b.hi[0]; i++) {
        size_t v = i + stride[1] * j + stride[2] * k;
        m[v] = grow ? d2[v] < FAR : d2[v] >= FAR;
      }
}

// Flood fill from seed over the 6-connected voxels of box b with m[v] == from,
// setting them to `to`; returns how many. queue has room for every voxel.
static size_t flood(unsigned char *m, const int dim[3], const Box *b, size_t seed, unsigned char from,
                    unsigned char to, uint32_t *queue) {
  uint32_t nx = (uint32_t)dim[0], nxy = nx * (uint32_t)dim[1];
  size_t head = 0, tail = 0;
  m[seed] = to;
  queue[tail++] = (uint32_t)seed;
  while (head < tail) {
    uint32_t v = queue[head++], k = v / nxy, ij = v - k * nxy, j = ij / nx, i = ij - j * nx, nb[6];
    int count = 0;
    if ((int)i > b->lo[0]) nb[count++] = v - 1;
    if ((int)i + 1 < b->hi[0]) nb[count++] = v + 1;
    if ((int)j > b->lo[1]) nb[count++] = v - nx;
    if ((int)j + 1 < b->hi[1]) nb[count++] = v + nx;
    if ((int)k > b->lo[2]) nb[count++] = v - nxy;
    if ((int)k + 1 < b->hi[2]) nb[count++] = v + nxy;
    for (int c = 0; c < count; c++)
      if (m[nb[c]] == from) {
        m[nb[c]] = to;
        queue[tail++] = nb[c];
      }
  }
  return tail;
}

// Keeps the largest 6-connected component of m (values 0/1); returns its size.
static size_t largest_component(unsigned char *m, const int dim[3], uint32_t *queue) {
  Box b = bounds(m, dim, (int[3]){0, 0, 0});
  size_t best = 0, best_seed = 0, n = (size_t)dim[0] * dim[1] * dim[2];
  for (size_t v = 0; v < n; v++)
    if (m[v] == 1) {
      size_t size = flood(m, dim, &b, v, 1, 2, queue);
      if (size > best)
        best = size, best_seed = v;
    }
  if (best)
    flood(m, dim, &b, best_seed, 2, 1, queue);
  for (size_t v = 0; v < n; v++)
    m[v] = m[v] == 1;
  return best;
}

// Fills the cavities of m: background that no 6-connected path of background
// joins to the volume's border. Beyond the set's box grown by one voxel, all
// background is joined to the border, so the fill starts from that box's faces.
static void fill_holes(unsigned char *m, const int dim[3], uint32_t *queue) {
  Box b = bounds(m, dim, (int[3]){1, 1, 1});
  for (int k = b.lo[2]; k < b.hi[2]; k++)
    for (int j = b.lo[1]; j < b.hi[1]; j++)
      for (int i = b.lo[0]; i < b.hi[0]; i++) {
        size_t v = i + (size_t)dim[0] * (j + (size_t)dim[1] * k);
        int face = i == b.lo[0] || j == b.lo[1] || k == b.lo[2] || i == b.hi[0] - 1 || j == b.hi[1] - 1 ||
                   k == b.hi[2] - 1;
        if (face && m[v] == 0)
          flood(m, dim, &b, v, 0, 2, queue);
      }
  for (int k = b.lo[2]; k < b.hi[2]; k++)
    for (int j = b.lo[1]; j < b.hi[1]; j++)
      for (int i = b.lo[0]; i < b.hi[0]; i++) {
        size_t v = i + (size_t)dim[0] * (j + (size_t)dim[1] * k);
        m[v] = m[v] != 2;
      }
}

int brain_mask(const float *vol, const int dim[3], const double voxel_mm[3], unsigned char *mask, char *err,
               size_t errlen) {
  if (dim[0] < 1 || dim[1] < 1 || dim[2] < 1) {
    snprintf(err, errlen, "brain mask: bad volume size %dx%dx%d", dim[0], dim[1], dim[2]);
    return -1;
  }
  size_t n = (size_t)dim[0] * dim[1] * dim[2];
  memset(mask, 0, n);
  if (n > UINT32_MAX) { // the flood fill's queue holds 32-bit indices
    snprintf(err, errlen, "brain mask: %zu voxels are too many", n);
    return -1;
  }
  for (int a = 0; a < 3; a++)
    if (!(voxel_mm[a] >= 1e-3 && voxel_mm[a] <= 1e3)) { // a micron to a metre
      snprintf(err, errlen, "brain mask: bad voxel size %gx%gx%g mm", voxel_mm[0], voxel_mm[1], voxel_mm[2]);
      return -1;
    }
  const char *fail = "out of memory";
  Hist *hist = malloc(sizeof *hist);
  unsigned char *tissue = malloc(n);
  void *scratch = malloc(n * 4); // the distance transform's floats, or the flood fill's queue
  int longest = dim[0] > dim[1] ? dim[0] : dim[1];
  longest = longest > dim[2] ? longest : dim[2];
  Lines l = {malloc(longest * sizeof *l.in), malloc(longest * sizeof *l.out), malloc(longest * sizeof *l.h),
             malloc(longest * sizeof *l.z), malloc(longest * TILE * sizeof *l.tile), malloc(longest * sizeof *l.v)};
  if (!hist || !tissue || !scratch || !l.in || !l.out || !l.h || !l.z || !l.tile || !l.v)
    goto done;

  // 1. The robust range and the head.
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  for (size_t v = 0; v < n; v++)
    if (isfinite(vol[v])) {
      lo = vol[v] < lo ? vol[v] : lo;
      hi = vol[v] > hi ? vol[v] : hi;
    }
  fail = "the volume has no contrast";
  if (!(hi > lo))
    goto done;
  hist_init(hist, lo, hi);
  for (size_t v = 0; v < n; v++)
    if (isfinite(vol[v]))
      hist_add(hist, vol[v]);
  double t2 = hist_quantile(hist, 0.02), t98 = hist_quantile(hist, 0.98);
  if (!(t98 > t2))
    goto done;
  double t_head = t2 + HEAD_FRAC * (t98 - t2);

  // 2. The head's centre of gravity and radius (of a sphere of its volume),
  // and the median intensity near its centre.
  double cog[3] = {0}, count = 0;
  size_t v = 0;
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++)
      for (int i = 0; i < dim[0]; i++, v++)
        if (above(vol[v], t_head))
          cog[0] += i, cog[1] += j, cog[2] += k, count++;
  fail = "no head found";
  if (count == 0)
    goto done;
  for (int a = 0; a < 3; a++)
    cog[a] /= count;
  double r = 0.5 * cbrt(3 * count * voxel_mm[0] * voxel_mm[1] * voxel_mm[2] / (4 * M_PI));
  hist_init(hist, t_head, t98);
  v = 0;
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++)
      for (int i = 0; i < dim[0]; i++, v++) {
        double dx = (i - cog[0]) * voxel_mm[0], dy = (j - cog[1]) * voxel_mm[1], dz = (k - cog[2]) * voxel_mm[2];
        if (above(vol[v], t_head) && dx * dx + dy * dy + dz * dz < r * r)
          hist_add(hist, vol[v]);
      }
  double t_tissue = t2 + TISSUE_FRAC * (hist_quantile(hist, 0.5) - t2);

  // 3. The core.
  for (v = 0; v < n; v++)
    mask[v] = tissue[v] = above(vol[v], t_tissue);
  morph(mask, 0, R_OPEN, dim, voxel_mm, scratch, &l);
  fail = "no brain found";
  if (!largest_component(mask, dim, scratch))
    goto done;
  // 4. The tissue near the core, and of it what stays joined to the core.
  morph(mask, 1, R_GROW, dim, voxel_mm, scratch, &l);
  for (v = 0; v < n; v++)
    mask[v] &= tissue[v];
  largest_component(mask, dim, scratch);
  // 5. The envelope.
  morph(mask, 1, R_CLOSE, dim, voxel_mm, scratch, &l);
  morph(mask, 0, R_CLOSE, dim, voxel_mm, scratch, &l);
  fill_holes(mask, dim, scratch);
  fail = NULL;
done:
  free(hist);
  free(tissue);
  free(scratch);
  free(l.in), free(l.out), free(l.h), free(l.z), free(l.tile), free(l.v);
  if (!fail)
    return 0;
  memset(mask, 0, n);
  snprintf(err, errlen, "brain mask: %s", fail);
  return -1;
}

void slice_mask_count(const unsigned char *mask, const int dim[3], int axis, double *count) {
  memset(count, 0, dim[axis] * sizeof *count);
  size_t v = 0;
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++)
      for (int i = 0; i < dim[0]; i++, v++)
        count[axis == 0 ? i : axis == 1 ? j : k] += mask[v] != 0;
}

void slice_nonzero(const float *vol, const int dim[3], int axis, double *count, double *mean) {
  memset(count, 0, dim[axis] * sizeof *count);
  memset(mean, 0, dim[axis] * sizeof *mean);
  size_t v = 0;
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++)
      for (int i = 0; i < dim[0]; i++, v++)
        if (vol[v] != 0 && isfinite(vol[v])) {
          int s = axis == 0 ? i : axis == 1 ? j : k;
          count[s]++;
          mean[s] += vol[v];
        }
  for (int s = 0; s < dim[axis]; s++)
    mean[s] = count[s] ? mean[s] / count[s] : 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// The q-quantile of sorted values, interpolated linearly between order
// statistics (numpy's and pandas's default).
static double quantile(const double *sorted, size_t n, double q) {
  double pos = q * (double)(n - 1);
  size_t i = (size_t)pos;
  return i + 1 < n ? sorted[i] + (pos - (double)i) * (sorted[i + 1] - sorted[i]) : sorted[n - 1];
}

double slice_cutoff(const double *value, size_t n, SliceCut cut) {
  if (n == 0)
    return NAN;
  if (cut == SLICE_CUT_3SD) {
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
      mean += value[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
      ss += (value[i] - mean) * (value[i] - mean);
    return mean - 3 * (n > 1 ? sqrt(ss / (double)(n - 1)) : 0);
  }
  double *sorted = malloc(n * sizeof *sorted);
  if (!sorted)
    return NAN;
  memcpy(sorted, value, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_double);
  double q1 = quantile(sorted, n, 0.25), q3 = quantile(sorted, n, 0.75);
  free(sorted);
  return cut == SLICE_CUT_Q1 ? q1 : q1 - 1.5 * (q3 - q1);
}

size_t slice_keep(const double *value, size_t n, double cutoff, unsigned char *keep) {
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    kept += keep[i] = value[i] >= cutoff;
  return kept;
}

// In exact arithmetic: count and pixels are integers far below 2^53 / 65536.
int slice_has_brain(double count, double pixels) { return count * 65536 > 3000 * pixels; }
