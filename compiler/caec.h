// caec.h: the types every stage of the compiler shares.
//
// Pipeline (one file per stage):
//   lexer.re      bytes -> tokens                       (re2c)
//   parser.y      tokens -> AST                         (Bison)
//   elaborate.c   AST -> layer graph: blocks expanded, names resolved, args bound
//   shapes.c      per-op shape inference, parameters, FLOPs, size limits
//   train.c       the `train` section -> TrainConfig
//   graph.c       the graph's printers: layer table, IR text, Graphviz DOT
//   fusion.c      which layers share a kernel; concatenations kept as two pointers
//   autodiff.c    graph -> step programs: forward, loss, backward (one adjoint
//                 rule per op), optimizer update, and the inference forward
//   costmodel.c   which algorithm computes each convolution of the C back end
//                 (tuning.c: the files of `caec tune` that override it)
//   workspace.c   the C kernels' scratch: a buffer per kernel, and a size per thread
//   memplan.c     liveness and offsets of every buffer in a few arenas
//   emit_c.c      step programs -> C source (emit_c_*.c: one file per op family,
//                 printing calls of the C kernels or of the CUDA device ops)
//   emit_cuda.c   step programs -> CUDA kernels, their launches and host code
//   build.c       `caec compile` and `caec build`
//   main.c        the `caec` command line
// Everything a compilation allocates lives in one arena (util.c), so a failed
// compile frees all of it at once and no error path can leak.
#ifndef CAEC_H
#define CAEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cu_plan.h" // the CUDA ops' launch plans, and the generated code's layouts and geometry
#include "kern_work.h" // the C kernels' workspaces and their sizes
#include "kinds.h"   // the losses and optimizers
#include "ops.h"     // the ops

#include "atomic.h"     // files written all or nothing, CAEC_PATH_BYTES
#include "version.h"    // CAEC_VERSION, and CAEC_ABI, which the generated source records

// Hard limits: a .cae file is untrusted input, so every size is bounded before
// anything is allocated for it.
enum {
  MAX_SOURCE_BYTES = 4 << 20,    // one .cae file
  MAX_ERRORS = 20,               // diagnostics before giving up
  MAX_BLOCK_DEPTH = 64,          // nested block instantiations
  MAX_EXPR_DEPTH = 2000,         // nesting of one expression, a chain's length included
  MAX_WARNINGS = 100,
  MAX_NODES = 100000,            // layers in one elaborated graph
  MAX_INSTANCES = 10000,         // block instances (they need not make layers, so count them too)
  MAX_EVAL_STEPS = 20000000,     // expression evaluations: elaboration time stays bounded
  MAX_REPEAT = 1000,             // `-> blk(...) * N`
  MAX_IMPORTS = 64,
  MAX_DIM = 1 << 16,             // any one of C, H, W
  MAX_KERNEL = 15,
  MAX_STRIDE = 8,
  MAX_CODEGEN_NODES = 20000,     // layers of a graph that is lowered to a training step
};
#define MAX_TENSOR_ELEMS ((int64_t)1 << 31) // per image, and per parameter

// ---- util.c: arena, strings, checked arithmetic -----------------------------

typedef struct Arena Arena;
// malloc and calloc that exit with a message when memory runs out.
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t size); // zeroed; aborts only on out-of-memory
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Grows *items (n used, *cap allocated) so that one more fits.
void arena_grow(Arena *a, void **items, int n, int *cap, size_t elem);
#define ARENA_PUSH(a, items, n, cap) \
  (arena_grow((a), (void **)&(items), (n), &(cap), sizeof *(items)), &(items)[(n)++])

bool mul_ok(int64_t a, int64_t b, int64_t *out); // false on overflow
bool add_ok(int64_t a, int64_t b, int64_t *out);
int edit_distance(const char *a, const char *b);
const char *with_commas(char buf[32], int64_t v); // 1234567 -> "1,234,567"
// The messages of caec's commands and tools, on stderr, CMD NULL for caec itself:
// "caec CMD: error: MSG (see 'caec CMD --help')", returning 2 (a command-line mistake),
// and "caec CMD: error: MSG", returning 1.
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// The folder of the running executable, where caec's tools are; false when it cannot be read.
bool exe_dir(char *dir, size_t len);

// ---- diag.c: sources and diagnostics ----------------------------------------

typedef struct Source {
  const char *path; // as the user named it
  const char *text; // NUL-terminated copy of the bytes
  size_t len;
} Source;

typedef struct Loc {
  const Source *src;
  int line, col; // 1-based; col counts bytes
} Loc;

typedef struct Diag Diag;
typedef struct Ctx {
  Arena *arena;
  FILE *err;       // where diagnostics go (stderr; a sink when fuzzing)
  int errors, warnings;
  bool werror;     // warnings count as errors
  bool no_imports; // the fuzzer must not touch the file system
  int input_size;  // > 0: overrides the input's height and width (the same architecture, resized)
  Diag *seen;      // emitted diagnostics, so block instances do not repeat them
  int nseen, seen_cap;
} Ctx;

void error_at(Ctx *c, Loc at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void warning_at(Ctx *c, Loc at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void note_at(Ctx *c, Loc at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Reads a whole file into the arena; reports and returns NULL on failure.
Source *source_read(Ctx *c, const char *path, Loc from);
Source *source_from_memory(Ctx *c, const char *path, const char *data, size_t len);

// ---- the AST (parser.y builds it, elaborate.c consumes it) -------------------

typedef enum {
  E_NAME,   // a tensor, a block/op parameter, or a keyword value such as `same`
  E_INT, E_FLOAT, E_BOOL,
  E_CALL,   // op or block application; `a -> f(args)` is f with input a
  E_BINARY, // arithmetic, comparison, and/or
  E_UNARY,  // - and not
  E_TUPLE,  // (a, b): explicit padding
} ExprKind;

typedef enum { OP_ADD_, OP_SUB_, OP_MUL_, OP_DIV_, OP_EQ_, OP_NE_, OP_LT_, OP_LE_, OP_GT_, OP_GE_,
               OP_AND_, OP_OR_, OP_NEG_, OP_NOT_ } Operator;

typedef struct Expr Expr;
typedef struct Arg {
  const char *key; // NULL when positional
  Loc loc;
  Expr *value;
} Arg;

struct Expr {
  ExprKind kind;
  Loc loc;
  const char *name; // E_NAME, E_CALL
  int64_t ival;     // E_INT, E_BOOL
  double fval;      // E_FLOAT
  Operator op;      // E_BINARY, E_UNARY
  Expr *lhs, *rhs;  // E_BINARY (lhs only for E_UNARY)
  Expr *input;      // E_CALL: the chained input, NULL when written as f(x, ...)
  Expr *repeat;     // E_CALL: `* N`, NULL when absent
  Arg *args;        // E_CALL arguments, E_TUPLE elements
  int nargs, args_cap;
};

typedef enum { S_ASSIGN, S_IF, S_RETURN, S_INPUT } StmtKind;

typedef struct Stmt Stmt;
struct Stmt {
  StmtKind kind;
  Loc loc;
  const char *name; // S_ASSIGN, S_INPUT
  Expr *value;      // S_ASSIGN, S_RETURN
  Expr *cond;       // S_IF
  Stmt *then_body, *else_body;
  Expr *dims[4];    // S_INPUT: N, C, H, W
  Stmt *next;
};

typedef enum { T_TENSOR, T_INT, T_FLOAT, T_BOOL } Type;

typedef struct BlockParam {
  const char *name;
  Loc loc;
  Type type;
  Expr *def; // default value, or NULL
} BlockParam;

typedef struct Block {
  const char *name;
  Loc loc;
  BlockParam *params;
  int nparams, params_cap;
  Stmt *body;
  bool imported; // defined in an imported file: unused is not worth a warning
  int uses;
} Block;

typedef struct TrainItem {
  const char *key;
  Loc loc;
  Expr *value;
} TrainItem;

// One compilation unit: the main file plus everything it imports.
typedef struct Program {
  const Source *main_src;
  const char *model_name;
  Loc model_loc;
  Stmt *model_body; // NULL when the unit has no model
  Block **blocks;
  int nblocks, blocks_cap;
  TrainItem *train;
  int ntrain, train_cap;
  bool has_train;
  const char **loaded; // files read so far: an import of one is skipped
  int nloaded, loaded_cap;
} Program;

// parser.y: parses one file into prog, its imports included. False if any error.
bool parse_source(Ctx *c, Program *prog, Source *src, bool is_main, int import_depth);

// ---- the layer graph (elaborate.c builds it; later stages consume it) --------

// OP_CONV, OP_CONVT: attrs out, k, stride, pad (conv: added before/after; convT: cropped from the
// full output). OP_BN: eps, momentum (Keras convention: running = m*running + (1-m)*batch).
// OP_GN: groups, eps. OP_CONCAT: along channels. OP_SPATIAL_DROPOUT: rate (whole channels
// dropped, survivors scaled by 1/(1-rate)). The activations (ops.h's ACT rows): alpha where
// the row says so.
typedef enum { OP_INPUT, CAEC_OPS(CAEC_OP_ENUM, CAEC_OP_ENUM) OP_COUNT } OpKind;

typedef struct Shape { int c, h, w; } Shape; // per image; the batch is graph-wide

// How conv/convT padding was written: `same` is TensorFlow's SAME (for stride 2
// on an even size: 0 before, 1 after; convT: the full output cropped at the
// end), `valid` is none, explicit values are given per side.
typedef enum { PAD_SAME, PAD_VALID, PAD_EXPLICIT } PadMode;

typedef enum { P_WEIGHT, P_BIAS, P_RUNNING_MEAN, P_RUNNING_VAR } ParamRole;

typedef struct Param {
  const char *name; // PyTorch state_dict key, e.g. "rb1.h.conv1.weight"
  int node;
  ParamRole role;
  int ndim;
  int dims[4];      // conv [out,in,kh,kw]; convT [in,out,kh,kw]; norms [C]
  int64_t numel;
  bool trainable;
  bool l2;          // in the L2 penalty (flagged conv kernels only)
} Param;

typedef struct Node {
  int id;           // index in Graph.nodes: SSA, inputs always have smaller ids
  OpKind op;
  const char *name; // dotted layer name, unique in the graph
  Loc loc;          // the .cae call that made it
  int *in;          // input node ids
  int nin;
  Shape shape;      // of the output
  // Attributes (only those of op are meaningful).
  int out_ch, k, stride;
  PadMode pad_mode;
  int pad[4];       // top, bottom, left, right; resolved by shape_node
  bool bias, l2;
  double eps, momentum, alpha, rate;
  int groups;
  int first_param, nparams;
  int64_t flops;    // forward FLOPs per image (formulas in README)
  int64_t bytes;    // forward activation traffic per image: inputs read + output written, fp32
  int uses;         // consumers in the graph
} Node;

// The `train` section; every field has the seed's default (train.c).
typedef struct TrainConfig {
  CaecLoss loss;     // kinds.h
  CaecOptim optimizer;
  double lr, rho, eps, beta1, beta2, momentum;
  int batch, epochs;
  double l2;               // penalty weight on the flagged kernels; 0 = off
  uint64_t seed;
  bool early_stopping;
  int es_patience;
  double es_min_delta;     // NAN: chosen by the loss (2e-7 mse, 5e-5 dssim)
  bool es_restore_best;
  bool reduce_lr;
  double rl_factor, rl_min_lr;
  int rl_patience;
  double rl_min_delta;     // NAN: chosen by the loss (1e-7 mse, 2e-5 dssim)
} TrainConfig;

typedef struct Graph {
  const char *model_name;
  const Source *src;
  int batch;               // 0: symbolic
  const char *batch_name;  // the symbol, e.g. "N"
  Node *nodes;
  int nnodes, nodes_cap;
  Param *params;
  int nparams, params_cap;
  int input, output;       // node ids
  TrainConfig train;
} Graph;

// elaborate.c: program -> graph. NULL if any error was reported.
Graph *elaborate(Ctx *c, Program *prog);
// The whole front end: parse, elaborate, check. NULL if any error.
Graph *compile_file(Ctx *c, const char *path);
Graph *compile_source(Ctx *c, Source *src);

// shapes.c: the op table, one row per op of ops.h. Each op's arguments are
// stored straight into the Node field at `offset` by the elaborator.
typedef enum { A_INT, A_FLOAT, A_BOOL, A_PAD } ArgType;
typedef struct OpArg {
  const char *key;
  ArgType type;
  bool required;
  double def;
  size_t offset;
} OpArg;
typedef struct OpInfo {
  const char *name;
  OpKind op;
  int min_in, max_in; // tensor inputs
  OpArg args[6];      // ends at key == NULL
  bool (*shape)(Ctx *c, Graph *g, Node *n, Shape in); // shape_node's rule for it (in: its first input's shape)
  unsigned fuse;                                       // ops.h's FUSE column: F_* flags
  // An activation (ops.h's ACT rows): its FLOPs per element, whether its
  // adjoint reads the input x (else the output y), whether it takes alpha.
  bool act, grad_from_x, alpha;
  int act_flops;
  const char *bwd_name; // "NAME_bwd": its backward kernel
} OpInfo;
const OpInfo *op_lookup(const char *name); // NULL if not an op
const OpInfo *op_table(int *n);
const char *op_name(OpKind op);
const OpInfo *op_info(OpKind op); // not OP_INPUT
bool op_fuses(OpKind op, unsigned flags); // has any of ops.h's F_* flags (never OP_INPUT)
int graph_resolve(const Graph *g, int i);   // the node an F_ALIAS chain from i stands for
// Infers n's shape, creates its parameters and counts its FLOPs; false after
// reporting an error at n->loc.
bool shape_node(Ctx *c, Graph *g, Node *n);
char *shape_str(Arena *a, const Graph *g, Shape s); // "[N,32,64,64]"

// train.c
void train_defaults(TrainConfig *t);
bool train_config(Ctx *c, Program *prog, TrainConfig *t);

// interp.c: the reference interpreter (runtime/kernels/ref.h kernels, double precision).
// A training step is forward(training) -> loss -> backward -> update.
typedef struct Interp Interp;
Interp *interp_new(const Graph *g, int batch);
void interp_free(Interp *in);
void interp_init(Interp *in, uint64_t seed); // Keras's initialisers
double *interp_param(Interp *in, int p);     // values of g->params[p]
double *interp_param_grad(Interp *in, int p);
const double *interp_output(const Interp *in);
// training: batch statistics in bn and running statistics updated; dropout: spatial dropout on.
const double *interp_forward(Interp *in, const double *x, bool training, bool dropout, uint64_t seed);
double interp_loss(Interp *in, const double *target, CaecLoss loss, double l2); // sets the output gradient
void interp_backward(Interp *in, double l2);
void interp_update(Interp *in, const TrainConfig *t);

// ---- the step programs (fusion.c, autodiff.c, memplan.c; printed by emit_c*.c) ----

// Arenas, as the generated header exports them. Parameters, their gradients
// and the optimizer state persist across steps; activations (saved from the
// forward for the backward) and scratch (activation gradients, packed weights,
// statistics) are planned by liveness. IO buffers are the caller's x and y.
typedef enum { AR_PARAMS, AR_GRADS, AR_OPTIM, AR_ACTS, AR_SCRATCH, AR_IO, AR_COUNT } ArenaId;
enum { ARENA_ALIGN = 64 };

typedef struct Buf {
  const char *name;  // C identifier in the generated source
  const char *shape; // its comment: "[32,64,32,32] NCHW16c"
  ArenaId arena;
  int prog;          // the program that plans it (-1: persistent)
  int64_t bytes;
  int first, last;   // the kernels that use it first and last (liveness); -1: unused
  int64_t offset;    // bytes into its arena
} Buf;

// A tensor as kernels see it: buffer a, or the concatenation of channels
// [0, ca) in a and the rest in b (b == -1: none). A piece may be read through
// a prologue (batch norm, then relu): its scale and shift buffers (-1: none).
typedef struct View {
  int a, b, ca;
  int scale[2], shift[2];
  bool relu[2];
} View;

typedef enum {
  K_PACK_GATHER, K_PACK_SCATTER,         // conv weights into the kernels' layouts
  K_GATHER, K_SCATTER, K_WGRAD,          // conv / convT forward and backward
  K_BN_TRAIN, K_BN_EVAL, K_BN_BWD, K_GN, K_GN_BWD,
  K_BN_SUMS, K_BN_STATS, K_BN_COEFFS,    // batch norm applied by its consumers: statistics and coefficients
  K_ACT, K_ACT_BWD,                      // an activation (Kern.act) and its adjoint
  K_ADD, K_COPY, K_DROPOUT_MASK, K_DROPOUT, K_CONCAT, K_SPLIT,
  K_LOSS,                                // loss and its gradient (sigmoid fused when `fused`)
  K_L2_LOSS,                             // + l2 * sum w^2 of the flagged kernels
  K_UPDATE,                              // one parameter's L2 gradient and optimizer step
  K_COUNT
} KernKind;

// The slots of Kern.p, by kind (the emitted kernels name them: emit_c.c's roles).
enum {
  KP_W = 0, KP_BIAS = 1,               // GATHER, SCATTER: packed weights, bias; WGRAD: dw, db
  KP_SCALE_A = 2, KP_SHIFT_A = 3,      // GATHER, SCATTER, WGRAD: the prologue of the view read through one,
  KP_SCALE_B = 4, KP_SHIFT_B = 5,      // pieces a and b
  KP_GAMMA = 0, KP_BETA = 1,           // the norms
  KP_RUNNING_MEAN = 2, KP_RUNNING_VAR = 3,
  KP_DGAMMA = 2, KP_DBETA = 3,         // BN_BWD, GN_BWD
  KP_SCALE = 4, KP_SHIFT = 5,          // BN_SUMS, BN_STATS, BN_COEFFS: the coefficients of the consumers' prologue
  KP_Y_OUT = 0,                        // LOSS with the sigmoid: y
  KP_PARAM = 0, KP_GRAD = 1, KP_OPTIM = 2, // UPDATE
  KP_COUNT = 6
};

// The C back end's algorithms of a convolution (costmodel.c); CUDA's is always direct.
typedef enum { CV_DIRECT, CV_WINO } ConvVariant;

// A tuning file (tuning.c): the measured winner per canonical problem name (kc_problem_name).
typedef struct TuningEntry {
  const char *name;
  ConvVariant variant;
} TuningEntry;
typedef struct Tuning {
  const char *cpu; // the CPU model it was measured on
  TuningEntry *entries;
  int n, cap;
} Tuning;

typedef struct Kern {
  KernKind kind;
  int node;          // the layer it comes from (its .cae line)
  const char *covers; // the source ops it computes, for --dump-fusion
  View in, in2, out; // the kind's tensors (see autodiff.c)
  bool acc_a, acc_b; // add to out's pieces instead of assigning
  bool relu;         // a fused relu (norms, add)
  bool grid_bias;    // K_WGRAD: the bias is the grid's (conv), not the image's (convT)
  bool sigmoid;      // K_LOSS: the output sigmoid is fused (in = the logits z)
  int p[KP_COUNT];   // parameter-side buffers, by the slots above
  int aux[2];        // saved statistics (mean, invstd) or the dropout mask
  int work;          // the C kernel's shared workspace (workspace.c; -1: none)
  int param;         // K_UPDATE: the parameter
  int piece;         // K_CONCAT / K_SPLIT: channel offset of the piece
  OpKind act;        // K_ACT / K_ACT_BWD: the activation
  ConvVariant variant; // K_PACK_*, K_GATHER, K_SCATTER, K_WGRAD: the algorithm of the C back end
} Kern;

typedef enum { PROG_TRAIN, PROG_FORWARD, PROG_COUNT } ProgId;

// fusion.c's decisions for one node.
typedef struct Fused {
  int absorbed_by;   // -1, or the node whose kernel also computes it
  int out;           // the node whose output its kernel writes (itself, the relu it absorbed, or the add
                     // (or add + relu) a conv's epilogue computes)
  bool view;         // a concat kept as two pointers
  bool prologue;     // a bn applied (with its relu) by its consumers, the conv kernels, on load
  int res_add;       // a conv: -1, or the add its epilogue computes
  bool sums;         // its tensor's batch-norm sums come from the epilogue of the conv writing it
} Fused;

typedef struct Step {
  const Graph *g;
  int batch;
  bool conv_direct;      // every convolution by the direct kernels (caec build --conv direct), else
  const Tuning *tuning;  // the winners of caec tune where it has them (NULL: none), else costmodel.c's
  // fusion.c
  Fused *fused;      // per node
  bool sigmoid_loss; // the output sigmoid is computed by the loss kernel (training)
  // autodiff.c
  Buf *bufs;
  int nbufs, bufs_cap;
  Kern *kerns;       // the programs one after another
  int nkerns, kerns_cap;
  int prog_start[PROG_COUNT + 1];
  int param_buf[AR_COUNT]; // first buffer of the params, grads and optim arenas (one per parameter
                           // each), and of IO (x, then y)
  // memplan.c
  bool planned;
  int64_t arena_bytes[AR_COUNT];
  int64_t max_live[AR_COUNT]; // lower bound: the most bytes live at one kernel
  // workspace.c
  int64_t thread_work; // bytes of workspace per thread, the most any C kernel needs
} Step;

void fuse(Arena *a, Step *s);
// Can the graph be a trainer: 1-channel input and output of the same size?
bool reconstructs(const Graph *g);
// Builds both programs; s->batch is the batch the shapes are compiled for, conv_direct and tuning
// (nullable) as in Step.
Step *build_step(Arena *a, const Graph *g, int batch, bool conv_direct, const Tuning *tuning);
KConv conv_geom(const Graph *g, int batch, int node); // conv or convT node as kern.h's grid and image

// costmodel.c: the algorithm of node's gather or scatter kernel (and of its packed weights).
ConvVariant conv_variant(const Step *s, int node, KernKind kind); // K_PACK_*, K_GATHER, K_SCATTER, K_WGRAD

// tuning.c
const char *conv_variant_name(ConvVariant v); // "direct", "winograd"
Tuning *tuning_read(Ctx *c, const char *path); // NULL after a message naming the file (and line)
bool tuning_find(const Tuning *t, const char *name, ConvVariant *v);
// plan: place by liveness (greedy by size); else every buffer on its own.
void plan_memory(Step *s, bool plan);
// workspace.c: each C kernel's shared workspace as a scratch buffer (Kern.work), and s->thread_work.
void plan_workspaces(Arena *a, Step *s);
bool kern_takes_work(const Kern *k); // the kernel's C entry point takes a KWork
const char *kern_name(const Kern *k); // "gather", "relu_bwd"
char *buf_ident(Arena *a, const char *prefix, const char *name); // a buffer's C name: prefix + name, '.' -> '_'
void print_fusion(FILE *out, const Step *s);
void print_memory(FILE *out, const Step *s);

// emit_c.c: writes DIR/NAME.h and DIR/NAME.c; false after a message.
bool emit_c(Ctx *c, const Step *s, const char *dir, const char *command);
// emit_cuda.c: writes DIR/NAME.h, DIR/NAME.cu (the kernels: nvcc, NVRTC or the
// emulator compile it) and DIR/NAME.c (their launches and the CaecModel).
bool emit_cuda(Ctx *c, const Step *s, const char *dir, const char *command);

// What both back ends' files share (emit_c.c).
typedef struct EmitFile {
  Ctx *c;
  const Step *s;
  const char *command, *file; // the caec command line; the file's name, for its header
  bool cuda;
} EmitFile;
// Writes path through a temporary file and a rename, so a failed write leaves no half file.
FILE *emit_memstream(char **text, size_t *len); // open_memstream, exiting when out of memory
bool emit_write_file(Ctx *c, const char *path, void (*fill)(FILE *, const EmitFile *), const EmitFile *f);
void emit_provenance(FILE *out, const EmitFile *f, const char *what);
void emit_header(FILE *out, const EmitFile *f);
void emit_model(FILE *out, const EmitFile *f); // the parameter table and the CaecModel
const char *emit_kern_name(Arena *a, const Step *s, int idx); // "t3_gather", "f0_pack_gather"
// A kernel's buffers by role, as its function names them: R_IN, R_IN2, R_OUT,
// then R_P0.. (parameter side), R_AUX0.. (saved statistics, masks) and R_WORK
// (the C kernel's shared workspace).
enum { R_IN, R_IN2, R_OUT, R_P0, R_AUX0 = R_P0 + KP_COUNT, R_WORK = R_AUX0 + 2, R_COUNT };
const char *emit_role(const Kern *k, int r); // NULL: the kind has no such role
void emit_role_bufs(const Kern *k, int buf[R_COUNT], int second[R_COUNT]); // second: a view's b piece
bool emit_writes(const Kern *k, int r);
const char *emit_buf_type(const Buf *b); // float, double (sums) or uint8_t (dropout masks)
void emit_source_line(FILE *out, const Step *s, const Kern *k); // "// FILE:LINE: what it computes" and its buffers

// The op families' emitters print the body of one kernel for either back end:
// calls of kern.h's kernels (C) or of cu_kern.cuh's device ops (CUDA, where an
// op of several launches is emitted once per stage). They return the op's
// launches (CUDA; a C kernel is one call).
typedef struct Emit {
  FILE *out;
  const Step *s;
  bool cuda;
  int stage;
} Emit;
// "  kc_gather(" or "  cu_gather(" (staged: "  cu_wgrad(0, A.work, ", for stage 0)
void emit_call(const Emit *e, const char *c_name, bool staged);
const char *emit_hyper(const Emit *e); // the step's settings: "h->" or "A.hyper->"
const char *emit_work(const Emit *e, const Kern *k); // C: ", (KWork){work, th}" (NULL: none); CUDA: ""
// A view as a KIn or KOut value over the kernel's parameter `name` (and name_b).
void emit_kin(const Emit *e, View v, const char *name);
void emit_kout(const Emit *e, const Kern *k, const char *name);
int64_t emit_count(const Step *s, int node); // a node's blocked float count
CuPlan emit_body(const Emit *e, const Kern *k);      // the kind's family
CuPlan emit_conv(const Emit *e, const Kern *k);      // emit_c_conv.c
CuPlan emit_norm(const Emit *e, const Kern *k);      // emit_c_norm.c
CuPlan emit_pointwise(const Emit *e, const Kern *k); // emit_c_pointwise.c
CuPlan emit_train(const Emit *e, const Kern *k);     // emit_c_train.c: loss, L2, update

// graph.c
typedef struct Totals { int64_t params, trainable, nontrainable, flops, act_bytes; } Totals;
Totals graph_totals(const Graph *g);
void print_table(FILE *out, Arena *a, const Graph *g);
void print_ir(FILE *out, Arena *a, const Graph *g);
void print_dot(FILE *out, Arena *a, const Graph *g);
void print_json(FILE *out, Arena *a, const Graph *g);

#endif
