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
//
// Steps 3 to 5 work on bitmaps, 64 voxels of a row along i to a word. A ball
// is the union of its chords along i, so dilating by it ORs together, for each
// chord, the set widened along i by the chord's half-length and moved by the
// chord's (j, k) offset: a few hundred chords for these radii at 1 mm, a few
// word operations per voxel. Erosion is dilation of the complement. Connected
// components are the runs of voxels along i, joined by union-find where runs
// of neighbouring rows overlap.
#include "brainmask.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The loops over whole volumes ask to be vectorised (omp simd), which gcc -O2 would not do by itself. Clang
// warns of those it cannot vectorise: under the sanitizers, which instrument every access, all of them.
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

#define HEAD_FRAC 0.1   // of the robust range: the head/background threshold (BET's)
#define TISSUE_FRAC 0.6 // of the way from t2 to tm: the tissue/CSF threshold
#define R_OPEN 6.0
#define R_GROW 9.0
#define R_CLOSE 8.0
// The voxel sizes taken. A ball's chords grow as (r / voxel size)^2: finer voxels would make the morphology
// slow, and a whole brain in them would need more voxels than a volume can have.
#define MIN_VOXEL_MM 0.1
#define MAX_VOXEL_MM 1e3

// BLOCK: voxels binned at once (hist_add_all). PIECE: voxels of a row counted at once, in ints, which vectorise
// along with the floats: their i - i0 sum to less than 2^31.
enum { BINS = 4096, BLOCK = 256, PIECE = 1 << 15 };

// ---- histograms ----------------------------------------------------------------

// BINS bins over [lo, hi], and one more for the non-finite values, which the
// quantiles ignore.
typedef struct {
  double lo, scale; // bin of x: (x - lo) * scale, clamped to the range
  size_t count[BINS + 1];
} Hist;

static void hist_init(Hist *h, double lo, double hi) {
  memset(h, 0, sizeof *h);
  h->lo = lo;
  h->scale = BINS / (hi - lo);
}

// Without branches, so that the loops over whole volumes vectorise.
static int hist_bin(const Hist *h, float x) {
  double b = (x - h->lo) * h->scale;
  b = b > 0 ? b : 0; // and NaN to 0
  b = b < BINS - 1 ? b : BINS - 1;
  return fabsf(x) <= FLT_MAX ? (int)b : BINS;
}

// Counts n values: their bins first, a block at a time, then the counts.
// Counting each bin as it comes, the processor would load a count before
// knowing whether an earlier store goes to it, and start over whenever it did,
// as it often does in the background's few bins: four times slower.
static void hist_add_all(Hist *h, const float *x, size_t n) {
  uint16_t bin[BLOCK];
  for (size_t v0 = 0; v0 < n; v0 += BLOCK) {
    int m = n - v0 < BLOCK ? (int)(n - v0) : BLOCK;
#pragma omp simd
    for (int v = 0; v < m; v++)
      bin[v] = (uint16_t)hist_bin(h, x[v0 + v]);
    for (int v = 0; v < m; v++)
      h->count[bin[v]]++;
  }
}

// The value below which a fraction q of the values lie, interpolated within its bin.
static double hist_quantile(const Hist *h, double q) {
  double total = 0, below = 0;
  for (int b = 0; b < BINS; b++) // not the non-finite values' bin
    total += (double)h->count[b];
  double want = q * total;
  int b = 0;
  for (; b < BINS - 1 && below + (double)h->count[b] < want; b++)
    below += (double)h->count[b];
  double within = h->count[b] ? (want - below) / (double)h->count[b] : 0;
  return h->lo + (b + within) / h->scale;
}

// Thresholds are doubles, compared with floats: x > t exactly when x > float_below(t), the largest float
// not above t, which lets the comparisons vectorise.
static float float_below(double t) {
  float f = (float)t;
  return f > t ? nextafterf(f, -INFINITY) : f;
}

// x > f, for a threshold from float_below. Non-finite values are background everywhere.
static int above(float x, float f) { return (x > f) & (x <= FLT_MAX); }

// ---- bitmaps -------------------------------------------------------------------

// A binary volume as a bitmap: row (j, k) along i is `words` words from word
// words * (j + ny * k), voxel i its bit i % 64 of word i / 64. The bits past nx
// are always 0.
typedef struct {
  int nx, ny, nz, words;
  size_t size; // words in all
  uint64_t tail; // the bits of a row's last word that are voxels
} Grid;

// Rows j0 <= j < j1, k0 <= k < k1; none when j0 == j1. The morphology and the
// components work only in the rows that they can change.
typedef struct {
  int j0, j1, k0, k1;
} Rows;

static size_t at(const Grid *g, int j, int k) { return (size_t)g->words * (j + (size_t)g->ny * k); }

static int min_int(int a, int b) { return a < b ? a : b; }
static int max_int(int a, int b) { return a > b ? a : b; }

// The bounding box of the rows with voxels, grown by pad rows along j and k
// and clipped to the volume; no rows when there are no voxels.
static Rows rows_of(const Grid *g, const uint64_t *b, int pad) {
  Rows r = {g->ny, 0, g->nz, 0};
  for (int k = 0; k < g->nz; k++)
    for (int j = 0; j < g->ny; j++) {
      const uint64_t *row = b + at(g, j, k);
      uint64_t any = 0;
      for (int w = 0; w < g->words; w++)
        any |= row[w];
      if (any)
        r = (Rows){min_int(r.j0, j), max_int(r.j1, j + 1), min_int(r.k0, k), max_int(r.k1, k + 1)};
    }
  if (r.j1 == 0)
    return (Rows){0, 0, 0, 0};
  return (Rows){max_int(r.j0 - pad, 0), min_int(r.j1 + pad, g->ny), max_int(r.k0 - pad, 0),
                min_int(r.k1 + pad, g->nz)};
}

// The first i >= from (nx for none) whose bit in the row is `bit`.
static int next_bit(const Grid *g, const uint64_t *row, int from, int bit) {
  if (from >= g->nx)
    return g->nx;
  uint64_t flip = bit ? 0 : ~(uint64_t)0;
  int w = from / 64;
  uint64_t x = (row[w] ^ flip) & ~(uint64_t)0 << from % 64;
  while (!x) {
    if (++w == g->words)
      return g->nx;
    x = row[w] ^ flip;
  }
  return min_int(64 * w + __builtin_ctzll(x), g->nx);
}

// Sets bits lo <= i < hi of a row.
static void set_bits(uint64_t *row, int lo, int hi) {
  for (int w = lo / 64; w * 64 < hi; w++) {
    int a = max_int(lo - 64 * w, 0), b = min_int(hi - 64 * w, 64);
    row[w] |= (b == 64 ? ~(uint64_t)0 : ((uint64_t)1 << b) - 1) & ~(uint64_t)0 << a;
  }
}

// Bytes in[0..7], each 0 or 1, as the bits of a byte: the multiply moves byte j's bit to bit 56 + j, with no
// carries.
static uint64_t pack8(const unsigned char *in) {
  uint64_t q;
  memcpy(&q, in, sizeof q);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  q = __builtin_bswap64(q); // in[j] to byte j
#endif
  return q * 0x0102040810204080 >> 56;
}

// The voxels above t.
static void threshold(const Grid *g, const float *vol, double t, uint64_t *b) {
  float f = float_below(t);
  for (size_t r = 0; r < (size_t)g->ny * g->nz; r++)
    for (int w = 0; w < g->words; w++) {
      const float *x = vol + r * g->nx + 64 * w;
      int n = min_int(g->nx - 64 * w, 64);
      unsigned char in[64] = {0};
#pragma omp simd
      for (int i = 0; i < n; i++)
        in[i] = (unsigned char)above(x[i], f);
      uint64_t bits = 0;
      for (int k = 0; k < 8; k++)
        bits |= pack8(in + 8 * k) << 8 * k;
      b[r * g->words + w] = bits;
    }
}

// ---- morphology ----------------------------------------------------------------

// A chord of a ball along i: the voxels (di, dj, dk) with |di| <= h.
typedef struct {
  int dj, dk, h;
} Chord;

// A ball as its chords, in order of h; reach: the largest |dj| and |dk| of them.
typedef struct {
  Chord *chord;
  int n, reach_j, reach_k;
} Ball;

static int in_ball(double r, const double mm[3], int di, int dj, int dk) {
  double x = di * mm[0], y = dj * mm[1], z = dk * mm[2];
  return x * x + y * y + z * z <= r * r;
}

static int by_half_length(const void *a, const void *b) {
  int x = ((const Chord *)a)->h, y = ((const Chord *)b)->h;
  return (x > y) - (x < y);
}

// The ball of radius r mm, its chords cut to the volume (longer ones cover a
// whole row); 0, or -1 when out of memory.
static int ball_make(const Grid *g, double r, const double mm[3], Ball *b) {
  int rj = (int)fmin(floor(r / mm[1]) + 1, g->ny - 1), rk = (int)fmin(floor(r / mm[2]) + 1, g->nz - 1);
  *b = (Ball){malloc((size_t)(2 * rj + 1) * (2 * rk + 1) * sizeof *b->chord), 0, 0, 0};
  if (!b->chord)
    return -1;
  for (int dk = -rk; dk <= rk; dk++)
    for (int dj = -rj; dj <= rj; dj++) {
      if (!in_ball(r, mm, 0, dj, dk))
        continue;
      double y = dj * mm[1], z = dk * mm[2], e = floor(sqrt(fmax(r * r - y * y - z * z, 0)) / mm[0]);
      int h = (int)fmin(e, g->nx - 1); // the estimate, then exactly as in_ball has it
      while (h < g->nx - 1 && in_ball(r, mm, h + 1, dj, dk))
        h++;
      while (h > 0 && !in_ball(r, mm, h, dj, dk))
        h--;
      b->chord[b->n++] = (Chord){dj, dk, h};
      b->reach_j = max_int(b->reach_j, abs(dj));
      b->reach_k = max_int(b->reach_k, abs(dk));
    }
  qsort(b->chord, (size_t)b->n, sizeof *b->chord, by_half_length);
  return 0;
}

// line widened by a voxel each way along i, in rows `in`.
static void widen(const Grid *g, Rows in, uint64_t *line) {
  for (int k = in.k0; k < in.k1; k++)
    for (int j = in.j0; j < in.j1; j++) {
      uint64_t *x = line + at(g, j, k), before = 0; // the word before x[w], as it was
      for (int w = 0; w < g->words; w++) {
        uint64_t here = x[w], after = w + 1 < g->words ? x[w + 1] : 0;
        x[w] = here | here << 1 | before >> 63 | here >> 1 | after << 63;
        before = here;
      }
      x[g->words - 1] &= g->tail;
    }
}

// dst |= line moved by each chord's (dj, dk), in rows `out`, from line's rows
// `in`. Plane by plane of dst, which stays in cache for all the chords.
static void or_chords(const Grid *g, const uint64_t *line, Rows in, const Chord *c, int n, uint64_t *dst,
                      Rows out) {
  for (int k = out.k0; k < out.k1; k++)
    for (int o = 0; o < n; o++) {
      int dj = c[o].dj, dk = c[o].dk, j0 = max_int(out.j0, in.j0 + dj), j1 = min_int(out.j1, in.j1 + dj);
      if (k - dk < in.k0 || k - dk >= in.k1 || j0 >= j1)
        continue;
      uint64_t *restrict d = dst + at(g, j0, k);
      const uint64_t *restrict s = line + at(g, j0 - dj, k - dk);
#pragma omp simd
      for (size_t w = 0; w < (size_t)(j1 - j0) * g->words; w++)
        d[w] |= s[w];
    }
}

// dst = src dilated by the ball (the voxels within its radius of a voxel of
// src) in rows `out`, and 0 elsewhere; src's voxels lie in rows `in`. line is
// scratch.
static void dilate(const Grid *g, const uint64_t *src, Rows in, const Ball *b, uint64_t *dst, Rows out,
                   uint64_t *line) {
  memset(dst, 0, g->size * sizeof *dst);
  for (int k = in.k0; k < in.k1; k++)
    memcpy(line + at(g, in.j0, k), src + at(g, in.j0, k), (size_t)(in.j1 - in.j0) * g->words * sizeof *line);
  for (int o = 0, h = 0; o < b->n;) {
    for (; h < b->chord[o].h; h++)
      widen(g, in, line);
    int end = o;
    while (end < b->n && b->chord[end].h == h)
      end++;
    or_chords(g, line, in, b->chord + o, end - o, dst, out);
    o = end;
  }
}

// Scratch bitmaps for the morphology.
typedef struct {
  uint64_t *a, *b, *c;
} Scratch;

// Dilation (grow = 1: adds the voxels within r mm of m) or erosion (grow = 0:
// keeps the voxels of m farther than r mm from any voxel outside it) of m by a
// ball, in place; 0, or -1 when out of memory. Voxels beyond the volume's
// border are neither in m nor outside it.
static int morph(const Grid *g, uint64_t *m, int grow, double r, const double mm[3], Scratch *s) {
  Ball b;
  if (ball_make(g, r, mm, &b))
    return -1;
  Rows box = rows_of(g, m, 0);
  if (grow) {
    Rows out = {max_int(box.j0 - b.reach_j, 0), min_int(box.j1 + b.reach_j, g->ny), max_int(box.k0 - b.reach_k, 0),
                min_int(box.k1 + b.reach_k, g->nz)};
    dilate(g, m, box, &b, s->a, out, s->b);
    memcpy(m, s->a, g->size * sizeof *m);
  } else {
    // The outside voxel nearest to a voxel of m lies in m's rows grown by one:
    // moving any other into them brings it nearer.
    Rows near = rows_of(g, m, 1);
    memset(s->a, 0, g->size * sizeof *m);
    for (int k = near.k0; k < near.k1; k++)
      for (int j = near.j0; j < near.j1; j++) {
        size_t row = at(g, j, k);
        for (int w = 0; w < g->words; w++)
          s->a[row + w] = ~m[row + w];
        s->a[row + g->words - 1] &= g->tail;
      }
    dilate(g, s->a, near, &b, s->b, box, s->c);
    for (size_t w = 0; w < g->size; w++)
      m[w] &= ~s->b[w];
  }
  free(b.chord);
  return 0;
}

// ---- components ----------------------------------------------------------------

// The runs of voxels of one value along i in a box of rows, in memory order,
// and a union-find forest over them in which a run's root is the first run of
// its 6-connected component.
typedef struct {
  Rows box;
  int (*span)[2];  // [start, end) along i
  uint32_t *parent;
  size_t *first;   // first[r]: the first run of the box's row r (j fastest); first[rows] = count
  size_t count, cap;
} Runs;

static void runs_free(Runs *u) {
  free(u->span);
  free(u->parent);
  free(u->first);
}

static uint32_t root(uint32_t *parent, uint32_t x) {
  while (parent[x] != x)
    x = parent[x] = parent[parent[x]];
  return x;
}

// Joins the components of the runs that overlap along i, of two rows' runs a and b.
static void join_overlaps(Runs *u, size_t a, size_t a_end, size_t b, size_t b_end) {
  while (a < a_end && b < b_end) {
    if (u->span[a][0] < u->span[b][1] && u->span[b][0] < u->span[a][1]) {
      uint32_t x = root(u->parent, (uint32_t)a), y = root(u->parent, (uint32_t)b);
      u->parent[x > y ? x : y] = x < y ? x : y;
    }
    if (u->span[a][1] < u->span[b][1])
      a++;
    else
      b++;
  }
}

// The runs of `bit` in m's rows `box`, joined into components; 0, or -1 when
// out of memory.
static int runs_make(const Grid *g, const uint64_t *m, Rows box, int bit, Runs *u) {
  int ny = box.j1 - box.j0;
  size_t rows = (size_t)ny * (box.k1 - box.k0), r = 0;
  *u = (Runs){box, NULL, NULL, malloc((rows + 1) * sizeof *u->first), 0, 0};
  if (!u->first)
    return -1;
  for (int k = box.k0; k < box.k1; k++)
    for (int j = box.j0; j < box.j1; j++) {
      u->first[r++] = u->count;
      const uint64_t *row = m + at(g, j, k);
      for (int i = next_bit(g, row, 0, bit); i < g->nx;) {
        int end = next_bit(g, row, i, !bit);
        if (u->count == u->cap) {
          u->cap = 2 * u->cap + 1024;
          void *more = realloc(u->span, u->cap * sizeof *u->span);
          if (!more)
            return -1;
          u->span = more;
        }
        u->span[u->count][0] = i, u->span[u->count++][1] = end;
        i = next_bit(g, row, end, bit);
      }
    }
  u->first[rows] = u->count;
  u->parent = malloc((u->count ? u->count : 1) * sizeof *u->parent);
  if (!u->parent)
    return -1;
  for (size_t x = 0; x < u->count; x++)
    u->parent[x] = (uint32_t)x;
  for (r = 0; r < rows; r++) {
    if (r % ny)
      join_overlaps(u, u->first[r], u->first[r + 1], u->first[r - 1], u->first[r]);
    if (r >= (size_t)ny)
      join_overlaps(u, u->first[r], u->first[r + 1], u->first[r - ny], u->first[r - ny + 1]);
  }
  return 0;
}

// Sets the voxels of the runs with keep[root] in m.
static void runs_set(const Grid *g, Runs *u, const unsigned char *keep, uint64_t *m) {
  size_t r = 0;
  for (int k = u->box.k0; k < u->box.k1; k++)
    for (int j = u->box.j0; j < u->box.j1; j++, r++)
      for (size_t x = u->first[r]; x < u->first[r + 1]; x++)
        if (keep[root(u->parent, (uint32_t)x)])
          set_bits(m + at(g, j, k), u->span[x][0], u->span[x][1]);
}

// Keeps the largest 6-connected component of m (the first of the largest);
// returns its size, or -1 when out of memory.
static long long largest_component(const Grid *g, uint64_t *m) {
  Runs u;
  unsigned char *keep = NULL;
  long long *size = NULL, best = 0;
  if (runs_make(g, m, rows_of(g, m, 0), 1, &u) || !(size = calloc(u.count + 1, sizeof *size)) ||
      !(keep = calloc(u.count + 1, 1))) {
    best = -1;
  } else {
    size_t best_root = 0;
    for (size_t x = 0; x < u.count; x++)
      size[root(u.parent, (uint32_t)x)] += u.span[x][1] - u.span[x][0];
    for (size_t x = 0; x < u.count; x++)
      if (size[x] > best)
        best = size[x], best_root = x;
    keep[best_root] = best > 0;
    memset(m, 0, g->size * sizeof *m);
    runs_set(g, &u, keep, m);
  }
  runs_free(&u);
  free(size);
  free(keep);
  return best;
}

// Fills the cavities of m: background that no 6-connected path of background
// joins to the volume's border; 0, or -1 when out of memory. Beyond m's rows
// grown by one, all background is joined to the border, so the background
// runs of those rows that touch the border or the box's faces are open.
static int fill_holes(const Grid *g, uint64_t *m) {
  Runs u;
  unsigned char *hole = NULL;
  Rows box = rows_of(g, m, 1);
  int rc = runs_make(g, m, box, 0, &u) || !(hole = malloc(u.count + 1)) ? -1 : 0;
  if (!rc) {
    memset(hole, 1, u.count);
    size_t r = 0;
    for (int k = box.k0; k < box.k1; k++)
      for (int j = box.j0; j < box.j1; j++, r++) {
        int face = j == box.j0 || j == box.j1 - 1 || k == box.k0 || k == box.k1 - 1;
        for (size_t x = u.first[r]; x < u.first[r + 1]; x++)
          if (face || u.span[x][0] == 0 || u.span[x][1] == g->nx)
            hole[root(u.parent, (uint32_t)x)] = 0;
      }
    runs_set(g, &u, hole, m);
  }
  runs_free(&u);
  free(hole);
  return rc;
}

// mask[v] = 1 for m's voxels (mask is all 0 before).
static void to_bytes(const Grid *g, const uint64_t *m, unsigned char *mask) {
  for (int k = 0; k < g->nz; k++)
    for (int j = 0; j < g->ny; j++) {
      const uint64_t *row = m + at(g, j, k);
      unsigned char *out = mask + (size_t)g->nx * (j + (size_t)g->ny * k);
      for (int i = next_bit(g, row, 0, 1); i < g->nx;) {
        int end = next_bit(g, row, i, 0);
        memset(out + i, 1, (size_t)(end - i));
        i = next_bit(g, row, end, 1);
      }
    }
}

// ---- the mask ------------------------------------------------------------------

// Steps 1 and 2: the tissue threshold; 0, or -1 with the reason in *fail.
static int tissue_threshold(const float *vol, const int dim[3], const double mm[3], Hist *hist, double *t_tissue,
                            const char **fail) {
  size_t n = (size_t)dim[0] * dim[1] * dim[2];
  // 1. The robust range and the head.
  float lo = INFINITY, hi = -INFINITY;
#pragma omp simd reduction(min : lo) reduction(max : hi)
  for (size_t v = 0; v < n; v++) {
    int finite = fabsf(vol[v]) <= FLT_MAX;
    float low = finite ? vol[v] : INFINITY, high = finite ? vol[v] : -INFINITY;
    lo = low < lo ? low : lo;
    hi = high > hi ? high : hi;
  }
  *fail = "the volume has no contrast";
  if (!(hi > lo))
    return -1;
  hist_init(hist, lo, hi);
  hist_add_all(hist, vol, n);
  double t2 = hist_quantile(hist, 0.02), t98 = hist_quantile(hist, 0.98);
  if (!(t98 > t2))
    return -1;
  double t_head = t2 + HEAD_FRAC * (t98 - t2);
  float f_head = float_below(t_head);

  // 2. The head's centre of gravity and radius (of a sphere of its volume),
  // and the median intensity near its centre.
  double cog[3] = {0}, count = 0;
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++)
      for (int i0 = 0; i0 < dim[0]; i0 += PIECE) {
        const float *x = vol + (size_t)dim[0] * (j + (size_t)dim[1] * k) + i0;
        int len = min_int(dim[0] - i0, PIECE), in = 0, sum = 0;
#pragma omp simd reduction(+ : in, sum)
        for (int i = 0; i < len; i++) {
          int head = above(x[i], f_head);
          in += head;
          sum += head ? i : 0;
        }
        cog[0] += (double)i0 * in + sum, cog[1] += (double)in * j, cog[2] += (double)in * k, count += in;
      }
  *fail = "no head found";
  if (count == 0)
    return -1;
  for (int a = 0; a < 3; a++)
    cog[a] /= count;
  double r = 0.5 * cbrt(3 * count * mm[0] * mm[1] * mm[2] / (4 * M_PI));
  hist_init(hist, t_head, t98);
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++) {
      // The row's voxels in the sphere, and one more each way for rounding; then exactly.
      double dy = (j - cog[1]) * mm[1], dz = (k - cog[2]) * mm[2];
      double half = sqrt(fmax(r * r - dy * dy - dz * dz, 0)) / mm[0];
      int i0 = (int)fmax(floor(cog[0] - half) - 1, 0), i1 = (int)fmin(ceil(cog[0] + half) + 1, dim[0] - 1);
      const float *row = vol + (size_t)dim[0] * (j + (size_t)dim[1] * k);
      for (int i = i0; i <= i1; i++) {
        double dx = (i - cog[0]) * mm[0];
        if (above(row[i], f_head) && dx * dx + dy * dy + dz * dz < r * r)
          hist->count[hist_bin(hist, row[i])]++;
      }
    }
  *t_tissue = t2 + TISSUE_FRAC * (hist_quantile(hist, 0.5) - t2);
  return 0;
}

int brain_mask(const float *vol, const int dim[3], const double voxel_mm[3], unsigned char *mask, char *err,
               size_t errlen) {
  if (dim[0] < 1 || dim[1] < 1 || dim[2] < 1) {
    snprintf(err, errlen, "brain mask: bad volume size %dx%dx%d", dim[0], dim[1], dim[2]);
    return -1;
  }
  size_t n = (size_t)dim[0] * dim[1] * dim[2];
  memset(mask, 0, n);
  if (n > UINT32_MAX) { // the components' runs are counted in 32 bits
    snprintf(err, errlen, "brain mask: %zu voxels are too many", n);
    return -1;
  }
  for (int a = 0; a < 3; a++)
    if (!(voxel_mm[a] >= MIN_VOXEL_MM && voxel_mm[a] <= MAX_VOXEL_MM)) {
      snprintf(err, errlen, "brain mask: voxel size %gx%gx%g mm, not within %g mm to %g m", voxel_mm[0],
               voxel_mm[1], voxel_mm[2], MIN_VOXEL_MM, MAX_VOXEL_MM / 1e3);
      return -1;
    }
  Grid g = {dim[0], dim[1], dim[2], (dim[0] + 63) / 64, 0, ~(uint64_t)0};
  g.size = (size_t)g.words * dim[1] * dim[2];
  if (dim[0] % 64)
    g.tail = ((uint64_t)1 << dim[0] % 64) - 1;
  const char *fail = "out of memory";
  Hist *hist = malloc(sizeof *hist);
  uint64_t *bits = malloc(5 * g.size * sizeof *bits), *m = bits, *tissue = bits + g.size;
  Scratch s = {bits + 2 * g.size, bits + 3 * g.size, bits + 4 * g.size};
  double t_tissue;
  if (!hist || !bits)
    goto done;
  if (tissue_threshold(vol, dim, voxel_mm, hist, &t_tissue, &fail))
    goto done;

  // 3. The core.
  fail = "out of memory";
  threshold(&g, vol, t_tissue, tissue);
  memcpy(m, tissue, g.size * sizeof *m);
  if (morph(&g, m, 0, R_OPEN, voxel_mm, &s))
    goto done;
  long long core = largest_component(&g, m);
  if (core <= 0) {
    fail = core ? "out of memory" : "no brain found";
    goto done;
  }
  // 4. The tissue near the core, and of it what stays joined to the core.
  if (morph(&g, m, 1, R_GROW, voxel_mm, &s))
    goto done;
  for (size_t w = 0; w < g.size; w++)
    m[w] &= tissue[w];
  // 5. The envelope.
  if (largest_component(&g, m) < 0 || morph(&g, m, 1, R_CLOSE, voxel_mm, &s) ||
      morph(&g, m, 0, R_CLOSE, voxel_mm, &s) || fill_holes(&g, m))
    goto done;
  to_bytes(&g, m, mask);
  fail = NULL;
done:
  free(hist);
  free(bits);
  if (!fail)
    return 0;
  memset(mask, 0, n);
  snprintf(err, errlen, "brain mask: %s", fail);
  return -1;
}

void slice_mask_count(const unsigned char *mask, const int dim[3], int axis, double *count) {
  memset(count, 0, dim[axis] * sizeof *count);
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++) {
      const unsigned char *row = mask + (size_t)dim[0] * (j + (size_t)dim[1] * k);
      if (axis == 0) {
        for (int i = 0; i < dim[0]; i++)
          if (row[i]) // the mask is long runs of one value: well predicted
            count[i]++;
        continue;
      }
      size_t in = 0;
#pragma omp simd reduction(+ : in)
      for (int i = 0; i < dim[0]; i++)
        in += row[i] != 0;
      count[axis == 1 ? j : k] += (double)in;
    }
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
