// trainer.h: the interface between a model's generated C source and the
// runtime. caec emits, per model, the kernels and one CaecModel that
// describes them: the parameter table (names, shapes, offsets), the arena
// sizes, the train section's settings, and the two programs (the training step
// and the inference forward). trainer.c turns any CaecModel into the trainer's
// commands.
#ifndef CAEC_TRAINER_H
#define CAEC_TRAINER_H

#include "augment.h"
#include "cache.h"
#include "kern_work.h"
#include "kinds.h"
#include "safetensors.h"
#include "version.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { CAEC_ZEROS, CAEC_ONES, CAEC_GLOROT } CaecInit; // Keras's defaults per role

typedef struct CaecParam {
  const char *name; // PyTorch state_dict key
  int ndim, dims[4];
  int64_t numel;
  int64_t offset;   // floats into the params arena, and the same into grads
  CaecInit init;
  double limit;     // Glorot-uniform: values in [-limit, limit)
  bool trainable, l2;
  double momentum;  // a batch norm's running statistic: its layer's momentum (Keras's); 0 otherwise
} CaecParam;

// One step's settings; the model's train section gives the defaults.
typedef struct CaecHyper {
  CaecLoss loss;
  CaecOptim optimizer;
  double lr, rho, eps, beta1, beta2, momentum, l2;
  bool dropout;  // spatial dropout on (training)
  bool update;   // run the optimizer after the gradients
  uint64_t seed; // spatial dropout's random numbers
} CaecHyper;

// The arenas (64-byte aligned), the kernels' per-thread workspace, the step counter and the loss's target.
typedef struct CaecState {
  float *params, *grads, *optim;
  unsigned char *acts, *scratch;
  KThreads work;       // thread_work_bytes for each of OpenMP's threads when the state was made (C only)
  int64_t step;        // optimizer steps taken
  const float *target; // train_step's target, [batch, 1, height, width]; NULL: x (denoising needs the clean image)
  void *device;        // a GPU trainer's own state (cu_host.c); NULL for C
} CaecState;

// The train section's run settings for the `train` command (seed-models.md
// section 5: Keras's EarlyStopping and ReduceLROnPlateau on val_loss).
typedef struct CaecSchedule {
  int epochs;
  bool early_stopping;
  int es_patience;
  double es_min_delta; // < 0: by the loss, 2e-7 (mse) or 5e-5 (dssim)
  bool reduce_lr;
  double rl_factor, rl_min_lr;
  int rl_patience;
  double rl_min_delta; // < 0: by the loss, 1e-7 (mse) or 2e-5 (dssim)
} CaecSchedule;

typedef struct CaecModel {
  int abi; // the CAEC_ABI it was generated for (version.h); first, where every version has it
  const char *name, *source, *caec_version, *command;
  int batch, height, width; // the shapes are compiled in: x and y are [batch, 1, height, width]
  int nparams;
  const CaecParam *params;
  int64_t arena_bytes[5]; // params, grads, optim, acts, scratch
  int64_t thread_work_bytes; // the C kernels' workspace per thread (kern_work.h); the rest is in scratch
  int64_t flops;          // of the forward pass, per image (caec check's count)
  CaecHyper defaults;
  CaecSchedule schedule;
  // x, y: [batch, 1, height, width]. train_step returns the loss, L2 term included.
  void (*forward)(CaecState *s, const float *x, float *y);
  double (*train_step)(CaecState *s, const CaecHyper *h, const float *x, float *y);
  // A GPU trainer's (NULL for C): its arenas in device memory that the host
  // reads and writes too, and a line saying where it runs.
  bool (*state_new)(const struct CaecModel *m, CaecState *s);
  void (*state_free)(CaecState *s);
  const char *(*backend)(void);
} CaecModel;

// The options of a training step that `caec interp` and the trainers share.
typedef struct CaecStepArgs {
  const char *weights, *batch, *out;
  int loss, optimizer; // a CaecLoss and a CaecOptim; -1: the model's
  double lr, l2;       // < 0: the model's
  bool no_dropout, update;
  uint64_t seed;
  bool seed_given;     // false: seed is 0, for the model's to replace
  int steps;           // 0: one
} CaecStepArgs;
#define CAEC_STEP_ARGS_INIT {NULL, NULL, NULL, -1, -1, -1, -1, false, false, 0, false, 0}
// Takes argv[*i] (and its value, advancing *i) when it is one of those
// options: returns 1; 0 when it is not one; 2 after printing
// "PROG: error: ..." for a missing or bad value.
int caec_step_arg(const char *prog, int argc, char **argv, int *i, CaecStepArgs *o);
// Settings from the model's defaults and the options given.
CaecHyper caec_step_hyper(const CaecStepArgs *o, CaecHyper defaults);

// trainer.c
bool caec_state_new(const CaecModel *m, CaecState *s); // false when out of memory
void caec_state_free(const CaecModel *m, CaecState *s);
void caec_init(const CaecModel *m, CaecState *s, uint64_t seed); // Keras's initialisers, optimizer state zeroed
// The optimizer update of one parameter of count values at step t (>= 1), with
// the L2 term when l2; without h->update only the L2 term is added to g.
// opt holds two values per parameter value (Adam's moments).
void caec_update(const CaecHyper *h, int64_t t, size_t count, bool l2, float *w, float *g, float *opt);
// The trainer's command line: init, step, bench, info, train, eval, reconstruct.
int caec_trainer_main(const CaecModel *m, int argc, char **argv);

// Shared by the commands. A parameter (or a buffer of its shape) as a tensor.
StTensor caec_param_tensor(const CaecParam *p, const char *name, float *data);
// Writes path atomically with the trainer's metadata (format, producer) and
// meta_kv's (NULL or NULL-terminated key, value pairs); false after a message.
bool caec_write(const CaecModel *m, const char *path, const StTensor *ts, int count, const char *const *meta_kv);
// Prints "PROG: error: MSG (see 'PROG --help')", MSG a format of one string; returns 2.
int caec_usage_error(const char *prog, const char *msg, const char *arg);
// Prints "PROG: error: MSG", MSG a format of one string; returns 1.
int caec_fail(const CaecModel *m, const char *fmt, const char *arg);
// A whole string as a finite decimal number.
bool caec_parse_number(const char *s, double *v);
// Reads every parameter by name from f (read from path) into s->params; false after a message.
bool caec_load_params(const CaecModel *m, const char *path, const StFile *f, CaecState *s);

// The parameters of the safetensors file path into s->params; 0, or 1 after a message.
int caec_read_weights(const CaecModel *m, const char *path, CaecState *s);
// Makes the folder path unless it exists; 0, or 1 after a message.
int caec_make_folder(const CaecModel *m, const char *path);
// The command line of a trainer's command, as a table: its step options (NULL-terminated names, parsed
// by caec_step_arg), its own options, and where operands go. Messages are "option '--X' needs a value",
// "--X must be MUST, not 'V'", "unknown option '--X' of COMMAND" and "unexpected argument 'A'".
typedef enum {
  CAEC_OPT_FLAG,  // bool, no value
  CAEC_OPT_TEXT,  // const char *
  CAEC_OPT_INT,   // int, an integer in [lo, hi]
  CAEC_OPT_REAL,  // double, a number in (lo, hi]
  CAEC_OPT_SPLIT, // SplitSet: test, val or train
  CAEC_OPT_CALL,  // parse(value, value pointer) says whether it is valid
} CaecOptKind;

typedef struct CaecOption {
  const char *name; // "--data"
  CaecOptKind kind;
  void *value;
  double lo, hi;
  bool (*parse)(const char *text, void *value); // CAEC_OPT_CALL
  const char *must;                             // CAEC_OPT_CALL: what a valid value is, for the message
} CaecOption;

typedef struct CaecCommandLine {
  const char *command;           // for "unknown option '--X' of COMMAND"; NULL: "unknown option '--X'"
  const char *const *step;       // the step options it takes
  const CaecOption *options;
  int noptions;
  const char **operands[2];      // where the operands go, in order (NULL: none)
  AugmentParams *augment;        // NULL, or other options go to augment_set ...
  bool *augment_given;           // ... which sets this when one is taken
  void (*usage)(const CaecModel *m);
  const char *const *required[4]; // places (o's or the table's) that must be set at the end; NULL ends ...
  const char *needs;              // ... else "COMMAND needs NEEDS"
  bool model_seed;                // without --seed, o->seed is the model's default (seed_given stays false)
} CaecCommandLine;

// Parses argv[1..] into the table's places and o; returns -1 to go on, 0 after printing the usage for
// -h or --help, 2 after a usage error. Arguments are taken in order, so the first mistake is the one told;
// a missing required one is told after them all.
int caec_parse_command(const CaecModel *m, const CaecCommandLine *c, int argc, char **argv, CaecStepArgs *o);
// Inference on n (1..batch) images of x: the images after them are zeroed, so a
// short last batch runs as a whole one (each image's output depends on itself
// only), and y gets the forward's output for all of them.
void caec_forward_padded(const CaecModel *m, CaecState *s, int n, float *x, float *y);
// Seconds on the monotonic clock.
double caec_now(void);
// Maps DATASET/slices.bin (its path goes to path) and checks that its slices
// have the model's size; 0, or 1 after a message.
int caec_open_cache(const CaecModel *m, const char *data, SliceCache *c, char *path, size_t pathlen);
// The loader's background threads for `threads` kernel threads (0: OpenMP's
// default): a quarter of them, 1 to CAEC_MAX_LOADER_THREADS.
enum { CAEC_MAX_LOADER_THREADS = 4 };
int caec_loader_workers(int threads);

// train.c: `NAME train ...` (argv[0] is "train").
int caec_train_main(const CaecModel *m, int argc, char **argv);
// evaluate.c: `NAME eval ...` and `NAME reconstruct ...` (argv[0] is the command).
int caec_eval_main(const CaecModel *m, int argc, char **argv);
int caec_reconstruct_main(const CaecModel *m, int argc, char **argv);
// figures.c: `NAME figures ...`.
int caec_figures_main(const CaecModel *m, int argc, char **argv);

#endif
