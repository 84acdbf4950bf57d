// build.c: `caec compile` (a model to C or CUDA source) and `caec build` (to a
// trainer executable, by running the C compiler that built caec, and nvcc for
// a GPU trainer, on that source, the runtime library and trainer_main.c).
#include "caec.h"

#include "launch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Set by CMake: how to compile and link a trainer against this build's
// runtime, in the build tree (CAEC_BUILD_DIR holds that tree's caec) and in an
// installation (CAEC_INSTALLED_*, relative to its prefix).
#ifndef CAEC_CC
#define CAEC_CC "cc"
#define CAEC_CFLAGS "-O3"
#define CAEC_RUNTIME_CFLAGS "-I."
#define CAEC_TRAINER_MAIN "trainer_main.c"
#define CAEC_RUNTIME_LIBS "libcaec_runtime.a"
#define CAEC_LINK "-lm"
#define CAEC_EMU_LIB "libcaec_cuda_emu.a"
#define CAEC_BUILD_DIR "."
#define CAEC_INSTALLED_INCLUDE "include"
#define CAEC_INSTALLED_MAIN "trainer_main.c"
#define CAEC_INSTALLED_LIBS "lib/libcaec_runtime.a"
#define CAEC_INSTALLED_EMU_LIB "lib/libcaec_cuda_emu.a"
#endif
// Set by CMake when it found the CUDA toolkit.
#ifndef CAEC_NVCC
#define CAEC_NVCC ""
#define CAEC_CUDA_LIB ""
#define CAEC_INSTALLED_CUDA_LIB ""
#define CAEC_CUDA_INCLUDE ""
#define CAEC_CUDA_LINK ""
#endif

typedef enum { TARGET_C, TARGET_CUDA, TARGET_CUDA_EMU } Target;
static const char *const target_names[] = {"c", "cuda", "cuda-emu"};

typedef struct Options {
  const char *cae, *out, *tuning;
  int batch, size;
  Target target;
  bool no_plan, dump_fusion, keep, conv_direct;
} Options;

static bool parse_int(const char *s, int lo, int hi, int *v) {
  char *end;
  long x = strtol(s, &end, 10);
  if (!*s || *end || x < lo || x > hi)
    return false;
  *v = (int)x;
  return true;
}

static const char compile_help[] =
    "usage: caec compile [--target c|cuda] [--batch B] [--size S] [--conv auto|direct] [--tuning FILE]\n"
    "                    [--no-plan] [--dump-fusion] FILE.cae -o DIR\n\n"
    "Writes DIR/NAME.h (the model's interface: parameter table, arena sizes, entry\n"
    "points) and DIR/NAME.c (its fused kernels, the training step and the inference\n"
    "forward) for the runtime's kernels (runtime/kernels/kern.h) and trainer (runtime/trainer/trainer.h).\n"
    "With --target cuda, DIR/NAME.cu holds the kernels as CUDA (runtime/cuda/cu_kern.cuh's\n"
    "device ops) and DIR/NAME.c their launches (runtime/cuda/cu_host.h).\n\n"
    "  --target T     c (default), or cuda (cuda-emu writes the same source)\n"
    "  --batch B      the batch the shapes are compiled for (default: the train section's)\n"
    "  --size S       S x S input images instead of the declared height and width\n"
    "  --conv A       the convolutions' algorithms: auto (default: the cost model picks direct or\n"
    "                 Winograd per layer) or direct (the direct kernels only, which round as the\n"
    "                 CUDA back end does)\n"
    "  --tuning FILE  each convolution's algorithm as `caec tune` measured it on this CPU (where\n"
    "                 the file has it; otherwise the cost model's)\n"
    "  --no-plan      give every buffer its own memory (for testing the memory plan)\n"
    "  --dump-fusion  list every kernel with the source ops it computes, and the memory plan\n";
static const char build_help[] =
    "usage: caec build [--target c|cuda|cuda-emu] [--batch B] [--size S] [--conv auto|direct] [--tuning FILE]\n"
    "                  [--no-plan] FILE.cae -o EXE\n\n"
    "Compiles the model and links its trainer EXE (commands: init, step, train, eval,\n"
    "...), with the C compiler and flags that built caec; the generated source stays\n"
    "in EXE.src/. Targets:\n"
    "  c          the CPU (default)\n"
    "  cuda       an NVIDIA GPU: nvcc compiles the kernels for sm_80 and sm_90\n"
    "  cuda-emu   the CUDA kernels compiled as C and run by the emulator on the CPU\n"
    "             (for testing the CUDA back end without a GPU)\n"
    "Other options as for caec compile.\n";

static int parse(const char *cmd, int argc, char **argv, Options *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(strcmp(cmd, "build") ? compile_help : build_help, stdout);
      return 0;
    } else if (!strcmp(a, "--no-plan")) {
      o->no_plan = true;
    } else if (!strcmp(a, "--dump-fusion")) {
      o->dump_fusion = true;
    } else if (!strcmp(a, "-o") || !strcmp(a, "--batch") || !strcmp(a, "--size") || !strcmp(a, "--target") ||
               !strcmp(a, "--conv") || !strcmp(a, "--tuning")) {
      if (!value)
        return usage_error(cmd, "option '%s' needs a value", a);
      i++;
      if (!strcmp(a, "-o")) {
        o->out = value;
      } else if (!strcmp(a, "--tuning")) {
        o->tuning = value;
      } else if (!strcmp(a, "--conv")) {
        if (strcmp(value, "auto") && strcmp(value, "direct"))
          return usage_error(cmd, "--conv must be auto or direct, not '%s'", value);
        o->conv_direct = !strcmp(value, "direct");
      } else if (!strcmp(a, "--target")) {
        int n = 0;
        while (n < 3 && strcmp(value, target_names[n]))
          n++;
        if (n == 3)
          return usage_error(cmd, "--target must be c, cuda or cuda-emu, not '%s'", value);
        o->target = (Target)n;
      } else if (!strcmp(a, "--batch") ? !parse_int(value, 1, 4096, &o->batch)
                                       : !parse_int(value, 1, MAX_DIM, &o->size)) {
        return usage_error(cmd, !strcmp(a, "--batch") ? "--batch must be an integer in [1, 4096], not '%s'"
                                                      : "--size must be an integer in [1, 65536], not '%s'",
                           value);
      }
    } else if (a[0] == '-') {
      return usage_error(cmd, "unknown option '%s'", a);
    } else if (!o->cae) {
      o->cae = a;
    } else {
      return usage_error(cmd, "unexpected argument '%s' (one model at a time)", a);
    }
  }
  if (!o->cae)
    return usage_error(cmd, "needs a FILE.cae");
  if (!o->out)
    return usage_error(cmd, "needs -o");
  return -1;
}

// The command line as the provenance header records it: without -o, so that
// the same model and options give the same source wherever it is written.
static const char *command_line(Arena *a, const char *cmd, const Options *o) {
  const char *s = arena_printf(a, "caec %s %s", cmd, o->cae);
  if (o->target)
    s = arena_printf(a, "%s --target %s", s, target_names[o->target]);
  if (o->batch)
    s = arena_printf(a, "%s --batch %d", s, o->batch);
  if (o->size)
    s = arena_printf(a, "%s --size %d", s, o->size);
  if (o->conv_direct)
    s = arena_printf(a, "%s --conv direct", s);
  if (o->tuning)
    s = arena_printf(a, "%s --tuning %s", s, o->tuning);
  return o->no_plan ? arena_printf(a, "%s --no-plan", s) : s;
}

// Parses, checks and lowers the model; NULL after a message.
static Step *lower(Ctx *c, const Options *o) {
  Graph *g = compile_file(c, o->cae);
  if (!g)
    return NULL;
  Shape in = g->nodes[g->input].shape, out = g->nodes[g->output].shape;
  if (g->nnodes > MAX_CODEGEN_NODES) {
    fprintf(c->err, "%s: error: the model has %d layers; code generation takes at most %d\n", o->cae, g->nnodes,
            MAX_CODEGEN_NODES);
    return NULL;
  }
  if (!reconstructs(g)) {
    fprintf(c->err, "%s: error: a trainer reconstructs 1-channel images: the input is [%d,%d,%d] and the output "
                    "[%d,%d,%d], both must be [1,H,W] of the same size\n",
            o->cae, in.c, in.h, in.w, out.c, out.h, out.w);
    return NULL;
  }
  const Tuning *t = NULL;
  if (o->tuning && !(t = tuning_read(c, o->tuning)))
    return NULL;
  Step *s = build_step(c->arena, g, o->batch ? o->batch : g->batch ? g->batch : g->train.batch, o->conv_direct, t);
  plan_memory(s, !o->no_plan);
  return s;
}

static bool make_dir(Ctx *c, const char *dir) {
  if (mkdir(dir, 0777) == 0 || errno == EEXIST)
    return true;
  fprintf(c->err, "caec: error: cannot create '%s': %s\n", dir, strerror(errno));
  return false;
}

int cmd_compile(int argc, char **argv) {
  Options o = {0};
  int rc = parse("compile", argc, argv, &o);
  if (rc >= 0)
    return rc;
  Ctx ctx = {.arena = arena_new(), .err = stderr, .input_size = o.size};
  Step *s = lower(&ctx, &o);
  const char *cmdline = command_line(ctx.arena, "compile", &o);
  bool ok = s && make_dir(&ctx, o.out) &&
            (o.target ? emit_cuda(&ctx, s, o.out, cmdline) : emit_c(&ctx, s, o.out, cmdline));
  if (ok && o.dump_fusion) {
    print_fusion(stdout, s);
    print_memory(stdout, s);
  }
  arena_free(ctx.arena);
  return ok ? 0 : 1;
}

// Runs argv; false after a message.
static bool run(char *const *argv) {
  int rc = launch(argv);
  if (rc < 0)
    fail("build", "cannot run '%s': %s", argv[0], strerror(errno));
  else if (rc)
    fail("build", "'%s' failed on the generated source", argv[0]);
  return rc == 0;
}

// Splits a space-separated list of flags into argv entries, each one after
// `before` (an installation's prefix before its libraries' paths).
static int split_flags(Arena *a, const char *before, const char *flags, char **argv, int n) {
  char *copy = arena_strndup(a, flags, strlen(flags));
  for (char *tok = strtok(copy, " "); tok && n < 80; tok = strtok(NULL, " "))
    argv[n++] = *before ? arena_printf(a, "%s%s", before, tok) : tok;
  return n;
}

// The runtime a trainer is built with: its headers' flags, trainer_main.c
// and the libraries (a space-separated list, each path after libs_in).
typedef struct Runtime {
  const char *cflags, *main, *libs_in, *libs, *emu_lib, *cuda_lib;
} Runtime;

// The caec of a build tree uses that tree's runtime; an installed caec,
// PREFIX/bin/caec, the one installed with it under PREFIX. False after a message.
static bool find_runtime(Arena *a, Runtime *r) {
  char dir[CAEC_PATH_BYTES], build[CAEC_PATH_BYTES];
  if (!exe_dir(dir, sizeof dir))
    return fail("build", "cannot find caec's own folder, and the runtime beside it"), false;
  if (realpath(CAEC_BUILD_DIR, build) && !strcmp(dir, build)) {
    *r = (Runtime){CAEC_RUNTIME_CFLAGS, CAEC_TRAINER_MAIN, "", CAEC_RUNTIME_LIBS, CAEC_EMU_LIB, CAEC_CUDA_LIB};
    return true;
  }
  const char *prefix = arena_printf(a, "%s/..", dir), *in = arena_printf(a, "%s/", prefix);
  *r = (Runtime){.cflags = arena_printf(a, "-I%s%s", in, CAEC_INSTALLED_INCLUDE),
                 .main = arena_printf(a, "%s%s", in, CAEC_INSTALLED_MAIN),
                 .libs_in = in,
                 .libs = CAEC_INSTALLED_LIBS,
                 .emu_lib = arena_printf(a, "%s%s", in, CAEC_INSTALLED_EMU_LIB),
                 .cuda_lib = arena_printf(a, "%s%s", in, CAEC_INSTALLED_CUDA_LIB)};
  if (access(r->main, R_OK))
    return fail("build", "no runtime in %s (%s: %s): caec builds trainers with the runtime of its build tree "
                "or of its installation", prefix, r->main, strerror(errno)), false;
  return true;
}

int cmd_build(int argc, char **argv) {
  Options o = {0};
  int rc = parse("build", argc, argv, &o);
  if (rc >= 0)
    return rc;
  if (o.target == TARGET_CUDA && !*CAEC_NVCC)
    return fail("build", "--target cuda needs the CUDA toolkit (nvcc), which was not found when caec was built "
                         "(--target cuda-emu runs the same kernels on the CPU)");
  Ctx ctx = {.arena = arena_new(), .err = stderr, .input_size = o.size};
  Runtime rt;
  Step *s = find_runtime(ctx.arena, &rt) ? lower(&ctx, &o) : NULL;
  // The source goes next to the executable, in EXE.src/, and stays for the reader.
  const char *dir = arena_printf(ctx.arena, "%s.src", o.out);
  const char *cmdline = command_line(ctx.arena, "build", &o);
  bool ok = s && make_dir(&ctx, dir) &&
            (o.target ? emit_cuda(&ctx, s, dir, cmdline) : emit_c(&ctx, s, dir, cmdline));
  const char *name = s ? s->g->model_name : "";
  char *args[96];
  int n = 0;
  if (ok && o.target == TARGET_CUDA) { // nvcc compiles the kernels, the C compiler the rest
    args[n++] = CAEC_NVCC;
    n = split_flags(ctx.arena, "", "-O3 -std=c++17 -gencode arch=compute_80,code=sm_80 -gencode "
                                   "arch=compute_90,code=[sm_90,compute_90] -c", args, n);
    n = split_flags(ctx.arena, "", rt.cflags, args, n);
    args[n++] = arena_printf(ctx.arena, "%s/%s.cu", dir, name);
    args[n++] = "-o";
    args[n++] = arena_printf(ctx.arena, "%s/%s.cu.o", dir, name);
    args[n] = NULL;
    ok = run(args);
    n = 0;
  }
  if (ok) {
    args[n++] = CAEC_CC;
    n = split_flags(ctx.arena, "", CAEC_CFLAGS, args, n);
    n = split_flags(ctx.arena, "", rt.cflags, args, n);
    if (o.target == TARGET_CUDA)
      args[n++] = arena_printf(ctx.arena, "-I%s", CAEC_CUDA_INCLUDE);
    if (o.target == TARGET_CUDA_EMU) // the kernels as C
      n = split_flags(ctx.arena, "", arena_printf(ctx.arena, "-x c %s/%s.cu -x none", dir, name), args, n);
    args[n++] = arena_printf(ctx.arena, "%s/%s.c", dir, name);
    args[n++] = (char *)rt.main;
    if (o.target == TARGET_CUDA)
      args[n++] = arena_printf(ctx.arena, "%s/%s.cu.o", dir, name);
    if (o.target)
      args[n++] = (char *)(o.target == TARGET_CUDA ? rt.cuda_lib : rt.emu_lib);
    n = split_flags(ctx.arena, rt.libs_in, rt.libs, args, n);
    n = split_flags(ctx.arena, "", CAEC_LINK, args, n);
    if (o.target == TARGET_CUDA)
      n = split_flags(ctx.arena, "", CAEC_CUDA_LINK, args, n);
    args[n++] = "-o";
    args[n++] = (char *)o.out;
    args[n] = NULL;
    ok = run(args);
  }
  arena_free(ctx.arena);
  return ok ? 0 : 1;
}
