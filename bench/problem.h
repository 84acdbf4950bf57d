// problem.h: one convolution kernel call of a generated trainer as a
// benchmark problem, its canonical name, and the scan of generated sources
// that lists them.
//
// Names (bench/README.md) say everything needed to re-run a row:
//   OP_PASS_mbN_icCocC_ihHohH_kKsSpP[+FEATURE...]
// OP conv or convt; PASS fwd, bwd_data or bwd_weights; ic/ih the op's input
// channels and height, oc/oh its output's (iw/ow follow ih/oh when the
// images are not square; pP is pTOPxLEFT when the two differ). Features, in
// this order:
//   in_catC     the kernel's input is two tensors, channels [0, C) and the rest
//               (a concatenation that is never copied); bwd_weights: the
//               forward input x;
//   in_bn, in_relu, in_bnrelu          a prologue on the input's (first) piece:
//               batch norm (scale, shift) and/or relu applied as it is loaded;
//   in_b_bn, in_b_relu, in_b_bnrelu    the same on the second piece;
//   dy_...      the same for bwd_weights' other input, the output gradient;
//   out_catC, out_acc, out_b_acc       the output split in two, pieces added to
//               instead of assigned;
//   bias        a bias added (bwd_weights: its gradient computed);
//   res, relu   a residual added, then relu, on the way out;
//   stats       the output's batch-norm sums computed as it is stored.
//
// Passes map to the runtime's kernels (kern.h): conv fwd and convt bwd_data
// are kc_gather, conv bwd_data and convt fwd kc_scatter, both bwd_weights kc_wgrad.
#ifndef CAEC_BENCH_PROBLEM_H
#define CAEC_BENCH_PROBLEM_H

#include "kern.h"

#include <stdbool.h>
#include <stdio.h>

typedef enum { OP_CONV, OP_CONVT } Op;
typedef enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHTS } Pass;
typedef enum { KERNEL_GATHER, KERNEL_SCATTER, KERNEL_WGRAD } Kernel;

// A tensor a kernel reads: one piece (cat == 0) or two split at channel cat,
// each with its prologue.
typedef struct Side {
  int cat;
  bool bn[2], relu[2];
} Side;

typedef struct Problem {
  Op op;
  Pass pass;
  KConv g;
  Side in, dy; // dy: bwd_weights only
  int out_cat; // gather and scatter outputs
  bool acc[2];
  bool bias, res, relu, stats;
  bool wino; // caec computes it with its Winograd kernels (kw_*), not its direct ones (not part of the name)
} Problem;

enum { NAME_BYTES = 160, WHERE_BYTES = 2048 };

Kernel problem_kernel(const Problem *p);
// The canonical name; parse gives false (and a message on stderr) for a
// string that is not one.
void problem_name(const Problem *p, char name[NAME_BYTES]);
bool problem_parse(const char *name, Problem *p);
// The same problem at another batch size.
Problem problem_at_batch(const Problem *p, int n);

// Useful FLOPs (taps that fall on the image only; 2 per multiply-add) and
// compulsory fp32 bytes (each tensor read or written once).
double problem_flops(const Problem *p);
double problem_bytes(const Problem *p);

// The tensors a problem touches, in the op's canonical NCHW shapes.
typedef struct Shape {
  int c, h, w;
} Shape;
Shape problem_image(const Problem *p);
Shape problem_grid(const Problem *p);
Shape problem_input(const Problem *p);  // the kernel's input (bwd_weights: x)
Shape problem_output(const Problem *p); // gather/scatter: what it writes; bwd_weights: dy
int problem_bias_channels(const Problem *p);

// A list of distinct problems, each with where it occurs.
typedef struct Found {
  Problem p;
  char where[WHERE_BYTES]; // "model:layer (file.cae:line); ..."
  int count;               // calls in the trainers
} Found;

typedef struct FoundList {
  Found *items;
  int count, cap;
} FoundList;

// Adds the training step's convolution kernels of a generated trainer source
// (caec compile's NAME.c: each kc_* call follows its `static const KConv g`
// and the comment naming its .cae line), merging repeats; false after a
// message when the file cannot be read or a call cannot be understood. The
// inference forward's kernels (f*) are left out: they repeat the training
// forward's without the batch-norm sums. flops_per_step: each model's total
// convolution FLOPs per training step, added per call (printed as rows).
bool problem_scan(const char *path, FoundList *list, double *flops_per_step);
// The model of a generated source: its file name without folders and ".c".
void problem_model_of(const char *path, char *model, size_t size);
// Adds p, or merges it into the same problem already listed.
void found_add(FoundList *list, const Problem *p, const char *where);
void found_free(FoundList *list);

#endif
