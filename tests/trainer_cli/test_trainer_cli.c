// test_trainer_cli.c: a generated trainer's command line, one table row per
// case (argv[1]: tiny.cae's trainer at batch 4, 16x16; argv[2]: other.cae's,
// whose weights tiny must refuse). Every command works once (--help of each,
// info, init, step, bench, train, eval, reconstruct, figures), then every
// usage mistake (exit status 2) and runtime error (1): missing or unknown
// commands and options, missing, malformed and out-of-range values of every
// option that takes one, weights of another model or shape, batches and data
// sets of another size, outputs that cannot be written.
//
// An error must print exactly one line, "tiny: error: ..." with the row's
// substring, on stderr (a usage error's ending "(see 'tiny --help')", a
// runtime error's not) and nothing on stdout, and leave the test folder as it
// was: no file created, removed or changed (bytes, size, mtime, inode), no
// temporary file left. The folder holds pre-existing outputs (old.*, and
// folders with a figures.png or summary.csv) that the rows name as --out.
//
// In a row's arguments and substring, "@NAME" is the test folder's NAME.
#include "safetensors.h"
#include "testcache.h"

#include <nifti2_io.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/time.h>

enum { S = 16, BATCH = 4, PER_VOLUME = 8, MAX_ARGS = 24, MAX_FILES = 256 };
static const char *trainer, *other;

typedef struct Row {
  int rc;              // 0 done, 1 runtime error, 2 usage
  const char *expect;  // errors: a substring of stderr's one line; successes: of stdout
  const char *args[MAX_ARGS];
  const char *creates; // a success's file that must exist after it; NULL
} Row;

// 65 cache indices: one too many for --slices.
#define SLICES_65 \
  "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,0,1,2,3,4,5,6,7,8," \
  "9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"

static const Row rows[] = {
    // ---- what works: every command once ----
    {0, "usage: tiny init", {"--help"}, NULL},
    {0, "usage: tiny init", {"-h"}, NULL},
    {0, "usage: tiny init", {"init", "--help"}, NULL},
    {0, "usage: tiny init", {"step", "--help"}, NULL},
    {0, "usage: tiny train", {"train", "--help"}, NULL},
    {0, "usage: tiny eval", {"eval", "--help"}, NULL},
    {0, "usage: tiny reconstruct", {"reconstruct", "--help"}, NULL},
    {0, "usage: tiny figures", {"figures", "--help"}, NULL},
    {0, "input:    [4,1,16,16] float32", {"info"}, NULL},
    {0, "", {"init", "--seed", "2", "--out", "@w2.safetensors"}, "@w2.safetensors"},
    {0, "", {"step", "--weights", "@w.safetensors", "--batch", "@x.safetensors", "--out", "@s.safetensors"},
     "@s.safetensors"},
    {0,
     "",
     {"step", "--weights", "@w.safetensors", "--batch", "@x.safetensors", "--out", "@s2.safetensors", "--update",
      "--steps", "2", "--loss", "dssim", "--l2", "0.001", "--seed", "3", "--no-dropout", "--optimizer", "adam",
      "--lr", "0.01"},
     "@s2.safetensors"},
    {0, "images/s", {"bench", "--steps", "2", "--seed", "1"}, NULL},
    {0,
     "1 epochs",
     {"train", "--data", "@data", "--out", "@run", "--epochs", "1", "--seed", "1", "--threads", "1", "--minutes",
      "10", "--precise-bn", "1", "--lr", "0.002", "--l2", "0.0001", "--loss", "mse", "--optimizer", "rmsprop"},
     "@run/last.safetensors"},
    {0,
     "corrupted inputs",
     {"eval", "--weights", "@run/best.safetensors", "--data", "@data", "--out", "@ev", "--split", "val", "--corrupt",
      "--seed", "4"},
     "@ev/summary.csv"},
    {0,
     "-> @rec.nii.gz, residual @res.nii",
     {"reconstruct", "--weights", "@w.safetensors", "@vol.nii", "@rec.nii.gz", "--residual", "@res.nii"},
     "@res.nii"},
    {0,
     "2 slice_I.png",
     {"figures", "--weights", "@w.safetensors", "--data", "@data", "--out", "@fig", "--count", "2", "--split",
      "train", "--seed", "1"},
     "@fig/figures.png"},
    {0, "1 slice_I.png",
     {"figures", "--weights", "@w.safetensors", "--data", "@data", "--out", "@fig1", "--slices", "3"},
     "@fig1/slice_3.png"},

    // ---- the command ----
    {2, "needs a command: init, step", {NULL}, NULL},
    {2, "needs a command", {"--seed", "1"}, NULL},
    {2, "unknown command 'frob'", {"frob"}, NULL},
    {2, "unknown command 'Init'", {"Init", "--out", "@old.safetensors"}, NULL},
    {2, "train comes first, its options after it", {"--seed", "1", "train"}, NULL},
    {2, "eval comes first", {"--out", "@ev2", "eval"}, NULL},
    {2, "unexpected argument 'step'", {"init", "step", "--out", "@old.safetensors"}, NULL},
    {2, "unexpected argument 'now'", {"info", "now"}, NULL},
    {2, "unknown option '--frob'", {"info", "--frob"}, NULL},
    {2, "unknown option '-x'", {"init", "-x", "--out", "@old.safetensors"}, NULL},
    {2, "unknown option '--out' of info", {"info", "--out", "@old.safetensors"}, NULL},
    {2, "unknown option '--update' of info", {"info", "--update"}, NULL},
    {2, "unknown option '--lr' of init", {"init", "--out", "@old.safetensors", "--lr", "0.1"}, NULL},
    {2, "unknown option '--weights' of init",
     {"--weights", "@w.safetensors", "init", "--out", "@old.safetensors"}, NULL},
    {2, "unknown option '--update' of init", {"init", "--out", "@old.safetensors", "--update", "--steps", "2"}, NULL},
    {2, "unknown option '--out' of bench", {"bench", "--out", "@old.safetensors"}, NULL},
    {2, "unknown option '--batch' of bench", {"bench", "--batch", "@x.safetensors"}, NULL},

    // ---- init ----
#define INIT "init", "--out", "@old.safetensors"
    {2, "needs --out", {"init"}, NULL},
    {2, "needs --out", {"init", "--seed", "1"}, NULL},
    {2, "option '--out' needs a value", {"init", "--out"}, NULL},
    {2, "option '--seed' needs a value", {"init", "--out", "@old.safetensors", "--seed"}, NULL},
    {2, "--seed must be a non-negative integer, not '-1'", {INIT, "--seed", "-1"}, NULL},
    {2, "--seed must be a non-negative integer, not '1.5'", {INIT, "--seed", "1.5"}, NULL},
    {2, "--seed must be a non-negative integer, not '3x'", {INIT, "--seed", "3x"}, NULL},
    {2, "--seed must be a non-negative integer, not ''", {INIT, "--seed", ""}, NULL},
    {2, "--seed must be a non-negative integer, not '1e999'", {INIT, "--seed", "1e999"},
     NULL},
    {2, "--seed must be a non-negative integer, not 'nan'", {INIT, "--seed", "nan"},
     NULL},
    {2, "--seed must be a non-negative integer, not '1e17'", {INIT, "--seed", "1e17"},
     NULL},
    {2, "--seed must be a non-negative integer, not ' 5'", {INIT, "--seed", " 5"}, NULL},
    {2, "--seed must be a non-negative integer, not '0x10'", {INIT, "--seed", "0x10"},
     NULL},
#undef INIT
    {1, "@afile/w.safetensors: cannot create a temporary file next to it", {"init", "--out", "@afile/w.safetensors"},
     NULL},
    {1, "@nowhere/w.safetensors: cannot create a temporary file next to it",
     {"init", "--out", "@nowhere/w.safetensors"}, NULL},
    {1, "@folder: cannot rename", {"init", "--out", "@folder"}, NULL},

    // ---- step: options ----
    {2, "needs --out", {"step", "--weights", "@w.safetensors", "--batch", "@x.safetensors"}, NULL},
    {2, "step needs --weights and --batch", {"step", "--out", "@old.safetensors"}, NULL},
    {2, "step needs --weights and --batch", {"step", "--weights", "@w.safetensors", "--out", "@old.safetensors"}, NULL},
    {2, "step needs --weights and --batch", {"step", "--batch", "@x.safetensors", "--out", "@old.safetensors"}, NULL},
    {2, "option '--weights' needs a value",
     {"step", "--batch", "@x.safetensors", "--out", "@old.safetensors", "--weights"}, NULL},
    {2, "option '--batch' needs a value",
     {"step", "--weights", "@w.safetensors", "--out", "@old.safetensors", "--batch"}, NULL},
#define STEP "step", "--weights", "@w.safetensors", "--batch", "@x.safetensors", "--out", "@old.safetensors"
    {2, "--steps needs --update", {STEP, "--steps", "2"}, NULL},
    {2, "--steps must be an integer in [1, 1000000], not '0'", {STEP, "--update", "--steps", "0"}, NULL},
    {2, "--steps must be an integer in [1, 1000000], not '1000001'", {STEP, "--update", "--steps", "1000001"}, NULL},
    {2, "--steps must be an integer in [1, 1000000], not '2.5'", {STEP, "--update", "--steps", "2.5"}, NULL},
    {2, "--steps must be an integer in [1, 1000000], not '-3'", {STEP, "--update", "--steps", "-3"}, NULL},
    {2, "--steps must be an integer in [1, 1000000], not ''", {STEP, "--update", "--steps", ""}, NULL},
    {2, "option '--steps' needs a value", {STEP, "--update", "--steps"}, NULL},
    {2, "--lr must be a float32 number > 0, not '0'", {STEP, "--update", "--lr", "0"}, NULL},
    {2, "--lr must be a float32 number > 0, not '-0.1'", {STEP, "--update", "--lr", "-0.1"}, NULL},
    {2, "--lr must be a float32 number > 0, not '1e999'", {STEP, "--update", "--lr", "1e999"}, NULL},
    {2, "--lr must be a float32 number > 0, not 'inf'", {STEP, "--update", "--lr", "inf"}, NULL},
    {2, "--lr must be a float32 number > 0, not 'fast'", {STEP, "--update", "--lr", "fast"}, NULL},
    {2, "--lr must be a float32 number > 0, not ''", {STEP, "--update", "--lr", ""}, NULL},
    {2, "--lr must be a float32 number > 0, not '1e-3x'", {STEP, "--update", "--lr", "1e-3x"}, NULL},
    {2, "--lr must be a float32 number > 0, not '1e39'", {STEP, "--update", "--lr", "1e39"}, NULL},
    {2, "--l2 must be a float32 number >= 0, not '-1'", {STEP, "--l2", "-1"}, NULL},
    {2, "--l2 must be a float32 number >= 0, not 'nan'", {STEP, "--l2", "nan"}, NULL},
    {2, "--l2 must be a float32 number >= 0, not ''", {STEP, "--l2", ""}, NULL},
    {2, "--l2 must be a float32 number >= 0, not '1e39'", {STEP, "--update", "--l2", "1e39"}, NULL},
    {2, "--seed must be a non-negative integer, not '-1'", {STEP, "--seed", "-1"}, NULL},
    {2, "--loss must be mse or dssim, not 'mae'", {STEP, "--loss", "mae"}, NULL},
    {2, "--loss must be mse or dssim, not ''", {STEP, "--loss", ""}, NULL},
    {2, "--optimizer must be rmsprop, adam or sgd, not 'adagrad'", {STEP, "--optimizer", "adagrad"}, NULL},
    {2, "unknown option '--data'", {STEP, "--data", "@data"}, NULL},
    {2, "unexpected argument", {STEP, "@x.safetensors"}, NULL},
#undef STEP

    // ---- step: its files ----
#define STEP_TO_OLD "step", "--out", "@old.safetensors"
    {1, "@missing.safetensors", {STEP_TO_OLD, "--weights", "@missing.safetensors", "--batch", "@x.safetensors"}, NULL},
    {1, "@junk.safetensors", {STEP_TO_OLD, "--weights", "@junk.safetensors", "--batch", "@x.safetensors"}, NULL},
    {1, "@missing.safetensors", {STEP_TO_OLD, "--weights", "@w.safetensors", "--batch", "@missing.safetensors"}, NULL},
    {1,
     "@shape.safetensors: needs tensor 'output.conv1.weight' as F32 or F64 of shape [8,1,3,3]",
     {STEP_TO_OLD, "--weights", "@shape.safetensors", "--batch", "@x.safetensors"},
     NULL},
    {1,
     "@other.safetensors: needs tensor 'output.conv1.weight' as F32 or F64 of shape [8,1,3,3]",
     {STEP_TO_OLD, "--weights", "@other.safetensors", "--batch", "@x.safetensors"},
     NULL},
    {1,
     "@x.safetensors: needs tensor 'output.conv1.weight'",
     {STEP_TO_OLD, "--weights", "@x.safetensors", "--batch", "@x.safetensors"},
     NULL},
    {1,
     "@x32.safetensors: needs tensor 'x' as F32 or F64 of shape [4,1,16,16]",
     {STEP_TO_OLD, "--weights", "@w.safetensors", "--batch", "@x32.safetensors"},
     NULL},
    {1,
     "@x8.safetensors: needs tensor 'x' as F32 or F64 of shape [4,1,16,16]",
     {STEP_TO_OLD, "--weights", "@w.safetensors", "--batch", "@x8.safetensors"},
     NULL},
    {1,
     "@w.safetensors: needs tensor 'x'",
     {STEP_TO_OLD, "--weights", "@w.safetensors", "--batch", "@w.safetensors"},
     NULL},
    {1, "the loss is not finite", {STEP_TO_OLD, "--weights", "@w.safetensors", "--batch", "@xnan.safetensors"}, NULL},
#undef STEP_TO_OLD
    {1,
     "@afile/s.safetensors: cannot create a temporary file next to it",
     {"step", "--weights", "@w.safetensors", "--batch", "@x.safetensors", "--out", "@afile/s.safetensors"},
     NULL},

    // ---- bench ----
    {2, "--steps must be an integer in [1, 1000000], not '0'", {"bench", "--steps", "0"}, NULL},
    {2, "--steps must be an integer in [1, 1000000], not 'many'", {"bench", "--steps", "many"}, NULL},
    {2, "--seed must be a non-negative integer, not '-2'", {"bench", "--seed", "-2"}, NULL},

    // ---- train: options ----
    {2, "train needs --data DATASET and --out RUN", {"train"}, NULL},
    {2, "train needs --data DATASET and --out RUN", {"train", "--data", "@data"}, NULL},
    {2, "train needs --data DATASET and --out RUN", {"train", "--out", "@newrun"}, NULL},
    {2, "option '--data' needs a value", {"train", "--out", "@newrun", "--data"}, NULL},
    {2, "option '--out' needs a value", {"train", "--data", "@data", "--out"}, NULL},
#define TRAIN "train", "--data", "@data", "--out", "@newrun"
    {2, "--epochs must be an integer in [1, 1000000], not '0'", {TRAIN, "--epochs", "0"}, NULL},
    {2, "--epochs must be an integer in [1, 1000000], not '-1'", {TRAIN, "--epochs", "-1"}, NULL},
    {2, "--epochs must be an integer in [1, 1000000], not '3x'", {TRAIN, "--epochs", "3x"}, NULL},
    {2, "--epochs must be an integer in [1, 1000000], not ''", {TRAIN, "--epochs", ""}, NULL},
    {2, "--epochs must be an integer in [1, 1000000], not '1e999'", {TRAIN, "--epochs", "1e999"}, NULL},
    {2, "--epochs must be an integer in [1, 1000000], not '1000001'", {TRAIN, "--epochs", "1000001"}, NULL},
    {2, "--epochs must be an integer in [1, 1000000], not '2.5'", {TRAIN, "--epochs", "2.5"}, NULL},
    {2, "option '--epochs' needs a value", {TRAIN, "--epochs"}, NULL},
    {2, "--threads must be an integer in [1, 1024], not '0'", {TRAIN, "--threads", "0"}, NULL},
    {2, "--threads must be an integer in [1, 1024], not '1025'", {TRAIN, "--threads", "1025"}, NULL},
    {2, "--threads must be an integer in [1, 1024], not '1.5'", {TRAIN, "--threads", "1.5"}, NULL},
    {2, "--threads must be an integer in [1, 1024], not 'all'", {TRAIN, "--threads", "all"}, NULL},
    {2, "--minutes must be a number in (0, 1000000], not '0'", {TRAIN, "--minutes", "0"}, NULL},
    {2, "--minutes must be a number in (0, 1000000], not '-5'", {TRAIN, "--minutes", "-5"}, NULL},
    {2, "--minutes must be a number in (0, 1000000], not '1e7'", {TRAIN, "--minutes", "1e7"}, NULL},
    {2, "--minutes must be a number in (0, 1000000], not 'inf'", {TRAIN, "--minutes", "inf"}, NULL},
    {2, "--minutes must be a number in (0, 1000000], not '5min'", {TRAIN, "--minutes", "5min"}, NULL},
    {2, "option '--minutes' needs a value", {TRAIN, "--minutes"}, NULL},
    {2, "--precise-bn must be an integer in [0, 100000], not '-1'", {TRAIN, "--precise-bn", "-1"}, NULL},
    {2, "--precise-bn must be an integer in [0, 100000], not '100001'", {TRAIN, "--precise-bn", "100001"}, NULL},
    {2, "--precise-bn must be an integer in [0, 100000], not '0.5'", {TRAIN, "--precise-bn", "0.5"}, NULL},
    {2, "option '--precise-bn' needs a value", {TRAIN, "--precise-bn"}, NULL},
    {2, "--lr must be a float32 number > 0, not '0'", {TRAIN, "--lr", "0"}, NULL},
    {2, "--l2 must be a float32 number >= 0, not '-0.5'", {TRAIN, "--l2", "-0.5"}, NULL},
    {2, "--seed must be a non-negative integer, not '-1'", {TRAIN, "--seed", "-1"}, NULL},
    {2, "--seed must be a non-negative integer, not '7.5'", {TRAIN, "--seed", "7.5"}, NULL},
    {2, "--loss must be mse or dssim, not 'l1'", {TRAIN, "--loss", "l1"}, NULL},
    {2, "--optimizer must be rmsprop, adam or sgd, not 'lbfgs'", {TRAIN, "--optimizer", "lbfgs"}, NULL},
    {2, "--flip-lr wants a number from 0 to 1, not '2'", {TRAIN, "--flip-lr", "2"}, NULL},
    {2, "--flip-ud wants a number from 0 to 1, not 'half'", {TRAIN, "--flip-ud", "half"}, NULL},
    {2, "--rotate wants a number from 0 to 45, not '90'", {TRAIN, "--rotate", "90"}, NULL},
    {2, "--rotate wants a number from 0 to 45, not 'nan'", {TRAIN, "--rotate", "nan"}, NULL},
    {2, "--gamma wants a number from 1 to 3, not '0.5'", {TRAIN, "--gamma", "0.5"}, NULL},
    {2, "--bias wants a number from 0 to 0.2, not ''", {TRAIN, "--bias", ""}, NULL},
    {2, "--cutout must be diagonal or anywhere, not 'corner'", {TRAIN, "--cutout", "corner"}, NULL},
    {2, "--rotate needs a value", {TRAIN, "--rotate"}, NULL},
    {2, "unknown option '--frob' of train", {TRAIN, "--frob"}, NULL},
    {2, "unknown option '--weights' of train", {TRAIN, "--weights", "@w.safetensors"}, NULL},
    {2, "unknown option '--update' of train", {TRAIN, "--update"}, NULL},
    {2, "unexpected argument", {TRAIN, "@data"}, NULL},
#undef TRAIN

    // ---- train: its files ----
    {1, "@missing/slices.bin", {"train", "--data", "@missing", "--out", "@newrun"}, NULL},
    {1, "@afile/slices.bin", {"train", "--data", "@afile", "--out", "@newrun"}, NULL},
    {1, "holds 32x32 slices; this trainer takes 16x16", {"train", "--data", "@big", "--out", "@newrun"}, NULL},
    {1, "@run/last.safetensors exists: add --resume", {"train", "--data", "@data", "--out", "@run"}, NULL},
    {1, "--resume: @newrun/last.safetensors does not exist",
     {"train", "--data", "@data", "--out", "@newrun", "--resume"}, NULL},
    {1,
     "the run was started with other settings than --loss",
     {"train", "--data", "@data", "--out", "@run", "--resume", "--loss", "dssim", "--epochs", "2"},
     NULL},
    {1, "@w.safetensors", {"train", "--data", "@data", "--out", "@w.safetensors", "--resume"}, NULL},
    {1, "cannot make the folder @afile/run", {"train", "--data", "@data", "--out", "@afile/run"}, NULL},
    {1, "@rundir/log.csv: cannot rename", {"train", "--data", "@data", "--out", "@rundir", "--epochs", "1"}, NULL},

    // ---- eval ----
    {2, "eval needs --weights W, --data DATASET and --out DIR", {"eval"}, NULL},
    {2, "eval needs --weights W, --data DATASET and --out DIR", {"eval", "--data", "@data", "--out", "@ev2"}, NULL},
    {2, "eval needs --weights W, --data DATASET and --out DIR",
     {"eval", "--weights", "@w.safetensors", "--out", "@ev2"}, NULL},
    {2, "eval needs --weights W, --data DATASET and --out DIR",
     {"eval", "--weights", "@w.safetensors", "--data", "@data"}, NULL},
#define EVAL "eval", "--weights", "@w.safetensors", "--data", "@data", "--out", "@evold"
    {2, "--split must be test, val or train, not 'all'", {EVAL, "--split", "all"}, NULL},
    {2, "--split must be test, val or train, not ''", {EVAL, "--split", ""}, NULL},
    {2, "--split must be test, val or train, not 'Test'", {EVAL, "--split", "Test"}, NULL},
    {2, "option '--split' needs a value", {EVAL, "--split"}, NULL},
    {2, "option '--data' needs a value", {"eval", "--weights", "@w.safetensors", "--out", "@evold", "--data"}, NULL},
    {2, "--seed must be a non-negative integer, not '-1'", {EVAL, "--corrupt", "--seed", "-1"}, NULL},
    {2, "--seed must be a non-negative integer, not 'x'", {EVAL, "--seed", "x"}, NULL},
    {2, "unknown option '--frob' of eval", {EVAL, "--frob"}, NULL},
    {2, "unknown option '--lr' of eval", {EVAL, "--lr", "0.1"}, NULL},
    {2, "unexpected argument", {EVAL, "test"}, NULL},
#undef EVAL
#define EVAL_OUT "eval", "--out", "@ev2"
    {1, "@missing.safetensors", {EVAL_OUT, "--weights", "@missing.safetensors", "--data", "@data"}, NULL},
    {1, "@shape.safetensors: needs tensor 'output.conv1.weight'",
     {EVAL_OUT, "--weights", "@shape.safetensors", "--data", "@data"}, NULL},
    {1, "@other.safetensors: needs tensor 'output.conv1.weight'",
     {EVAL_OUT, "--weights", "@other.safetensors", "--data", "@data"}, NULL},
    {1, "@missing/slices.bin", {EVAL_OUT, "--weights", "@w.safetensors", "--data", "@missing"}, NULL},
    {1, "holds 32x32 slices; this trainer takes 16x16",
     {EVAL_OUT, "--weights", "@w.safetensors", "--data", "@big"}, NULL},
    {1, "@notest/slices.bin: no test slices", {EVAL_OUT, "--weights", "@w.safetensors", "--data", "@notest"}, NULL},
#undef EVAL_OUT
    {1, "cannot make the folder @afile", {"eval", "--weights", "@w.safetensors", "--data", "@data", "--out", "@afile"},
     NULL},
    {1, "cannot make the folder @afile/ev",
     {"eval", "--weights", "@w.safetensors", "--data", "@data", "--out", "@afile/ev"}, NULL},
    {1, "@evdir/per_image.csv: cannot rename",
     {"eval", "--weights", "@w.safetensors", "--data", "@data", "--out", "@evdir"}, NULL},

    // ---- reconstruct ----
    {2, "reconstruct needs --weights W, IN.nii[.gz] and OUT.nii[.gz]", {"reconstruct"}, NULL},
    {2, "reconstruct needs --weights W", {"reconstruct", "@vol.nii", "@old.nii"}, NULL},
    {2, "reconstruct needs --weights W", {"reconstruct", "--weights", "@w.safetensors", "@vol.nii"}, NULL},
    {2, "option '--weights' needs a value", {"reconstruct", "@vol.nii", "@old.nii", "--weights"}, NULL},
    {2, "option '--residual' needs a value",
     {"reconstruct", "--weights", "@w.safetensors", "@vol.nii", "@old.nii", "--residual"}, NULL},
    {2, "'@old.png' is not a .nii or .nii.gz name",
     {"reconstruct", "--weights", "@w.safetensors", "@vol.nii", "@old.png"}, NULL},
    {2, "'@r.gz' is not a .nii or .nii.gz name",
     {"reconstruct", "--weights", "@w.safetensors", "@vol.nii", "@old.nii", "--residual", "@r.gz"}, NULL},
    {2, "unexpected argument '@third.nii'",
     {"reconstruct", "--weights", "@w.safetensors", "@vol.nii", "@old.nii", "@third.nii"}, NULL},
    {2, "unknown option '--frob' of reconstruct",
     {"reconstruct", "--weights", "@w.safetensors", "@vol.nii", "@old.nii", "--frob"}, NULL},
    {2, "unknown option '--out' of reconstruct",
     {"reconstruct", "--weights", "@w.safetensors", "@vol.nii", "--out", "@old.nii"}, NULL},
    {1, "@missing.safetensors", {"reconstruct", "--weights", "@missing.safetensors", "@vol.nii", "@old.nii"}, NULL},
    {1, "@shape.safetensors: needs tensor",
     {"reconstruct", "--weights", "@shape.safetensors", "@vol.nii", "@old.nii"}, NULL},
    {1, "@other.safetensors: needs tensor", {"reconstruct", "--weights", "@other.safetensors", "@vol.nii", "@new.nii"},
     NULL},
    {1, "@missing.nii", {"reconstruct", "--weights", "@w.safetensors", "@missing.nii", "@old.nii"}, NULL},
    {1, "@flat.nii", {"reconstruct", "--weights", "@w.safetensors", "@flat.nii", "@old.nii"}, NULL},
    {1, "@afile/r.nii: cannot create a temporary file next to it",
     {"reconstruct", "--weights", "@w.safetensors", "@vol.nii", "@afile/r.nii"}, NULL},
    {1, "@afile/r.nii: cannot create a temporary file next to it",
     {"reconstruct", "--weights", "@w.safetensors", "@vol.nii", "@new.nii", "--residual", "@afile/r.nii"}, NULL},

    // ---- figures ----
    {2, "figures needs --weights W, --data DATASET and --out DIR", {"figures"}, NULL},
    {2, "figures needs --weights W, --data DATASET and --out DIR",
     {"figures", "--data", "@data", "--out", "@fig2"}, NULL},
    {2, "figures needs --weights W, --data DATASET and --out DIR",
     {"figures", "--weights", "@w.safetensors", "--out", "@fig2"}, NULL},
    {2, "figures needs --weights W, --data DATASET and --out DIR",
     {"figures", "--weights", "@w.safetensors", "--data", "@data"}, NULL},
#define FIGURES "figures", "--weights", "@w.safetensors", "--data", "@data", "--out", "@figold"
    {2, "--count must be an integer in [1, 64], not '0'", {FIGURES, "--count", "0"}, NULL},
    {2, "--count must be an integer in [1, 64], not '65'", {FIGURES, "--count", "65"}, NULL},
    {2, "--count must be an integer in [1, 64], not '2.5'", {FIGURES, "--count", "2.5"}, NULL},
    {2, "--count must be an integer in [1, 64], not ''", {FIGURES, "--count", ""}, NULL},
    {2, "--count must be an integer in [1, 64], not 'four'", {FIGURES, "--count", "four"}, NULL},
    {2, "option '--count' needs a value", {FIGURES, "--count"}, NULL},
    {2, "--split must be test, val or train, not 'validation'", {FIGURES, "--split", "validation"}, NULL},
    {2, "--seed must be a non-negative integer, not '-1'", {FIGURES, "--seed", "-1"}, NULL},
    {2, "--slices must be a list of at most 64 cache indices (I,J,...), not ''", {FIGURES, "--slices", ""}, NULL},
    {2, "--slices must be a list of at most 64 cache indices (I,J,...), not 'a'", {FIGURES, "--slices", "a"}, NULL},
    {2, "--slices must be a list of at most 64 cache indices (I,J,...), not '1,,2'",
     {FIGURES, "--slices", "1,,2"}, NULL},
    {2, "--slices must be a list of at most 64 cache indices (I,J,...), not '1,'", {FIGURES, "--slices", "1,"}, NULL},
    {2, "--slices must be a list of at most 64 cache indices (I,J,...), not '-1'", {FIGURES, "--slices", "-1"}, NULL},
    {2, "--slices must be a list of at most 64 cache indices (I,J,...), not ' 1'", {FIGURES, "--slices", " 1"}, NULL},
    {2, "--slices must be a list of at most 64 cache indices", {FIGURES, "--slices", SLICES_65}, NULL},
    {2, "option '--slices' needs a value", {FIGURES, "--slices"}, NULL},
    {2, "unknown option '--frob' of figures", {FIGURES, "--frob"}, NULL},
    {2, "unexpected argument", {FIGURES, "extra"}, NULL},
#undef FIGURES
#define FIGURES_OUT "figures", "--out", "@fig2"
    {1, "--slices: 24 is not a cache index: @data/slices.bin has 24 slices",
     {FIGURES_OUT, "--weights", "@w.safetensors", "--data", "@data", "--slices", "24"}, NULL},
    {1, "@missing.safetensors", {FIGURES_OUT, "--weights", "@missing.safetensors", "--data", "@data"}, NULL},
    {1, "@shape.safetensors: needs tensor", {FIGURES_OUT, "--weights", "@shape.safetensors", "--data", "@data"}, NULL},
    {1, "@other.safetensors: needs tensor", {FIGURES_OUT, "--weights", "@other.safetensors", "--data", "@data"}, NULL},
    {1, "holds 32x32 slices; this trainer takes 16x16", {FIGURES_OUT, "--weights", "@w.safetensors", "--data", "@big"},
     NULL},
    {1, "@notest: no test slices", {FIGURES_OUT, "--weights", "@w.safetensors", "--data", "@notest"}, NULL},
#undef FIGURES_OUT
    {1, "cannot make the folder @afile",
     {"figures", "--weights", "@w.safetensors", "--data", "@data", "--out", "@afile"}, NULL},
    {1, "@figdir/figures.png", {"figures", "--weights", "@w.safetensors", "--data", "@data", "--out", "@figdir"}, NULL},
};

// "@NAME" as the test folder's NAME, other text as it is; valid until 64 more calls.
static const char *expand(const char *s) {
  static char buf[64][1024];
  static int next;
  if (!s || !strchr(s, '@'))
    return s;
  char *out = buf[next++ % 64], *o = out;
  for (; *s && o < out + sizeof buf[0] - 80; s++)
    o += *s == '@' ? snprintf(o, 80, "%s/", dir) : (*o = *s, 1);
  *o = '\0';
  return out;
}

// ---- the folder's state -------------------------------------------------------------------

typedef struct Snapshot {
  char *lines[MAX_FILES]; // "PATH kind size mtime inode hash", sorted
  int count;
} Snapshot;

static uint64_t fnv1a(const char *path) {
  size_t len = 0;
  unsigned char *data = slurp(path, &len);
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; data && i < len; i++)
    h = (h ^ data[i]) * 0x100000001b3u;
  free(data);
  return h;
}

// Every file and folder under path: what a command may not touch. A folder's
// own mtime is left out: a temporary file made and removed in it changes it.
static void walk(Snapshot *s, const char *path, int depth) {
  DIR *d = opendir(path);
  char p[2048];
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
        (depth == 0 && (!strcmp(e->d_name, "stdout.txt") || !strcmp(e->d_name, "stderr.txt"))))
      continue;
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    struct stat st;
    if (lstat(p, &st) || s->count == MAX_FILES)
      continue;
    char line[2300];
    if (S_ISDIR(st.st_mode))
      snprintf(line, sizeof line, "%s folder", p + strlen(dir) + 1);
    else
      snprintf(line, sizeof line, "%s file %lld %lld.%09ld %llu %016llx", p + strlen(dir) + 1, (long long)st.st_size,
               (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (unsigned long long)st.st_ino,
               (unsigned long long)fnv1a(p));
    s->lines[s->count++] = strdup(line);
    if (S_ISDIR(st.st_mode))
      walk(s, p, depth + 1);
  }
  if (d)
    closedir(d);
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static Snapshot snapshot(void) {
  Snapshot s = {.count = 0};
  walk(&s, dir, 0);
  qsort(s.lines, (size_t)s.count, sizeof *s.lines, by_string);
  return s;
}

static void snapshot_free(Snapshot *s) {
  for (int i = 0; i < s->count; i++)
    free(s->lines[i]);
  s->count = 0;
}

// Whether line is among s's lines.
static bool has_line(const Snapshot *s, const char *line) {
  return bsearch(&line, s->lines, (size_t)s->count, sizeof *s->lines, by_string) != NULL;
}

// What differs between the two, as "+ new-or-changed" and "- gone-or-changed" lines; "" when nothing.
static const char *differences(const Snapshot *before, const Snapshot *after) {
  static char text[4096];
  size_t n = 0;
  text[0] = '\0';
  for (int i = 0; i < after->count && n < sizeof text - 1; i++)
    if (!has_line(before, after->lines[i]))
      n += (size_t)snprintf(text + n, sizeof text - n, "\n    + %s", after->lines[i]);
  for (int i = 0; i < before->count && n < sizeof text - 1; i++)
    if (!has_line(after, before->lines[i]))
      n += (size_t)snprintf(text + n, sizeof text - n, "\n    - %s", before->lines[i]);
  return text;
}

// ---- running the trainer --------------------------------------------------------------------

// Runs exe with args (NULL-terminated, expanded), stdout and stderr to their own files; the exit status.
static int run_program(const char *exe, const char *const *args) {
  char *argv[MAX_ARGS + 2] = {(char *)exe};
  int n = 1;
  for (; n <= MAX_ARGS && args[n - 1]; n++)
    argv[n] = (char *)expand(args[n - 1]);
  argv[n] = NULL;
  return exit_status(spawn2(exe, argv, "stdout.txt", "stderr.txt"));
}

static char *captured(const char *name) {
  char *text = slurp(path_in_dir(name), NULL);
  return text ? text : strdup("");
}

// What no command may print: the sanitizers' reports, a crash, an assertion.
static bool noise(const char *text) {
  return strstr(text, "Sanitizer") || strstr(text, "runtime error") || strstr(text, "Assertion") ||
         strstr(text, "Segmentation");
}

static void check_row(size_t i, const Row *r) {
  char what[1024];
  int len = snprintf(what, sizeof what, "row %zu (exit %d):", i, r->rc);
  for (int a = 0; a < MAX_ARGS && r->args[a] && len < (int)sizeof what; a++)
    len += snprintf(what + len, sizeof what - (size_t)len, " '%s'", r->args[a]);
  const char *expect = expand(r->expect);
  Snapshot before = snapshot();
  int rc = run_program(trainer, r->args);
  Snapshot after = snapshot();
  char *out = captured("stdout.txt"), *err = captured("stderr.txt");
  CHECK(rc == r->rc, "%s: exit status %d\n  stdout: %s\n  stderr: %s", what, rc, out, err);
  if (r->rc == 0) {
    CHECK(strstr(out, expect), "%s: stdout lacks '%s':\n%s", what, expect, out);
    CHECK(!noise(err) && !strstr(err, "error"), "%s: stderr: %s", what, err);
    CHECK(!r->creates || access(expand(r->creates), F_OK) == 0, "%s: made no %s", what, expand(r->creates));
  } else {
    char *newline = strchr(err, '\n');
    CHECK(newline && !newline[1] && !strncmp(err, "tiny: error: ", 13) && !noise(err),
          "%s: stderr is not one line 'tiny: error: ...':\n%s", what, err);
    CHECK(strstr(err, expect), "%s: stderr lacks '%s': %s", what, expect, err);
    bool usage_form = newline && newline - err > 20 && !strncmp(newline - 20, " (see 'tiny --help')", 20);
    CHECK(usage_form == (r->rc == 2), "%s: %s error %s (see 'tiny --help'): %s", what,
          r->rc == 2 ? "a usage" : "a runtime", r->rc == 2 ? "without" : "with", err);
    CHECK(!*out, "%s: printed on stdout: %s", what, out);
    const char *diff = differences(&before, &after);
    CHECK(!*diff, "%s: files changed:%s", what, diff);
  }
  free(out), free(err);
  snapshot_free(&before), snapshot_free(&after);
}

// ---- the files the rows use -------------------------------------------------------------------

// A batch x of n images of size x size, blobs (or NaN everywhere) in path.
static void write_batch(const char *name, int n, int size, bool nan) {
  size_t count = (size_t)n * (size_t)size * (size_t)size;
  float *x = malloc(count * sizeof(float));
  for (int i = 0; i < n; i++)
    blob(size, i, 0, x + (size_t)i * size * size);
  for (size_t i = 0; nan && i < count; i++)
    x[i] = NAN;
  StTensor t = {.name = "x", .dtype = ST_F32, .ndim = 4, .shape = {n, 1, size, size}, .nbytes = count * 4, .data = x};
  char err[512];
  CHECK(st_write(expand(name), &t, 1, NULL, err, sizeof err) == 0, "%s", err);
  free(x);
}

// A copy of tiny's weights with the first tensor of half its shape.
static void write_wrong_shape(const char *from, const char *to) {
  StFile f = {0};
  char err[512];
  CHECK(st_read(expand(from), &f, err, sizeof err) == 0 && f.count > 0, "%s", err);
  if (f.count > 0)
    f.tensors[0].shape[0] /= 2, f.tensors[0].nbytes /= 2;
  CHECK(st_write(expand(to), f.tensors, f.count, NULL, err, sizeof err) == 0, "%s", err);
  st_free(&f);
}

// A float32 NIfTI-1 file of the given dims (2 or 3 of them), smooth blobs.
static void write_nifti(const char *name, int ndim, int nx, int ny, int nz) {
  int64_t dims[8] = {ndim, nx, ny, nz, 1, 1, 1, 1};
  nifti_image *nim = nifti_make_new_nim(dims, DT_FLOAT32, 1);
  float *v = nim->data;
  for (int k = 0; k < nz; k++)
    for (int j = 0; j < ny; j++)
      for (int i = 0; i < nx; i++) {
        double di = i - nx / 2.0, dj = j - ny / 2.0, dk = k - nz / 2.0;
        v[((size_t)k * ny + j) * nx + i] = (float)exp(-(di * di + dj * dj + dk * dk) / 30.0);
      }
  nifti_set_filenames(nim, expand(name), 0, 1);
  nifti_image_write(nim);
  nifti_image_free(nim);
}

// A file of text with an old mtime, so that any rewrite shows.
static void write_old(const char *name, const char *text) {
  const char *path = expand(name);
  spit(path, text, strlen(text));
  struct timeval t[2] = {{1000000000, 0}, {1000000000, 0}};
  CHECK(utimes(path, t) == 0, "utimes %s", path);
}

static void make_fixtures(void) {
  SplitSet sets[3] = {SET_TRAIN, SET_VAL, SET_TEST};
  blob_data_set("data", S, sets, 3, PER_VOLUME);      // 24 slices: 8 training (2 steps), 8 val, 8 test
  blob_data_set("big", 2 * S, sets, 3, PER_VOLUME);   // another image size
  blob_data_set("notest", S, sets, 2, PER_VOLUME);    // no test slices
  CHECK(run_program(trainer, (const char *[]){"init", "--seed", "1", "--out", "@w.safetensors", NULL}) == 0,
        "init of the weights");
  CHECK(run_program(other, (const char *[]){"init", "--out", "@other.safetensors", NULL}) == 0,
        "init of another model's weights");
  write_wrong_shape("@w.safetensors", "@shape.safetensors");
  spit(expand("@junk.safetensors"), "not a safetensors file, though its name says so", 47);
  write_batch("@x.safetensors", BATCH, S, false);
  write_batch("@x32.safetensors", BATCH, 2 * S, false);
  write_batch("@x8.safetensors", 2 * BATCH, S, false);
  write_batch("@xnan.safetensors", BATCH, S, true);
  write_nifti("@vol.nii", 3, 10, S, S);
  write_nifti("@flat.nii", 2, S, S, 1);
  spit(expand("@afile"), "a file, where a folder is wanted\n", 33);
  mkdir(expand("@folder"), 0777);
  // Outputs that exist: an error must leave them as they are.
  write_old("@old.safetensors", "the bytes of an earlier output\n");
  write_old("@old.nii", "the bytes of an earlier volume\n");
  mkdir(expand("@evold"), 0777), write_old("@evold/summary.csv", "an earlier summary\n");
  mkdir(expand("@figold"), 0777), write_old("@figold/figures.png", "an earlier figure\n");
  // Output folders whose files cannot be written: a folder in the place of the first file.
  mkdir(expand("@rundir"), 0777), mkdir(expand("@rundir/log.csv"), 0777);
  mkdir(expand("@evdir"), 0777), mkdir(expand("@evdir/per_image.csv"), 0777);
  mkdir(expand("@figdir"), 0777), mkdir(expand("@figdir/figures.png"), 0777);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_trainer_cli TRAINER OTHER_TRAINER\n");
    return 2;
  }
  trainer = argv[1], other = argv[2];
  setenv("OMP_NUM_THREADS", "1", 1);
  make_dir("trainer_cli");
  make_fixtures();
  size_t n = sizeof rows / sizeof *rows;
  for (size_t i = 0; i < n; i++)
    check_row(i, &rows[i]);
  printf("%zu rows\n", n);
  return finish();
}
