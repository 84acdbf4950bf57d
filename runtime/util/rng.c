// rng.c: Philox4x32-10 (see rng.h).
#include "rng.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RNG_X86
#endif

void philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]) {
  uint32_t k0 = key[0], k1 = key[1];
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u; // the Weyl sequence of the key schedule
    k1 += 0xBB67AE85u;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

// The block at (seed, stream, index): the seed is the key, the index and the
// stream the counter.
static void block(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4]) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
  philox4x32(key, ctr, out);
}

uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t out[4];
  block(seed, stream, index, out);
  return (uint64_t)out[0] << 32 | out[1];
}

double rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return (double)(rng_bits(seed, stream, index) >> 11) * 0x1.0p-53;
}

double rng_glorot(uint64_t seed, uint32_t param, uint64_t i, double limit) {
  return (2 * rng_uniform(seed, rng_stream(RNG_INIT, param), i) - 1) * limit;
}

void rng_dropout_mask(uint64_t seed, uint32_t node, int64_t step, size_t count, double rate, unsigned char *keep) {
  for (size_t j = 0; j < count; j++)
    keep[j] = rng_uniform(seed, rng_stream(RNG_DROPOUT, node), (uint64_t)step * count + j) >= rate;
}

#ifdef RNG_X86
// The high and low words of the 64-bit products a * m, lane by lane, m the
// same in every lane: _mm256_mul_epu32 multiplies the even lanes, so the odd
// ones are shifted down for a second multiply.
__attribute__((target("avx2"), always_inline)) static inline __m256i mul_hi_lo(__m256i a, __m256i m, __m256i *lo) {
  __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// A Philox round on the words c of 8 blocks, given the high and low words of
// the product of c[2], keyed by k0 and k1.
__attribute__((target("avx2"), always_inline)) static inline void round_avx2(__m256i c[4], __m256i hi2, __m256i lo2,
                                                                             __m256i k0, __m256i k1) {
  __m256i lo0, hi0 = mul_hi_lo(c[0], _mm256_set1_epi32((int32_t)0xD2511F53u), &lo0);
  c[0] = _mm256_xor_si256(_mm256_xor_si256(hi2, c[1]), k0);
  c[2] = _mm256_xor_si256(_mm256_xor_si256(hi0, c[3]), k1);
  c[1] = lo2;
  c[3] = lo0;
}

// Groups 0 .. sets - 1 (sets 1 or 2) of rng_blocks from index into
// out[0 .. 4 sets), lane j of each 8 x 32-bit vector a block: philox4x32's
// rounds, word for word. Two groups side by side give the core independent
// chains of multiplies to overlap.
__attribute__((target("avx2"), always_inline)) static inline void groups_avx2(uint64_t seed, uint64_t stream,
                                                                              uint64_t index, int sets,
                                                                              uint32_t out[][8]) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), sign = _mm256_set1_epi32(INT32_MIN);
  const __m256i m2 = _mm256_set1_epi32((int32_t)0xCD9E8D57u);
  const __m256i w0 = _mm256_set1_epi32((int32_t)0x9E3779B9u), w1 = _mm256_set1_epi32((int32_t)0xBB67AE85u);
  __m256i k0 = _mm256_set1_epi32((int32_t)(uint32_t)seed), k1 = _mm256_set1_epi32((int32_t)(uint32_t)(seed >> 32));
  // The first round's product of word 2, the stream's low word, is the same in
  // every block.
  uint64_t first2 = (uint64_t)0xCD9E8D57u * (uint32_t)stream;
  __m256i c[2][4];
  for (int s = 0; s < sets; s++) {
    uint64_t first = index + 8 * (uint64_t)s;
    c[s][0] = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(uint32_t)first), lanes);
    // first + j carries into the high word where the low word wrapped round,
    // to below j (compared as signed after flipping the sign bits: AVX2 has
    // no unsigned compare).
    __m256i carry = _mm256_cmpgt_epi32(_mm256_xor_si256(lanes, sign), _mm256_xor_si256(c[s][0], sign));
    c[s][1] = _mm256_sub_epi32(_mm256_set1_epi32((int32_t)(uint32_t)(first >> 32)), carry);
    c[s][2] = _mm256_set1_epi32((int32_t)(uint32_t)stream);
    c[s][3] = _mm256_set1_epi32((int32_t)(uint32_t)(stream >> 32));
  }
  for (int round = 0; round < 10; round++) {
    for (int s = 0; s < sets; s++) {
      __m256i lo2 = _mm256_set1_epi32((int32_t)(uint32_t)first2), hi2 = _mm256_set1_epi32((int32_t)(first2 >> 32));
      if (round > 0)
        hi2 = mul_hi_lo(c[s][2], m2, &lo2);
      round_avx2(c[s], hi2, lo2, k0, k1);
    }
    k0 = _mm256_add_epi32(k0, w0);
    k1 = _mm256_add_epi32(k1, w1);
  }
  for (int s = 0; s < sets; s++)
    for (int w = 0; w < 4; w++)
      _mm256_storeu_si256((__m256i *)out[4 * s + w], c[s][w]);
}

__attribute__((target("avx2"))) static void blocks_avx2(uint64_t seed, uint64_t stream, uint64_t index,
                                                        size_t groups, uint32_t out[][8]) {
  size_t g = 0;
  for (; g + 2 <= groups; g += 2)
    groups_avx2(seed, stream, index + 8 * g, 2, out + 4 * g);
  if (g < groups)
    groups_avx2(seed, stream, index + 8 * g, 1, out + 4 * g);
}
#endif

void rng_blocks(uint64_t seed, uint64_t stream, uint64_t index, size_t groups, uint32_t out[][8]) {
#ifdef RNG_X86
  if (__builtin_cpu_supports("avx2")) {
    blocks_avx2(seed, stream, index, groups, out);
    return;
  }
#endif
  for (size_t g = 0; g < groups; g++)
    for (int j = 0; j < 8; j++) {
      uint32_t r[4];
      block(seed, stream, index + 8 * g + (uint64_t)j, r);
      for (int w = 0; w < 4; w++)
        out[4 * g + (size_t)w][j] = r[w];
    }
}
