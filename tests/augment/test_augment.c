// test_augment.c: the seed's input corruption. Determinism in (seed, epoch,
// sample), the statistics of the draws, the vector Philox against the scalar
// one, the pixel draws' layout, the accuracy and normality of their normals
// and their bits in every build and on either path (4 and 8 lanes), each step
// against its definition, the output range, and the time for 128 x 128 images
// (printed, not asserted).
#include "../testutil.h"
#include "augment.h"
#include "augment_pixels.h" // the loops' baseline build, here, to set against the AVX2 one
#include "resize.h"
#include "rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { H = 128, W = 128, N = H * W };

// A smooth image in [0.2, 1]: its minimum is above the zeros a corruption makes.
static void smooth_image(float *x, int h, int w) {
  for (int r = 0; r < h; r++)
    for (int c = 0; c < w; c++)
      x[r * w + c] = 0.6f + 0.4f * sinf(0.1f * (float)r) * cosf(0.07f * (float)c);
}

// No corruption but the ones a test turns on.
static AugmentParams nothing(void) {
  AugmentParams p = augment_defaults();
  p.drop_max = p.noise_max = p.cutout_p = p.blur_p = 0.0;
  return p;
}

static void test_determinism(void) {
  static float clean[N], a[N], b[N];
  smooth_image(clean, H, W);
  AugmentParams p = augment_defaults();
  p.cutout_p = p.blur_p = 1.0;
  augment_image(&p, 7, 3, 42, H, W, clean, a, NULL);
  augment_image(&p, 7, 3, 42, H, W, clean, b, NULL);
  CHECK(memcmp(a, b, sizeof a) == 0, "same (seed, epoch, sample), different output");
  memcpy(b, clean, sizeof b);
  augment_image(&p, 7, 3, 42, H, W, b, b, NULL); // in place
  CHECK(memcmp(a, b, sizeof a) == 0, "in place differs");
  const uint64_t other[3][3] = {{8, 3, 42}, {7, 4, 42}, {7, 3, 43}};
  for (int i = 0; i < 3; i++) {
    augment_image(&p, other[i][0], (uint32_t)other[i][1], other[i][2], H, W, clean, b, NULL);
    CHECK(memcmp(a, b, sizeof a) != 0, "(seed, epoch, sample) change %d gives the same output", i);
  }
  // Neighbouring samples draw different scalars.
  AugmentDraws d0 = augment_draws(&p, 7, 3, 0, H, W), d1 = augment_draws(&p, 7, 3, 1, H, W);
  CHECK(d0.r_drop != d1.r_drop, "samples 0 and 1 share r_drop");
  p.enabled = 0;
  AugmentDraws d;
  augment_image(&p, 7, 3, 42, H, W, clean, b, &d);
  CHECK(memcmp(clean, b, sizeof b) == 0 && !d.cutout && !d.blurred && d.r_drop == 0, "disabled changes the image");
}

// |x - mean| within 4 standard errors.
static int near(double x, double mean, double sd) { return fabs(x - mean) <= 4 * sd; }

static void test_statistics(void) {
  enum { DRAWS = 20000 };
  AugmentParams p = augment_defaults();
  int cutouts = 0, blurs = 0, off_diagonal = 0, bad = 0, seen_size[40] = {0}, seen_offset[100] = {0};
  double sum_drop = 0, sum_noise = 0, sum_both = 0, max_r = 0, min_r = 1;
  for (int s = 0; s < DRAWS; s++) {
    AugmentDraws d = augment_draws(&p, 1234, 5, (uint64_t)s, H, W);
    sum_drop += d.r_drop;
    sum_noise += d.r_noise;
    sum_both += d.r_drop * d.r_noise;
    max_r = fmax(max_r, fmax(d.r_drop, d.r_noise));
    min_r = fmin(min_r, fmin(d.r_drop, d.r_noise));
    blurs += d.blurred;
    if (d.cutout) {
      cutouts++;
      if (d.cut_size < 10 || d.cut_size > 29 || d.cut_row < 10 || d.cut_row > 99 || d.cut_half != d.cut_size / 2) {
        bad++;
        continue;
      }
      seen_size[d.cut_size]++;
      seen_offset[d.cut_row]++;
      off_diagonal += d.cut_row != d.cut_col;
    }
  }
  CHECK(near((double)cutouts / DRAWS, 0.2, sqrt(0.2 * 0.8 / DRAWS)), "cutout frequency %g", (double)cutouts / DRAWS);
  CHECK(near((double)blurs / DRAWS, 0.1, sqrt(0.1 * 0.9 / DRAWS)), "blur frequency %g", (double)blurs / DRAWS);
  double se = 0.04 / sqrt(12.0 * DRAWS);
  CHECK(near(sum_drop / DRAWS, 0.02, se), "r_drop mean %g", sum_drop / DRAWS);
  CHECK(near(sum_noise / DRAWS, 0.02, se), "r_noise mean %g", sum_noise / DRAWS);
  // Independent draws: the correlation of r_drop and r_noise (each of variance 0.04^2 / 12) within 4 / sqrt(n).
  double correlation = (sum_both / DRAWS - sum_drop / DRAWS * sum_noise / DRAWS) / (0.04 * 0.04 / 12);
  CHECK(near(correlation, 0, 1 / sqrt((double)DRAWS)), "r_drop and r_noise correlate: %g", correlation);
  CHECK(min_r >= 0 && min_r < 1e-4 && max_r < 0.04 && max_r > 0.0399, "rates in [%g, %g]", min_r, max_r);
  CHECK(bad == 0, "%d cutouts outside sizes 10..29 or offsets 10..99", bad);
  int missing = 0;
  for (int v = 10; v <= 29; v++)
    missing += !seen_size[v];
  for (int v = 10; v <= 99; v++)
    missing += !seen_offset[v];
  CHECK(missing == 0, "%d sizes or offsets never drawn", missing);
  CHECK(off_diagonal == 0, "%d cutout centres off the diagonal", off_diagonal);

  // Anywhere: centres cover the image, rows and columns independent.
  p.cutout_diagonal = 0;
  p.cutout_p = 1.0;
  int lo_row = H, hi_row = -1, lo_col = W, hi_col = -1, diagonal = 0;
  for (int s = 0; s < DRAWS; s++) {
    AugmentDraws d = augment_draws(&p, 1234, 5, (uint64_t)s, H, W);
    lo_row = d.cut_row < lo_row ? d.cut_row : lo_row;
    hi_row = d.cut_row > hi_row ? d.cut_row : hi_row;
    lo_col = d.cut_col < lo_col ? d.cut_col : lo_col;
    hi_col = d.cut_col > hi_col ? d.cut_col : hi_col;
    diagonal += d.cut_row == d.cut_col;
  }
  CHECK(lo_row == 0 && hi_row == H - 1 && lo_col == 0 && hi_col == W - 1, "anywhere: rows %d..%d, columns %d..%d",
        lo_row, hi_row, lo_col, hi_col);
  CHECK(near((double)diagonal / DRAWS, 1.0 / W, sqrt(1.0 / W / DRAWS)), "anywhere: %d centres on the diagonal",
        diagonal);
}

static void test_dropout_noise(void) {
  enum { M = 4 * N };
  static float x[M];
  const uint64_t stream = rng_stream(RNG_AUGMENT, 0);
  // Dropout alone: zeros with probability r, survivors scaled exactly.
  for (int i = 0; i < M; i++)
    x[i] = 0.5f;
  double r = 0.03;
  augment_dropout_noise(x, M, r, 0.0, 99, stream, 0);
  int zeros = 0, wrong = 0;
  float survivor = 0.5f * (float)(1.0 / (1.0 - r));
  for (int i = 0; i < M; i++) {
    zeros += x[i] == 0.0f;
    wrong += x[i] != 0.0f && x[i] != survivor;
  }
  CHECK(near((double)zeros / M, r, sqrt(r * (1 - r) / M)), "dropout rate %g for %g", (double)zeros / M, r);
  CHECK(wrong == 0, "%d survivors not 0.5 / (1 - r)", wrong);

  // Through augment_image: the zero fraction is the drawn r_drop; min-max sends survivors to 1.
  static float clean[N], out[N];
  for (int i = 0; i < N; i++)
    clean[i] = 0.5f;
  AugmentParams p = nothing();
  p.drop_max = 0.04;
  AugmentDraws d;
  augment_image(&p, 99, 1, 17, H, W, clean, out, &d);
  zeros = wrong = 0;
  for (int i = 0; i < N; i++) {
    zeros += out[i] == 0.0f;
    wrong += out[i] != 0.0f && out[i] != 1.0f;
  }
  CHECK(d.r_drop > 0.005 && near((double)zeros / N, d.r_drop, sqrt(d.r_drop / N)), "image dropout %g for %g",
        (double)zeros / N, d.r_drop);
  CHECK(wrong == 0, "%d pixels neither 0 nor 1", wrong);

  // Noise alone: mean 0, sd r (the sample sd within 4 standard errors, about sd / sqrt(2M)).
  for (int i = 0; i < M; i++)
    x[i] = 0.5f;
  augment_dropout_noise(x, M, 0.0, 0.04, 99, stream, 0);
  double sum = 0, sq = 0;
  for (int i = 0; i < M; i++) {
    sum += x[i] - 0.5;
    sq += (x[i] - 0.5) * (x[i] - 0.5);
  }
  double mean = sum / M, sd = sqrt(sq / M - mean * mean);
  CHECK(near(mean, 0, 0.04 / sqrt(M)) && near(sd, 0.04, 0.04 / sqrt(2.0 * M)), "noise mean %g sd %g", mean, sd);
  // An odd count leaves the value past the end alone.
  x[2] = -7.0f;
  augment_dropout_noise(x, 1, 0.5, 0.5, 99, stream, 0);
  CHECK(x[2] == -7.0f, "wrote past an odd count");
}

// philox4x32's block at (seed, stream, index), keyed and counted as rng_bits does.
static void reference_block(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4]) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
  philox4x32(key, ctr, out);
}

// rng_blocks (AVX2 code where the CPU has it) against the portable
// philox4x32, word for word: counters whose low word wraps inside a group,
// the 64-bit index wrapping round, and group counts that leave a single group.
static void test_rng_blocks(void) {
  static const struct {
    uint64_t seed, stream, index;
  } cases[] = {{0, 0, 0},
               {7, 3ull << 32 | 9, 0xFFFFFFFCull},
               {0x0123456789ABCDEFull, 0xFEDCBA9876543210ull, UINT64_MAX - 20},
               {42, 5, 0x00000001FFFFFFF9ull}};
  static uint32_t got[4 * 5][8];
  int wrong = 0, blocks = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (size_t groups = 1; groups <= 5; groups += 2) {
      rng_blocks(cases[c].seed, cases[c].stream, cases[c].index, groups, got);
      for (size_t g = 0; g < groups; g++)
        for (int j = 0; j < 8; j++, blocks++) {
          uint32_t want[4];
          reference_block(cases[c].seed, cases[c].stream, cases[c].index + 8 * g + (uint64_t)j, want);
          for (int w = 0; w < 4; w++)
            wrong += got[4 * g + (size_t)w][j] != want[w];
        }
    }
#if defined(__x86_64__) || defined(__i386__)
  printf("rng_blocks: %s code checked against philox4x32\n", __builtin_cpu_supports("avx2") ? "AVX2" : "portable");
#endif
  CHECK(wrong == 0, "%d of %d blocks of rng_blocks differ from philox4x32", wrong, blocks);
}

// The words of set k of the pixel draws from index (augment.h's layout):
// vectors 3k .. 3k + 2, vector v being word v % 4 of the group of blocks v / 4.
static void set_words(uint64_t seed, uint64_t stream, uint64_t index, size_t k, uint32_t v[3][8]) {
  for (size_t i = 0; i < 3; i++) {
    size_t vector = 3 * k + i;
    for (int j = 0; j < 8; j++) {
      uint32_t block[4];
      reference_block(seed, stream, index + 8 * (vector / 4) + (uint64_t)j, block);
      v[i][j] = block[vector % 4];
    }
  }
}

// The exact Box-Muller pair of words a and b, mapped as augment_pixels.h's normalsv
// maps them, in double with libm: u from a's top 23 bits, the octant from
// b's top three, the angle in it from the rest.
static void exact_normals(uint32_t a, uint32_t b, double z[2]) {
  double u = (double)((a >> 8) | 1u) * 0x1p-24, r = sqrt(-2.0 * log(u));
  double t = (double)(b & 0x1fffffffu) * (3.14159265358979323846 / 4 * 0x1p-29), c = cos(t), s = sin(t);
  int swap = b >> 29 & 1;
  z[0] = (b >> 31 ? -r : r) * (swap ? s : c);
  z[1] = (b >> 30 & 1 ? -r : r) * (swap ? c : s);
}

static double normal_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// The pixel draws' layout (augment.h) and their normals: on zeros with no
// dropout and sd 1, every pixel is its block's normal, within the documented
// error of the exact transform; the normals pass a Kolmogorov-Smirnov test
// and their moments are the normal's. With the noise off, a pixel drops
// exactly when its word says so.
static void test_pixel_draws(void) {
  enum { P = (1 << 17) + 7 }; // whole chunks of sets, then a partial set
  static float x[P];
  static double sorted[P];
  const uint64_t seed = 0xC0FFEE, stream = rng_stream(RNG_AUGMENT, 9), index = 123456789;
  memset(x, 0, sizeof x);
  augment_dropout_noise(x, P, 0.0, 1.0, seed, stream, index);
  double worst = 0;
  for (size_t k = 0; k < (P + 15) / 16; k++) {
    uint32_t v[3][8];
    set_words(seed, stream, index, k, v);
    for (size_t j = 0; j < 8; j++) {
      double z[2];
      exact_normals(v[0][j], v[1][j], z);
      for (size_t i = 0; i < 2; i++) // the lane's pixels, where the image has them
        if (16 * k + 8 * i + j < P)
          worst = fmax(worst, fabs(x[16 * k + 8 * i + j] - z[i]));
    }
  }
  CHECK(worst < 1e-6, "normals off the exact Box-Muller transform by %g", worst);
  printf("normals: at most %.2g from the exact Box-Muller transform\n", worst);
  double sum = 0, sq = 0, fourth = 0;
  for (size_t p = 0; p < P; p++) {
    sum += x[p], sq += (double)x[p] * x[p], fourth += pow(x[p], 4);
    sorted[p] = x[p];
  }
  qsort(sorted, P, sizeof *sorted, compare_doubles);
  double d = 0;
  for (size_t i = 0; i < P; i++) {
    double f = normal_cdf(sorted[i]);
    d = fmax(d, fmax(fabs((double)(i + 1) / P - f), fabs((double)i / P - f)));
  }
  CHECK(d < 1.95 / sqrt(P), "Kolmogorov-Smirnov distance %g from the normal (0.1%% level %g)", d, 1.95 / sqrt(P));
  double mean = sum / P, var = sq / P, kurtosis = fourth / P / (var * var);
  CHECK(near(mean, 0, 1 / sqrt(P)) && near(var, 1, sqrt(2.0 / P)) && near(kurtosis, 3, sqrt(24.0 / P)),
        "normals: mean %g, variance %g, kurtosis %g", mean, var, kurtosis);

  // Noise off: the first pixel of a lane drops by the high half of its third
  // word, the second by the low half.
  enum { D = 16 * 40 + 9 };
  const double r = 0.3;
  const uint32_t threshold = (uint32_t)(r * 65536.0);
  const float kept = (float)(1.0 / (1.0 - r));
  for (int p = 0; p < D; p++)
    x[p] = 1.0f;
  augment_dropout_noise(x, D, r, 0.0, seed, stream, index);
  int wrong = 0, dropped = 0;
  for (size_t k = 0; k < (D + 15) / 16; k++) {
    uint32_t v[3][8];
    set_words(seed, stream, index, k, v);
    for (size_t p = 16 * k; p < 16 * k + 16 && p < D; p++) {
      uint32_t word = v[2][p % 8];
      int drops = (p % 16 < 8 ? word >> 16 : word & 0xffffu) < threshold;
      wrong += x[p] != (drops ? 0.0f : kept);
      dropped += drops;
    }
  }
  CHECK(wrong == 0 && dropped > D / 5 && dropped < D * 2 / 5, "dropout layout: %d pixels wrong, %d dropped of %d",
        wrong, dropped, D);
}

// The pixel draws are the same bits whatever the build (vector width,
// compiler, -march): a fixed input against what this implementation gave. A
// mismatch means that they now depend on the build (say a multiply and an
// add fused into one rounding) or were changed on purpose, when the value
// here wants updating.
static void test_pixel_draws_golden(void) {
  enum { G = 40 * 16 + 5 };
  float x[2][G]; // the noise alone, on zeros; the dropout alone, on a ramp
  for (int i = 0; i < G; i++)
    x[0][i] = 0.0f, x[1][i] = (float)i / G;
  augment_dropout_noise(x[0], G, 0.2, 0.3, 3, rng_stream(RNG_AUGMENT, 1), 77);
  augment_dropout_noise(x[1], G, 0.2, 0.0, 3, rng_stream(RNG_AUGMENT, 1), 77);
  uint64_t hash = 14695981039346656037ull; // FNV-1a of the bytes
  const unsigned char *bytes = (const unsigned char *)x;
  for (size_t i = 0; i < sizeof x; i++)
    hash = (hash ^ bytes[i]) * 1099511628211ull;
  CHECK(hash == 0x3e7c584e616d4a21ull, "pixel draws: hash %016llx (noise %a %a)", (unsigned long long)hash, x[0][0],
        x[0][8]);
}

// The pixel loops' two builds give the same bits: the baseline's (4 lanes, this
// file's copy of augment_pixels.h) and the AVX2 object's (8 lanes), which
// augment.c runs where the CPU has AVX2. Pixel counts with partial vectors,
// sets and chunks; values from 0 to far outside [0, 1].
static void test_pixel_paths(void) {
#if defined(CAEC_AUGMENT_AVX2)
  if (!__builtin_cpu_supports("avx2")) {
    printf("pixel loops: no AVX2 on this CPU to compare with the baseline\n");
    return;
  }
  enum { P = 3 * 128 + 37 };
  static float src[P], base[P], avx2[P];
  int wrong = 0;
  for (int k = 0; k < 200; k++) {
    size_t n = 1 + (size_t)(k * 7919) % P;
    double r_drop = 0.5 * rng_uniform(5, 0, (uint64_t)k), r_noise = rng_uniform(5, 1, (uint64_t)k);
    for (size_t i = 0; i < n; i++)
      src[i] = (float)(rng_uniform(5, 2, (uint64_t)k * P + i) * (k % 3 ? 1.0 : 1e6 * k));
    dropout_noise(src, base, n, r_drop, r_noise, 11, 12, (uint64_t)k * 1000);
    augment_dropout_noise_avx2(src, avx2, n, r_drop, r_noise, 11, 12, (uint64_t)k * 1000);
    wrong += memcmp(base, avx2, n * sizeof *base) != 0;
    renormalise(base, n);
    augment_renormalise_avx2(avx2, n);
    wrong += memcmp(base, avx2, n * sizeof *base) != 0;
  }
  printf("pixel loops: the baseline and AVX2 builds compared\n");
  CHECK(wrong == 0, "%d of 400 cases differ between the baseline and AVX2 pixel loops", wrong);
#endif
}

// Reflect without repeating the edge pixel: -1 -> 1, n -> n - 2.
static int reflect(int i, int n) { return i < 0 ? -i : i >= n ? 2 * n - 2 - i : i; }

static void test_blur(void) {
  const double sigma = 0.6;
  double k[3][3], sum = 0;
  for (int dy = -1; dy <= 1; dy++)
    for (int dx = -1; dx <= 1; dx++)
      sum += k[dy + 1][dx + 1] = exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
  for (int i = 0; i < 9; i++)
    k[i / 3][i % 3] /= sum;
  // An impulse in the middle of 5 x 5 gives back the kernel.
  float x[25] = {0};
  x[12] = 1.0f;
  augment_blur(x, 5, 5, sigma);
  double err = 0;
  for (int r = 0; r < 5; r++)
    for (int c = 0; c < 5; c++)
      err = fmax(err, fabs(x[r * 5 + c] - (abs(r - 2) <= 1 && abs(c - 2) <= 1 ? k[r - 1][c - 1] : 0)));
  CHECK(err < 1e-7, "impulse response off by %g", err);
  CHECK(fabs(k[1][1] - 0.44521) < 1e-5 && fabs(k[0][0] - 0.027682) < 1e-6, "kernel centre %g corner %g", k[1][1],
        k[0][0]);

  // Reflect padding, by hand: an impulse at (1, 1) of 4 x 4 reaches (0, 0)
  // through its four corner neighbours, since row and column -1 read 1.
  float y[16] = {0};
  y[5] = 1.0f;
  augment_blur(y, 4, 4, sigma);
  CHECK(fabs(y[0] - 4 * k[0][0]) < 1e-7, "corner %g, want 4 * %g", y[0], k[0][0]);
  CHECK(fabs(y[1] - 2 * k[0][1]) < 1e-7 && fabs(y[4] - 2 * k[1][0]) < 1e-7, "edges %g %g", y[1], y[4]);
  CHECK(y[3] == 0.0f && y[15] == 0.0f, "far corners %g %g", y[3], y[15]);

  // A hand-made 4 x 4 image against the direct 3 x 3 sum.
  const float img[16] = {0.1f, 0.9f, 0.3f, 0.4f, 0.8f, 0.0f, 1.0f, 0.2f,
                         0.5f, 0.6f, 0.7f, 0.25f, 0.05f, 0.35f, 0.95f, 0.15f};
  float z[16];
  memcpy(z, img, sizeof z);
  augment_blur(z, 4, 4, sigma);
  err = 0;
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++) {
      double want = 0;
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
          want += k[dy + 1][dx + 1] * img[reflect(r + dy, 4) * 4 + reflect(c + dx, 4)];
      err = fmax(err, fabs(z[r * 4 + c] - want));
    }
  CHECK(err < 1e-6, "4 x 4 blur off by %g", err);
  // One row or column has no neighbours to reflect: it is left as it is.
  float line[3] = {0.2f, 0.7f, 0.4f};
  augment_blur(line, 1, 1, sigma);
  CHECK(line[0] == 0.2f, "1 x 1 changed");
}

static void test_cutout(void) {
  static float x[N];
  // Clipped at the top-left: centre (2, 3), half 5 zeroes rows [0, 7) and columns [0, 8).
  for (int i = 0; i < N; i++)
    x[i] = 1.0f;
  augment_cutout(x, H, W, 2, 3, 5);
  int wrong = 0;
  for (int r = 0; r < H; r++)
    for (int c = 0; c < W; c++)
      wrong += (x[r * W + c] == 0.0f) != (r < 7 && c < 8);
  CHECK(wrong == 0, "clipped cutout: %d pixels wrong", wrong);

  // Through augment_image: exactly [centre - half, centre + half) is zero after min-max.
  static float clean[N], out[N];
  smooth_image(clean, H, W);
  AugmentParams p = nothing();
  p.cutout_p = 1.0;
  int cases = 0;
  for (int diagonal = 0; diagonal <= 1; diagonal++) {
    p.cutout_diagonal = diagonal;
    for (uint64_t s = 0; s < 50; s++) {
      AugmentDraws d;
      augment_image(&p, 5, 0, s, H, W, clean, out, &d);
      wrong = 0;
      for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++) {
          int inside = r >= d.cut_row - d.cut_half && r < d.cut_row + d.cut_half && c >= d.cut_col - d.cut_half &&
                       c < d.cut_col + d.cut_half;
          wrong += (out[r * W + c] == 0.0f) != inside;
        }
      cases += wrong == 0 && d.cutout && (!diagonal || d.cut_row == d.cut_col);
    }
  }
  CHECK(cases == 100, "%d of 100 cutouts exactly the documented square", cases);
}

static void test_range(void) {
  static float clean[N], out[N];
  AugmentParams all = augment_defaults();
  all.cutout_p = all.blur_p = 1.0;
  const AugmentParams params[2] = {augment_defaults(), all};
  int bad = 0, nonzero_constant = 0;
  for (int s = 0; s < 200; s++) {
    int constant = s % 4 == 0;
    float level = (float)rng_uniform(3, 0, (uint64_t)s);
    for (int i = 0; i < N; i++)
      clean[i] = constant ? level : (float)rng_uniform(3, 1 + (uint64_t)s, (uint64_t)i);
    augment_image(&params[s % 2], 11, 2, (uint64_t)s, H, W, clean, out, NULL);
    for (int i = 0; i < N; i++)
      bad += !(out[i] >= 0.0f && out[i] <= 1.0f); // NaN fails both
  }
  CHECK(bad == 0, "%d pixels outside [0, 1] or NaN", bad);
  // A constant image with no corruption stays constant: min-max gives zeros.
  AugmentParams p = nothing();
  for (int i = 0; i < N; i++)
    clean[i] = 0.3f;
  augment_image(&p, 11, 2, 0, H, W, clean, out, NULL);
  for (int i = 0; i < N; i++)
    nonzero_constant += out[i] != 0.0f;
  CHECK(nonzero_constant == 0, "constant image: %d pixels not 0", nonzero_constant);
}

// a and b, n values in [0, 1], within a few float roundings: augment_image's
// min-max multiplies by the range's reciprocal where minmax01 divides.
static int within_roundings(const float *a, const float *b, size_t n) {
  double err = 0;
  for (size_t i = 0; i < n; i++)
    err = fmax(err, fabs(a[i] - b[i]));
  return err <= 4e-7;
}

// The final min-max on images of many scales and offsets (the corruptions
// off, so that it is the only step): the lowest pixel exactly 0, the highest
// exactly 1, and every value within a few roundings of minmax01's.
static void test_minmax(void) {
  enum { M = 37 * 41 }; // no whole number of vectors
  static float x[M], out[M], want[M];
  AugmentParams p = nothing();
  int bad = 0;
  for (int t = 0; t < 500; t++) {
    double scale = pow(10.0, t % 13 - 6.0), offset = t % 3 - 1.0;
    int lo = 0, hi = 0;
    for (int i = 0; i < M; i++) {
      x[i] = (float)((rng_uniform(5, (uint64_t)t, (uint64_t)i) + offset) * scale);
      lo = x[i] < x[lo] ? i : lo, hi = x[i] > x[hi] ? i : hi;
    }
    augment_image(&p, 1, 0, (uint64_t)t, 37, 41, x, out, NULL);
    memcpy(want, x, sizeof want);
    minmax01(want, M);
    bad += out[lo] != 0.0f || out[hi] != 1.0f || !within_roundings(out, want, M);
  }
  CHECK(bad == 0, "min-max: %d of 500 images off", bad);
}

// The optional steps (flips, rotation, gamma, bias field) on a small image of
// odd sides, so that the rotation's centre is a pixel, and not square, so that
// a flip's axis matters.
enum { SH = 9, SW = 7, SN = SH * SW };

// clean, with the seed's steps off, as augment_image leaves it before a step.
static void plain(const float *clean, float *x) {
  memcpy(x, clean, SN * sizeof *x);
}

static void test_optional_off(void) {
  static float clean[N], a[N], b[N];
  smooth_image(clean, H, W);
  // The explicit offs, and a zeroed gamma_max, give augment_defaults' output.
  AugmentParams off = augment_defaults();
  off.flip_lr_p = off.flip_ud_p = off.rotate_max_deg = off.bias_max = 0.0;
  off.gamma_max = 1.0;
  AugmentParams zero_gamma = off;
  zero_gamma.gamma_max = 0.0;
  int same = 0;
  for (uint64_t s = 0; s < 20; s++) {
    AugmentParams d = augment_defaults();
    d.cutout_p = d.blur_p = s % 2 ? 1.0 : d.cutout_p; // cutout and blur too, on the odd samples
    AugmentParams o = off, z = zero_gamma;
    o.cutout_p = z.cutout_p = d.cutout_p, o.blur_p = z.blur_p = d.blur_p;
    AugmentDraws dd, od;
    augment_image(&d, 7, 3, s, H, W, clean, a, &dd);
    augment_image(&o, 7, 3, s, H, W, clean, b, &od);
    int ok = memcmp(a, b, sizeof a) == 0;
    augment_image(&z, 7, 3, s, H, W, clean, b, NULL);
    ok = ok && memcmp(a, b, sizeof a) == 0;
    ok = ok && !dd.flip_lr && !dd.flip_ud && dd.angle_deg == 0 && dd.gamma == 1.0 && dd.bias[0] == 0;
    same += ok;
  }
  CHECK(same == 20, "optional steps off: %d of 20 images as augment_defaults gives", same);
  // Turning them on leaves the seed's draws where they were.
  AugmentParams on = augment_defaults();
  on.flip_lr_p = on.flip_ud_p = 0.5, on.rotate_max_deg = 10, on.gamma_max = 1.5, on.bias_max = 0.1;
  int moved = 0;
  for (uint64_t s = 0; s < 200; s++) {
    AugmentDraws x = augment_draws(&off, 7, 3, s, H, W), y = augment_draws(&on, 7, 3, s, H, W);
    moved += x.r_drop != y.r_drop || x.r_noise != y.r_noise || x.cutout != y.cutout || x.cut_size != y.cut_size ||
             x.cut_row != y.cut_row || x.cut_col != y.cut_col || x.blurred != y.blurred;
  }
  CHECK(moved == 0, "%d of 200 images: the seed's draws moved with the optional steps on", moved);
}

static void test_flips(void) {
  float clean[SN], out[SN], want[SN];
  for (int i = 0; i < SN; i++)
    clean[i] = (float)rng_uniform(21, 0, (uint64_t)i);
  clean[0] = 0.0f, clean[1] = 1.0f; // min-max is then the identity, so flips compare exactly
  for (int lr = 0; lr <= 1; lr++)
    for (int ud = 0; ud <= 1; ud++) {
      AugmentParams p = nothing();
      p.flip_lr_p = lr, p.flip_ud_p = ud;
      AugmentDraws d;
      augment_image(&p, 3, 1, 5, SH, SW, clean, out, &d);
      plain(clean, want);
      int wrong = 0;
      for (int r = 0; r < SH; r++)
        for (int c = 0; c < SW; c++)
          wrong += out[r * SW + c] != want[(ud ? SH - 1 - r : r) * SW + (lr ? SW - 1 - c : c)];
      CHECK(wrong == 0 && d.flip_lr == lr && d.flip_ud == ud, "flip lr %d ud %d: %d pixels not the mirror image", lr,
            ud, wrong);
    }
  // Even sides too, directly: twice is the identity.
  float e[4 * 6], f[4 * 6];
  for (int i = 0; i < 24; i++)
    e[i] = f[i] = (float)i;
  augment_flip(f, 4, 6, 1, 0);
  CHECK(f[0] == 5.0f && f[5] == 0.0f && f[6] == 11.0f, "even left-right flip");
  augment_flip(f, 4, 6, 1, 1);
  CHECK(f[0] == 18.0f && f[23] == 5.0f, "even up-down flip");
  augment_flip(f, 4, 6, 0, 1);
  CHECK(memcmp(e, f, sizeof e) == 0, "flipping twice is not the identity");
  // The frequency of a flip is its probability.
  enum { DRAWS = 20000 };
  AugmentParams p = nothing();
  p.flip_lr_p = 0.3, p.flip_ud_p = 0.6;
  int lrs = 0, uds = 0, both = 0;
  for (int s = 0; s < DRAWS; s++) {
    AugmentDraws d = augment_draws(&p, 9, 2, (uint64_t)s, H, W);
    lrs += d.flip_lr, uds += d.flip_ud, both += d.flip_lr && d.flip_ud;
  }
  CHECK(near((double)lrs / DRAWS, 0.3, sqrt(0.3 * 0.7 / DRAWS)), "left-right frequency %g", (double)lrs / DRAWS);
  CHECK(near((double)uds / DRAWS, 0.6, sqrt(0.6 * 0.4 / DRAWS)), "up-down frequency %g", (double)uds / DRAWS);
  CHECK(near((double)both / DRAWS, 0.18, sqrt(0.18 * 0.82 / DRAWS)), "flips not independent: both %g",
        (double)both / DRAWS);
}

static void test_rotate(void) {
  float src[SN], dst[SN], want[SN];
  for (int i = 0; i < SN; i++)
    src[i] = 0.1f + 0.8f * (float)rng_uniform(22, 0, (uint64_t)i);
  augment_rotate(src, dst, SH, SW, 0.0);
  CHECK(memcmp(src, dst, sizeof src) == 0, "0 degrees is not the identity");
  int kept = 0;
  const double angles[6] = {1.0, -3.5, 10.0, 45.0, 90.0, 180.0};
  for (int i = 0; i < 6; i++) {
    augment_rotate(src, dst, SH, SW, angles[i]);
    kept += dst[(SH / 2) * SW + SW / 2] == src[(SH / 2) * SW + SW / 2];
  }
  CHECK(kept == 6, "the centre pixel kept at %d of 6 angles", kept);
  // 90 degrees counterclockwise on a square: the right column comes to the top row.
  enum { S = 7 }; // its corners turn 45 degrees to beyond a pixel off the image
  float sq[S * S], rot[S * S];
  for (int i = 0; i < S * S; i++)
    sq[i] = (float)i;
  augment_rotate(sq, rot, S, S, 90.0);
  double err = 0;
  for (int r = 0; r < S; r++)
    for (int c = 0; c < S; c++)
      err = fmax(err, fabs(rot[r * S + c] - sq[c * S + (S - 1 - r)]));
  CHECK(err < 1e-4, "90 degrees off by %g", err);
  // Off the image is zero: the corners of a 45-degree turn of a constant image.
  for (int i = 0; i < S * S; i++)
    sq[i] = 1.0f;
  augment_rotate(sq, rot, S, S, 45.0);
  CHECK(rot[0] == 0.0f && rot[S * S - 1] == 0.0f && rot[(S / 2) * S + S / 2] == 1.0f, "45 degrees: corners %g %g",
        rot[0], rot[S * S - 1]);

  // Through augment_image: the drawn angle in range, the image as augment_rotate gives it.
  AugmentParams p = nothing();
  p.rotate_max_deg = 10.0;
  float out[SN];
  int bad = 0, negative = 0;
  for (uint64_t s = 0; s < 100; s++) {
    AugmentDraws d;
    augment_image(&p, 4, 0, s, SH, SW, src, out, &d);
    augment_rotate(src, want, SH, SW, d.angle_deg);
    minmax01(want, SN);
    bad += !within_roundings(out, want, SN) || !(fabs(d.angle_deg) <= 10.0) || d.angle_deg == 0;
    negative += d.angle_deg < 0;
  }
  CHECK(bad == 0 && negative > 20 && negative < 80, "rotation: %d bad images, %d negative angles", bad, negative);
}

static void test_gamma_bias(void) {
  float x[SN], y[SN], out[SN], want[SN];
  for (int i = 0; i < SN; i++)
    x[i] = y[i] = (float)rng_uniform(23, 0, (uint64_t)i);
  augment_gamma(y, SN, 1.0);
  CHECK(memcmp(x, y, sizeof x) == 0, "gamma 1 is not the identity");
  const double zero[5] = {0};
  augment_bias(y, SH, SW, zero);
  CHECK(memcmp(x, y, sizeof x) == 0, "bias 0 is not the identity");
  y[0] = 0.0f, y[1] = 1.0f, y[2] = 0.25f;
  augment_gamma(y, SN, 2.0);
  CHECK(y[0] == 0.0f && y[1] == 1.0f && y[2] == 0.0625f, "gamma 2: %g %g %g", y[0], y[1], y[2]);
  // A pure u term: 1 + 0.5 u is 0.5 on the left column, 1.5 on the right.
  float ones[SN];
  for (int i = 0; i < SN; i++)
    ones[i] = 1.0f;
  const double tilt[5] = {0.5, 0, 0, 0, 0};
  augment_bias(ones, SH, SW, tilt);
  CHECK(ones[0] == 0.5f && ones[SW - 1] == 1.5f && ones[SW / 2] == 1.0f, "bias tilt %g %g %g", ones[0], ones[SW - 1],
        ones[SW / 2]);

  // Through augment_image, gamma: in [1 / g, g], both sides of 1, the image as the steps give it.
  AugmentParams p = nothing();
  p.gamma_max = 2.0;
  int bad = 0, below = 0;
  for (uint64_t s = 0; s < 100; s++) {
    AugmentDraws d;
    augment_image(&p, 4, 0, s, SH, SW, x, out, &d);
    memcpy(want, x, sizeof want);
    minmax01(want, SN);
    augment_gamma(want, SN, d.gamma);
    minmax01(want, SN);
    bad += !within_roundings(out, want, SN) || !(d.gamma >= 0.5 && d.gamma <= 2.0);
    below += d.gamma < 1;
  }
  CHECK(bad == 0 && below > 20 && below < 80, "gamma: %d bad images, %d below 1", bad, below);
  // Bias: coefficients in range, the field as augment_bias gives it.
  p = nothing();
  p.bias_max = 0.1;
  bad = 0;
  int signs = 0;
  for (uint64_t s = 0; s < 100; s++) {
    AugmentDraws d;
    augment_image(&p, 4, 0, s, SH, SW, x, out, &d);
    memcpy(want, x, sizeof want);
    augment_bias(want, SH, SW, d.bias);
    minmax01(want, SN);
    bad += !within_roundings(out, want, SN);
    for (int k = 0; k < 5; k++) {
      bad += !(fabs(d.bias[k]) <= 0.1) || d.bias[k] == 0;
      signs += d.bias[k] < 0;
    }
  }
  CHECK(bad == 0 && signs > 150 && signs < 350, "bias: %d bad, %d of 500 coefficients negative", bad, signs);
}

// Every optional step on: deterministic in (seed, epoch, sample), each draw
// moving with each of them, and the output in [0, 1].
static void test_optional_all(void) {
  static float clean[N], a[N], b[N];
  AugmentParams p = augment_defaults();
  p.cutout_p = p.blur_p = 1.0;
  p.flip_lr_p = p.flip_ud_p = 0.5, p.rotate_max_deg = 15, p.gamma_max = 1.5, p.bias_max = 0.15;
  smooth_image(clean, H, W);
  AugmentDraws da, db;
  augment_image(&p, 7, 3, 42, H, W, clean, a, &da);
  augment_image(&p, 7, 3, 42, H, W, clean, b, &db);
  CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(&da, &db, sizeof da) == 0, "all on: not deterministic");
  memcpy(b, clean, sizeof b);
  augment_image(&p, 7, 3, 42, H, W, b, b, NULL);
  CHECK(memcmp(a, b, sizeof a) == 0, "all on: in place differs");
  const uint64_t other[3][3] = {{8, 3, 42}, {7, 4, 42}, {7, 3, 43}};
  for (int i = 0; i < 3; i++) {
    AugmentDraws d = augment_draws(&p, other[i][0], (uint32_t)other[i][1], other[i][2], H, W);
    CHECK(d.angle_deg != da.angle_deg && d.gamma != da.gamma && d.bias[0] != da.bias[0] && d.bias[4] != da.bias[4],
          "(seed, epoch, sample) change %d leaves an optional draw", i);
  }
  int bad = 0;
  for (int s = 0; s < 60; s++) {
    float level = (float)rng_uniform(3, 0, (uint64_t)s);
    for (int i = 0; i < N; i++)
      clean[i] = s % 4 == 0 ? level : (float)rng_uniform(3, 1 + (uint64_t)s, (uint64_t)i);
    augment_image(&p, 11, 2, (uint64_t)s, H, W, clean, a, NULL);
    for (int i = 0; i < N; i++)
      bad += !(a[i] >= 0.0f && a[i] <= 1.0f); // NaN fails both
  }
  CHECK(bad == 0, "all on: %d pixels outside [0, 1] or NaN", bad);
}

// Seconds on clock since t0.
static double since(clockid_t clock, const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(clock, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

// The wall time, and this thread's CPU time, which leaves out the time other
// processes took the core (both printed: on a busy machine they differ).
static void time_images(int images) {
  static float clean[N], out[N];
  smooth_image(clean, H, W);
  AugmentParams p = augment_defaults();
  double checksum = 0;
  struct timespec wall, cpu;
  clock_gettime(CLOCK_MONOTONIC, &wall);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
  for (int s = 0; s < images; s++) {
    augment_image(&p, 1, 0, (uint64_t)s, H, W, clean, out, NULL);
    checksum += out[s % N];
  }
  double secs = since(CLOCK_MONOTONIC, &wall), cpu_secs = since(CLOCK_THREAD_CPUTIME_ID, &cpu);
  printf("augmented %d images of %d x %d in %.3f s: %.0f images/s on one thread, %.0f per second of its CPU time "
         "(checksum %g)\n",
         images, H, W, secs, images / secs, images / cpu_secs, checksum);
}

// argv[1]: how many images to time (10,000 unless given).
int main(int argc, char **argv) {
  test_determinism();
  test_statistics();
  test_dropout_noise();
  test_rng_blocks();
  test_pixel_draws();
  test_pixel_draws_golden();
  test_pixel_paths();
  test_blur();
  test_cutout();
  test_range();
  test_minmax();
  test_optional_off();
  test_flips();
  test_rotate();
  test_gamma_bias();
  test_optional_all();
  time_images(argc > 1 ? atoi(argv[1]) : 10000);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
