// rng_test.c: Philox4x32-10 against the known-answer vectors of Random123
// (the reference implementation), and the properties the runtime relies on.
#include "rng.h"

#include <stdio.h>

static int passed, failed;

static void check(const char *what, int ok) {
  printf("%-48s %s\n", what, ok ? "ok" : "FAILED");
  ok ? passed++ : failed++;
}

int main(void) {
  static const struct { uint32_t key[2], ctr[4], out[4]; } kat[] = {
      {{0, 0}, {0, 0, 0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0xa4093822, 0x299f31d0}, {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (int i = 0; i < 3; i++) {
    uint32_t out[4];
    philox4x32(kat[i].key, kat[i].ctr, out);
    char name[64];
    snprintf(name, sizeof name, "philox4x32-10 known answer %d", i);
    check(name, out[0] == kat[i].out[0] && out[1] == kat[i].out[1] && out[2] == kat[i].out[2] &&
                    out[3] == kat[i].out[3]);
  }
  // A pure function of its arguments, and different streams differ.
  check("same (seed, stream, index), same bits", rng_bits(42, rng_stream(RNG_DROPOUT, 3), 99) ==
                                                     rng_bits(42, rng_stream(RNG_DROPOUT, 3), 99));
  check("streams differ", rng_bits(42, rng_stream(RNG_DROPOUT, 3), 99) != rng_bits(42, rng_stream(RNG_INIT, 3), 99));
  // Uniforms lie in [0, 1) and their mean and variance are right (1/2, 1/12).
  double sum = 0, sum2 = 0, lo = 1, hi = 0;
  const int count = 1 << 20;
  for (int i = 0; i < count; i++) {
    double u = rng_uniform(7, rng_stream(RNG_AUGMENT, 0), (uint64_t)i);
    sum += u, sum2 += u * u;
    lo = u < lo ? u : lo, hi = u > hi ? u : hi;
  }
  double mean = sum / count, var = sum2 / count - mean * mean;
  check("uniform in [0, 1)", lo >= 0 && hi < 1);
  check("uniform mean 1/2 (within 5 sd)", mean > 0.5 - 5 * 0.2887 / 1024 && mean < 0.5 + 5 * 0.2887 / 1024);
  check("uniform variance 1/12 (within 1%)", var > 0.99 / 12 && var < 1.01 / 12);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
