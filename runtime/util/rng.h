// rng.h: counter-based random numbers. Philox4x32-10 (Salmon et al., SC'11;
// the generator of cuRAND and JAX) maps (key, counter) to random bits with no
// state, so a value depends only on (seed, stream, index): the same numbers
// come out for any thread count, on the CPU and on a GPU, and resuming a run
// needs only the counters.
#ifndef CAEC_RNG_H
#define CAEC_RNG_H

#include <stddef.h>
#include <stdint.h>

// What the numbers are for; part of the stream so that uses never overlap.
enum { RNG_INIT = 1, RNG_DROPOUT = 2, RNG_AUGMENT = 3, RNG_SHUFFLE = 4, RNG_SYNTH = 5 };

static inline uint64_t rng_stream(uint32_t purpose, uint32_t id) { return (uint64_t)purpose << 32 | id; }

void philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);
// 64 random bits at (seed, stream, index).
uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t index);
// A double uniform in [0, 1) with 53 random bits.
double rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
// The Philox blocks at (seed, stream) of the indices index .. index + 8 groups
// - 1, with rng_bits's key and counters, as 4 groups vectors of 8 words:
// out[4 g + w][j] is word w of the block of index + 8 g + j. AVX2 code
// computes 8 or 16 blocks at once where the CPU has it, with the same bits as
// philox4x32.
void rng_blocks(uint64_t seed, uint64_t stream, uint64_t index, size_t groups, uint32_t out[][8]);


// The values the interpreter and the generated trainers share, so both start
// from the same weights and drop the same channels:
// parameter `param`'s value i under Keras's Glorot-uniform, in [-limit, limit);
double rng_glorot(uint64_t seed, uint32_t param, uint64_t i, double limit);
// the spatial-dropout mask of dropout layer `node` at optimizer step `step`:
// keep[j] for the count = batch * channels (image, channel) pairs, each kept
// with probability 1 - rate.
void rng_dropout_mask(uint64_t seed, uint32_t node, int64_t step, size_t count, double rate, unsigned char *keep);

#endif
