// main.c: the `caec` command line.
#include "caec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CAEC_GIT
#define CAEC_GIT "unknown"
#endif

typedef struct Command {
  const char *name, *args, *summary, *help;
  int (*run)(int argc, char **argv);
} Command;

static int cmd_check(int argc, char **argv);
static int cmd_ir(int argc, char **argv);
static int cmd_graph(int argc, char **argv);
static int cmd_help(int argc, char **argv);
int cmd_compile(int argc, char **argv); // build.c
int cmd_build(int argc, char **argv);   // build.c

static const Command commands[] = {
    {"check", "[--werror] [-q] [--size S] FILE.cae...", "parse and shape-check models; print their layer tables",
     "Parses each model, expands its blocks, infers and checks every shape, and prints\n"
     "a table of its layers (name, op, output shape, parameters, forward MFLOP per image,\n"
     "L2 flag) and the line\n"
     "  params: TOTAL (trainable T, non-trainable N)\n"
     "Non-trainable parameters are the batch-norm running statistics.\n"
     "For models that reconstruct 1-channel images, it then prints the training step's\n"
     "memory plan at the train section's batch: the bytes of each arena, the most bytes\n"
     "live at once (a lower bound) and their ratio.\n\n"
     "  --werror   treat warnings as errors\n"
     "  -q         print only the params line of each model\n"
     "  --size S   give the input S x S pixels instead of the declared height and width\n",
     cmd_check},
    {"ir", "[--json] [--size S] FILE.cae", "print the typed SSA layer graph",
     "Prints the elaborated graph: one line per layer with its inputs, attributes\n"
     "(padding resolved to explicit before/after values), output shape, source line\n"
     "and FLOPs, followed by its parameters, and the train settings in effect.\n\n"
     "  --json     the layers and parameters as JSON, for tools outside C\n"
     "  --size S   give the input S x S pixels instead of the declared height and width\n",
     cmd_ir},
    {"graph", "[--size S] FILE.cae", "print the layer graph in Graphviz DOT",
     "Writes the layer graph as Graphviz DOT to standard output, e.g.\n"
     "  caec graph models/res_unet.cae | dot -Tsvg > res_unet.svg\n",
     cmd_graph},
    {"compile", NULL, "emit a model's trainer as C or CUDA source", NULL, cmd_compile}, // these have their own help
    {"build", NULL, "compile a model into a trainer executable", NULL, cmd_build},
    // tools of their own (compiler/tools/; caec-tune is bench's kernels program), so that caec links
    // neither the kernels nor libpng and GSL
    {"interp", NULL, "run a model on the reference interpreter", NULL, NULL},
    {"compare", NULL, "paired t-tests between two evaluated runs", NULL, NULL},
    {"experiment", NULL, "train, evaluate and compare the seed's configurations", NULL, NULL},
    {"tune", NULL, "time each convolution's algorithms on this machine, for build --tuning", NULL, NULL},
    {"help", "[COMMAND]", "show help for a command", "Shows the help of COMMAND, or the overview.\n", cmd_help},
};
enum { NCOMMANDS = sizeof commands / sizeof *commands };

static void usage(FILE *out) {
  fprintf(out,
          "caec %s: a compiler for convolutional autoencoders of brain MRI\n\n"
          "usage: caec COMMAND [OPTIONS] [FILE...]\n\ncommands:\n",
          CAEC_VERSION);
  for (int i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\noptions:\n  -h, --help     show this help (or COMMAND --help)\n"
               "  -V, --version  show the version\n\n"
               "The language is described in README.md.\n");
}

// Runs the tool caec-NAME from this executable's folder (the build tree's, or
// the installation's bin/) in caec's place, with argv[1..].
static int run_tool(const char *name, char **argv) {
  char dir[CAEC_PATH_BYTES], path[CAEC_PATH_BYTES + 64];
  if (!exe_dir(dir, sizeof dir))
    return fail(NULL, "cannot find caec's own folder, where caec-%s is", name);
  snprintf(path, sizeof path, "%s/caec-%s", dir, name);
  argv[0] = path;
  execv(path, argv);
  return fail(NULL, "cannot run %s: %s (caec's tools are installed beside it)", path, strerror(errno));
}

static int run_command(const Command *c, int argc, char **argv) {
  return c->run ? c->run(argc, argv) : run_tool(c->name, argv);
}

static void command_help(FILE *out, const Command *c) {
  if (!c->help) {
    char *argv[] = {(char *)c->name, "--help", NULL};
    run_command(c, 2, argv);
    return;
  }
  fprintf(out, "usage: caec %s %s\n\n%s", c->name, c->args, c->help);
}

// Splits argv into option flags (checked against `allowed`), files, and
// `--size S`, which every command takes: the input's height and width.
static int parse_args(const Command *c, int argc, char **argv, const char *allowed, int *nfiles, char ***files,
                      bool *flags, int *size) {
  *files = argv;
  *nfiles = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      command_help(stdout, c);
      return 0;
    }
    if (!strcmp(a, "--size")) {
      char *end = NULL;
      long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
      if (!end || *end || v < 1 || v > MAX_DIM)
        return usage_error(c->name, "--size needs an integer in [1, %d]", MAX_DIM);
      *size = (int)v;
      i++;
      continue;
    }
    if (a[0] == '-' && a[1]) {
      int index = 0;
      const char *p = allowed;
      for (size_t len; *p; p += len + (p[len] == ' '), index++) {
        len = strcspn(p, " ");
        if (len == strlen(a) && !strncmp(p, a, len))
          break;
      }
      if (!*p)
        return usage_error(c->name, "unknown option '%s'", a);
      flags[index] = true;
      continue;
    }
    (*files)[(*nfiles)++] = argv[i];
  }
  if (*nfiles == 0)
    return usage_error(c->name, "no input file");
  return -1;
}

static int finish(Ctx *ctx, bool ok) {
  arena_free(ctx->arena);
  return ok ? 0 : 1;
}

static int cmd_check(int argc, char **argv) {
  bool flags[2] = {0};
  int nfiles, size = 0;
  char **files;
  int rc = parse_args(&commands[0], argc, argv, "--werror -q", &nfiles, &files, flags, &size);
  if (rc >= 0)
    return rc;
  bool ok = true;
  for (int i = 0; i < nfiles; i++) {
    Ctx ctx = {.arena = arena_new(), .err = stderr, .werror = flags[0], .input_size = size};
    Graph *g = compile_file(&ctx, files[i]);
    if (g && flags[1]) {
      Totals t = graph_totals(g);
      char tot[32], tr[32], nt[32];
      printf("%s: params: %s (trainable %s, non-trainable %s)\n", files[i], with_commas(tot, t.params),
             with_commas(tr, t.trainable), with_commas(nt, t.nontrainable));
    } else if (g) {
      if (i)
        putchar('\n');
      print_table(stdout, ctx.arena, g);
      if (reconstructs(g) && g->nnodes <= MAX_CODEGEN_NODES) {
        Step *s = build_step(ctx.arena, g, g->batch ? g->batch : g->train.batch, false, NULL);
        plan_memory(s, true);
        print_memory(stdout, s);
      }
    }
    ok = finish(&ctx, g != NULL) == 0 && ok;
  }
  return ok ? 0 : 1;
}

typedef void Printer(FILE *, Arena *, const Graph *);

// `ir` and `graph`: one file, printed one way, or the other with --json.
static int single_file(int which, int argc, char **argv, Printer *print, Printer *json) {
  bool flags[1] = {0};
  int nfiles, size = 0;
  char **files;
  int rc = parse_args(&commands[which], argc, argv, json ? "--json" : "", &nfiles, &files, flags, &size);
  if (rc >= 0)
    return rc;
  if (nfiles > 1)
    return usage_error(commands[which].name, "one file at a time");
  Ctx ctx = {.arena = arena_new(), .err = stderr, .input_size = size};
  Graph *g = compile_file(&ctx, files[0]);
  if (g)
    (flags[0] ? json : print)(stdout, ctx.arena, g);
  return finish(&ctx, g != NULL);
}

static int cmd_ir(int argc, char **argv) { return single_file(1, argc, argv, print_ir, print_json); }
static int cmd_graph(int argc, char **argv) { return single_file(2, argc, argv, print_dot, NULL); }

static int cmd_help(int argc, char **argv) {
  if (argc < 2) {
    usage(stdout);
    return 0;
  }
  for (int i = 0; i < NCOMMANDS; i++)
    if (!strcmp(argv[1], commands[i].name)) {
      command_help(stdout, &commands[i]);
      return 0;
    }
  return usage_error(NULL, "unknown command '%s'", argv[1]);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
    printf("caec %s (%s)\n", CAEC_VERSION, CAEC_GIT);
    return 0;
  }
  for (int i = 0; i < NCOMMANDS; i++)
    if (!strcmp(cmd, commands[i].name))
      return run_command(&commands[i], argc - 1, argv + 1);
  return usage_error(NULL, cmd[0] == '-' ? "unknown option '%s'" : "unknown command '%s'", cmd);
}
