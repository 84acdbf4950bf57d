// augment_avx2.c: augment_pixels.h's loops built for AVX2 (CMake adds -mavx2,
// on x86-64 only), 8 lanes where augment.c's own copy has 4; augment.c calls
// these where the CPU has AVX2.
#include "augment_pixels.h"

void augment_dropout_noise_avx2(const float *src, float *dst, size_t n, double r_drop, double r_noise, uint64_t seed,
                                uint64_t stream, uint64_t index) {
  dropout_noise(src, dst, n, r_drop, r_noise, seed, stream, index);
}

void augment_renormalise_avx2(float *x, size_t n) { renormalise(x, n); }
