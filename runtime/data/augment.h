// augment.h: the seed's input corruption for denoising training (img_augment,
// seed-models.md section 4). Only the input is corrupted; the target stays the
// clean slice. Per image of h x w floats in [0, 1], row-major:
//   1. r_drop, r_noise ~ U[0, drop_max), U[0, noise_max);
//   2. pixel dropout: each pixel zeroed with probability r_drop, survivors
//      scaled by 1 / (1 - r_drop) (tf.nn.dropout);
//   3. additive Gaussian noise of sd r_noise (Keras GaussianNoise);
//   4. u1, u2 ~ U[0, 1);
//   5. if u1 < cutout_p, a zeroed square (tfa.image.cutout): size drawn from
//      cutout_min..cutout_max, half = size / 2, centre (offset, offset) with
//      the offset drawn from offset_min..offset_max (the seed's centre is on
//      the diagonal), or anywhere in the image when cutout_diagonal is 0;
//   6. if u2 < blur_p, a 3x3 Gaussian blur of sd blur_sigma with reflect
//      padding (tfa.image.gaussian_filter2d);
//   then the optional steps, all off by default (augment_defaults), each on
//   the corrupted image so that the corruption moves with the anatomy:
//   7a. flips: left-right when u_lr < flip_lr_p, up-down when u_ud < flip_ud_p;
//   7b. rotation by an angle ~ U[-rotate_max_deg, rotate_max_deg) about the
//       image centre ((h-1)/2, (w-1)/2), bilinear, zero outside the image;
//   7c. gamma: min-max to [0, 1] first (noise and dropout's scaling leave
//       values outside it, and a negative x^gamma is NaN), then x^gamma with
//       gamma = exp(U[-log(gamma_max), log(gamma_max))), for gamma_max > 1;
//   7d. bias field: x * max(0, 1 + b(u, v)) with u, v in [-1, 1] across the
//       columns and rows and b = c1 u + c2 v + c3 u^2 + c4 u v + c5 v^2, each
//       c ~ U[-bias_max, bias_max) (no constant: the min-max would undo it);
//   8. min-max renormalisation to [0, 1] (minmax01 of resize.h, to within 2
//      ulps: a multiply by the range's reciprocal where minmax01 divides; the
//      lowest value still 0 and the highest 1).
//
// Every draw comes from the counter-based RNG at (seed, rng_stream(RNG_AUGMENT,
// epoch), index), so an image's corruption depends only on (seed, epoch,
// sample), never on thread count, order or instruction set. Indices of
// sample s, with stride = AUGMENT_SLOTS + 8 * ceil(3 * ceil(h*w / 16) / 4),
// start at base = s * stride:
//   base + 0..6    r_drop, r_noise, u1, u2, cutout size, cutout row (the
//                  offset when on the diagonal), cutout column (anywhere only);
//   base + 7..15   u_lr, u_ud, rotation angle, gamma, bias c1..c5 (drawn
//                  only when their step is on);
//   base + 16 ..   the pixel draws: Philox blocks (four 32-bit words) in
//                  groups of 8, read as vectors of 8 words, vector v word
//                  v mod 4 of the blocks base + 16 + 8 floor(v / 4) + j
//                  (lane j). The pixels, row-major, go in sets of 16; set k
//                  takes vectors 3k, 3k + 1 and 3k + 2, and lane j of them
//                  serves pixels 16k + j and 16k + 8 + j: one Box-Muller pair
//                  of normals from the first two words (the first pixel's and
//                  the second's), their dropout draws from the high and low
//                  16 bits of the third. (3 words for 2 pixels: the dropout
//                  draws need no more bits, and the blocks are most of the
//                  cost; sets of 16 so that vectors of 4 or 8 lanes take
//                  their words in order.)
#ifndef CAEC_AUGMENT_H
#define CAEC_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

enum { AUGMENT_SLOTS = 16 }; // per-image scalar draws, before the pixel blocks

// Probabilities and rates lie in [0, 1); each min <= its max. The pixel numbers
// are the seed's for 128 x 128 images: scale them for other sizes.
typedef struct AugmentParams {
  int enabled;                  // 0: the input is the clean image
  double drop_max, noise_max;   // r_drop ~ U[0, drop_max), r_noise ~ U[0, noise_max)
  double cutout_p;              // probability of a cutout
  int cutout_min, cutout_max;   // its size, inclusive (the trained runs: 10..29)
  int offset_min, offset_max;   // its centre on the diagonal, inclusive
  int cutout_diagonal;          // 1: centre (offset, offset); 0: anywhere in the image
  double blur_p, blur_sigma;    // probability and sd of the 3x3 Gaussian blur
  // The optional steps (7a-7d above); the zero of each is off, so a zeroed
  // struct and augment_defaults() give the seed's corruption.
  double flip_lr_p, flip_ud_p;  // probabilities of a left-right and an up-down flip
  double rotate_max_deg;        // the largest rotation, in degrees; 0: none
  double gamma_max;             // gamma in [1 / gamma_max, gamma_max]; <= 1: none
  double bias_max;              // the largest bias coefficient; 0: none (keep it
                                // below 0.2 so the field stays positive)
} AugmentParams;

// What an image got; the cutout fields are 0 when it got none.
typedef struct AugmentDraws {
  double r_drop, r_noise;
  int cutout, cut_size, cut_row, cut_col, cut_half; // zeroed rows and columns [centre - half, centre + half)
  int blurred;
  int flip_lr, flip_ud;
  double angle_deg; // 0 when not rotated
  double gamma;     // 1 when off
  double bias[5];   // c1..c5, all 0 when off
} AugmentDraws;

// The seed's trained settings.
AugmentParams augment_defaults(void);
// p with its pixel sizes (cutout size and offset) scaled from 128 to size.
AugmentParams augment_scaled(AugmentParams p, int size);
// The seed's settings for size x size images.
AugmentParams augment_for_size(int size);

// The corruption's command-line options, shared by caedata preview and the
// trainers' train: --cutout diagonal|anywhere and the optional steps. Sets
// option `name` (without its dashes) from value: 0; 1 when name is not one of
// them; -1 with "--NAME ..." in err for a missing (NULL) or bad value.
int augment_set(AugmentParams *p, const char *name, const char *value, char *err, size_t errlen);
extern const char AUGMENT_OPTIONS_HELP[]; // their lines for a --help

// The scalar draws of one image, without touching pixels (for previews and tests).
AugmentDraws augment_draws(const AugmentParams *p, uint64_t seed, uint32_t epoch, uint64_t sample, int h, int w);

// Writes the corrupted clean image to out (which may be clean); what was
// applied goes to drawn when it is not NULL.
void augment_image(const AugmentParams *p, uint64_t seed, uint32_t epoch, uint64_t sample, int h, int w,
                   const float *clean, float *out, AugmentDraws *drawn);

// The steps, in place, for fixed corruptions (the seed's custom-corruption
// figures) and tests. Dropout and noise share their draws, laid out from
// (seed, stream, index) as the pixel draws above are from base + 16. A pixel
// drops when its 16-bit draw is below r_drop 2^16 (rounded down); the normals
// are Box-Muller's with float approximations of ln, sin and cos (augment.c
// says how close).
void augment_dropout_noise(float *x, size_t n, double r_drop, double r_noise, uint64_t seed, uint64_t stream,
                           uint64_t index);
void augment_cutout(float *x, int h, int w, int row, int col, int half);
void augment_blur(float *x, int h, int w, double sigma);
void augment_flip(float *x, int h, int w, int lr, int ud);
// dst = src rotated counterclockwise by deg (as displayed, row 0 at the top),
// bilinear, zero outside; src and dst must not overlap.
void augment_rotate(const float *src, float *dst, int h, int w, double deg);
// x^gamma on values in [0, 1].
void augment_gamma(float *x, size_t n, double gamma);
// x times the field max(0, 1 + b) of coefficients c[5] (the layout above).
void augment_bias(float *x, int h, int w, const double c[5]);

#endif
