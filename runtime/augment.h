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
//   7. min-max renormalisation to [0, 1] (minmax01 of resize.h).
//
// Every draw comes from the counter-based RNG at (seed, rng_stream(RNG_AUGMENT,
// epoch), index), so an image's corruption depends only on (seed, epoch,
// sample), never on thread count or order. Indices of sample s, with
// stride = AUGMENT_SLOTS + (h*w + 1) / 2, start at base = s * stride:
//   base + 0..6    r_drop, r_noise, u1, u2, cutout size, cutout row (the
//                  offset when on the diagonal), cutout column (anywhere only);
//   base + 7..15   reserved;
//   base + 16 + k  one Philox block (four 32-bit words) for pixels 2k, 2k+1:
//                  their two dropout draws and one Box-Muller pair of normals.
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
} AugmentParams;

// What an image got; the cutout fields are 0 when it got none.
typedef struct AugmentDraws {
  double r_drop, r_noise;
  int cutout, cut_size, cut_row, cut_col, cut_half; // zeroed rows and columns [centre - half, centre + half)
  int blurred;
} AugmentDraws;

// The seed's trained settings.
AugmentParams augment_defaults(void);
// The same with the pixel sizes (cutout size and offset) scaled from 128 to size.
AugmentParams augment_for_size(int size);

// The scalar draws of one image, without touching pixels (for previews and tests).
AugmentDraws augment_draws(const AugmentParams *p, uint64_t seed, uint32_t epoch, uint64_t sample, int h, int w);

// Writes the corrupted clean image to out (which may be clean); what was
// applied goes to drawn when it is not NULL.
void augment_image(const AugmentParams *p, uint64_t seed, uint32_t epoch, uint64_t sample, int h, int w,
                   const float *clean, float *out, AugmentDraws *drawn);

// The steps, in place, for fixed corruptions (the seed's custom-corruption
// figures) and tests. Dropout and noise share their draws: pixel pair k uses
// the Philox block at (seed, stream, index + k).
void augment_dropout_noise(float *x, size_t n, double r_drop, double r_noise, uint64_t seed, uint64_t stream,
                           uint64_t index);
void augment_cutout(float *x, int h, int w, int row, int col, int half);
void augment_blur(float *x, int h, int w, double sigma);

#endif
