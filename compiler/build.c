// build.c: `caec compile` (a model to C source) and `caec build` (to a trainer
// executable, by running the C compiler that built caec on that source, the
// runtime library and trainer_main.c).
#include "caec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// Set by CMake: how to compile and link a trainer against this build's runtime.
#ifndef CAEC_CC
#define CAEC_CC "cc"
#define CAEC_CFLAGS "-O3"
#define CAEC_RUNTIME_INCLUDE "."
#define CAEC_RUNTIME_LIB "libcaec_runtime.a"
#define CAEC_LINK "-lm"
#endif

typedef struct Options {
  const char *cae, *out;
  int batch, size;
  bool no_plan, dump_fusion, keep;
} Options;

static int usage_error(const char *cmd, const char *msg, const char *arg) {
  fprintf(stderr, "caec %s: error: ", cmd);
  fprintf(stderr, msg, arg);
  fprintf(stderr, " (see 'caec help %s')\n", cmd);
  return 2;
}

static bool parse_int(const char *s, int lo, int hi, int *v) {
  char *end;
  long x = strtol(s, &end, 10);
  if (!*s || *end || x < lo || x > hi)
    return false;
  *v = (int)x;
  return true;
}

static const char compile_help[] =
    "usage: caec compile [--batch B] [--size S] [--no-plan] [--dump-fusion] FILE.cae -o DIR\n\n"
    "Writes DIR/NAME.h (the model's interface: parameter table, arena sizes, entry\n"
    "points) and DIR/NAME.c (its fused kernels, the training step and the inference\n"
    "forward) for the runtime's kernels (runtime/kern.h) and trainer (runtime/trainer.h).\n\n"
    "  --batch B      the batch the shapes are compiled for (default: the train section's)\n"
    "  --size S       S x S input images instead of the declared height and width\n"
    "  --no-plan      give every buffer its own memory (for testing the memory plan)\n"
    "  --dump-fusion  list every kernel with the source ops it computes, and the memory plan\n";
static const char build_help[] =
    "usage: caec build [--batch B] [--size S] [--no-plan] FILE.cae -o EXE\n\n"
    "Compiles the model and links its trainer EXE (commands: init, step, info), with\n"
    "the C compiler and flags that built caec; the generated source stays in EXE.src/.\n"
    "Options as for caec compile.\n";

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
    } else if (!strcmp(a, "-o") || !strcmp(a, "--batch") || !strcmp(a, "--size")) {
      if (!value)
        return usage_error(cmd, "option '%s' needs a value", a);
      i++;
      if (!strcmp(a, "-o"))
        o->out = value;
      else if (!strcmp(a, "--batch") ? !parse_int(value, 1, 4096, &o->batch) : !parse_int(value, 1, MAX_DIM, &o->size))
        return usage_error(cmd, !strcmp(a, "--batch") ? "--batch must be an integer in [1, 4096], not '%s'"
                                                      : "--size must be an integer in [1, 65536], not '%s'",
                           value);
    } else if (a[0] == '-') {
      return usage_error(cmd, "unknown option '%s'", a);
    } else if (!o->cae) {
      o->cae = a;
    } else {
      return usage_error(cmd, "unexpected argument '%s' (one model at a time)", a);
    }
  }
  if (!o->cae)
    return usage_error(cmd, "%s", "needs a FILE.cae");
  if (!o->out)
    return usage_error(cmd, "%s", "needs -o");
  return -1;
}

// The command line as the provenance header records it: without -o, so that
// the same model and options give the same source wherever it is written.
static const char *command_line(Arena *a, const char *cmd, const Options *o) {
  const char *s = arena_printf(a, "caec %s %s", cmd, o->cae);
  if (o->batch)
    s = arena_printf(a, "%s --batch %d", s, o->batch);
  if (o->size)
    s = arena_printf(a, "%s --size %d", s, o->size);
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
  Step *s = build_step(c->arena, g, o->batch ? o->batch : g->batch ? g->batch : g->train.batch);
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
  bool ok = s && make_dir(&ctx, o.out) && emit_c(&ctx, s, o.out, command_line(ctx.arena, "compile", &o));
  if (ok && o.dump_fusion) {
    print_fusion(stdout, s);
    print_memory(stdout, s);
  }
  arena_free(ctx.arena);
  return ok ? 0 : 1;
}

// Runs argv; false after a message.
static bool run(Ctx *c, char *const *argv) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    execvp(argv[0], argv);
    fprintf(stderr, "caec: error: cannot run '%s': %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(c->err, "caec build: error: the C compiler '%s' failed on the generated source\n", argv[0]);
    return false;
  }
  return true;
}

// Splits a space-separated list of flags into argv entries.
static int split_flags(Arena *a, const char *flags, char **argv, int n) {
  char *copy = arena_strndup(a, flags, strlen(flags));
  for (char *tok = strtok(copy, " "); tok && n < 48; tok = strtok(NULL, " "))
    argv[n++] = tok;
  return n;
}

int cmd_build(int argc, char **argv) {
  Options o = {0};
  int rc = parse("build", argc, argv, &o);
  if (rc >= 0)
    return rc;
  Ctx ctx = {.arena = arena_new(), .err = stderr, .input_size = o.size};
  Step *s = lower(&ctx, &o);
  // The source goes next to the executable, in EXE.src/, and stays for the reader.
  const char *dir = arena_printf(ctx.arena, "%s.src", o.out);
  bool ok = s && make_dir(&ctx, dir) && emit_c(&ctx, s, dir, command_line(ctx.arena, "build", &o));
  if (ok) {
    char *args[64];
    int n = 0;
    args[n++] = CAEC_CC;
    n = split_flags(ctx.arena, CAEC_CFLAGS, args, n);
    args[n++] = arena_printf(ctx.arena, "-I%s", CAEC_RUNTIME_INCLUDE);
    args[n++] = arena_printf(ctx.arena, "%s/%s.c", dir, s->g->model_name);
    args[n++] = arena_printf(ctx.arena, "%s/trainer_main.c", CAEC_RUNTIME_INCLUDE);
    args[n++] = CAEC_RUNTIME_LIB;
    n = split_flags(ctx.arena, CAEC_LINK, args, n);
    args[n++] = "-o";
    args[n++] = (char *)o.out;
    args[n] = NULL;
    ok = run(&ctx, args);
  }
  arena_free(ctx.arena);
  return ok ? 0 : 1;
}
