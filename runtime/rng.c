// rng.c: Philox4x32-10 (see rng.h).
#include "rng.h"

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

uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
  uint32_t out[4];
  philox4x32(key, ctr, out);
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
