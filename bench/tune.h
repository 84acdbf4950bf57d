// tune.h: `caec tune`, the kernels program run under the name caec-tune.
#ifndef CAEC_BENCH_TUNE_H
#define CAEC_BENCH_TUNE_H

#include "harness.h"
#include "problem.h"

// One shape and pass (kc_problem_name) with more than one algorithm: the time of each, in ms per
// training step (its problems' calls summed), indexed direct 0, Winograd 1.
typedef struct Tuned {
  char name[NAME_BYTES];
  double ms[2];
} Tuned;

// kernels.c: every problem of list that Winograd fits, by both of caec's algorithms, each checked
// against the reference at check_batch first; one Tuned per shape into out (list->count of room).
// The number of shapes, or -1 after a message when a check failed.
int tune_problems(const FoundList *list, const Protocol *protocol, int check_batch, Tuned *out);

// tune.c: caec tune's command line (argv[0] is caec-tune beside caec).
int tune_command(int argc, char **argv);

#endif
