// emu_test.c: the CUDA emulator (runtime/cuda/cu_emu.c) runs kernels with CUDA's
// semantics: every thread of every block once, with its indices; barriers that
// hold every thread of a block; shared memory private to each block while
// blocks run in parallel (1 and 2 OpenMP threads agree); and a clear abort for
// a divergent barrier or a bad launch, checked in a child process (this
// program run again with the case's name); host threads that launch kernels
// and exit. It also prints what a thread costs with and without barriers.
#include "cu.h"
#include "testutil.h"

#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

// The kernels take their arguments from globals; they ignore the arenas.
static const CuArenas no_arenas;

static void launch(CuKernelFn *fn, const char *name, unsigned gx, unsigned gy, unsigned gz, unsigned threads) {
  unsigned grid[3] = {gx, gy, gz};
  cu_emu_launch(fn, name, grid, threads, no_arenas);
}

static int64_t block_index(void) { return ((int64_t)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x; }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// ---- every thread once, with its indices ----

static unsigned want_grid[3], want_threads;
static unsigned char *hits; // per thread of the launch
static int misplaced;       // threads that saw wrong dimensions or indices

CU_KERNEL(count_threads) {
  (void)A;
  bool dims = gridDim.x == want_grid[0] && gridDim.y == want_grid[1] && gridDim.z == want_grid[2] &&
              blockDim.x == want_threads && blockDim.y == 1 && blockDim.z == 1;
  bool inside = blockIdx.x < gridDim.x && blockIdx.y < gridDim.y && blockIdx.z < gridDim.z &&
                threadIdx.x < blockDim.x && threadIdx.y == 0 && threadIdx.z == 0;
  if (!dims || !inside)
    __atomic_fetch_add(&misplaced, 1, __ATOMIC_RELAXED);
  else
    hits[block_index() * blockDim.x + threadIdx.x]++;
}

static void test_indices(void) {
  static const unsigned shapes[][4] = {{3, 4, 5, 7},     {1, 1, 1, 1},     {2, 3, 2, 1024}, {70000, 1, 1, 32},
                                       {1, 65535, 1, 1}, {2, 1, 65535, 2}, {5, 1, 1, 256}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const unsigned *g = shapes[s];
    memcpy(want_grid, g, sizeof want_grid);
    want_threads = g[3];
    size_t n = (size_t)g[0] * g[1] * g[2] * g[3];
    hits = calloc(n, 1);
    misplaced = 0;
    launch(count_threads, "count_threads", g[0], g[1], g[2], g[3]);
    size_t once = 0;
    for (size_t i = 0; i < n; i++)
      once += hits[i] == 1;
    CHECK(once == n && misplaced == 0, "grid (%u,%u,%u) of %u threads: %zu of %zu threads ran once, %d misplaced", g[0],
          g[1], g[2], g[3], once, n, misplaced);
    free(hits);
  }
}

// ---- a tree reduction in shared memory ----

static const int *sum_in;
static long long *sum_out;

CU_KERNEL(block_sum) {
  (void)A;
  CU_SHARED long long part[1024];
  unsigned t = threadIdx.x, n = blockDim.x;
  part[t] = sum_in[block_index() * n + t];
  CU_SYNC();
  for (unsigned s = 1; s < n; s *= 2) { // part[t + s] is not written in this round
    if (t % (2 * s) == 0 && t + s < n)
      part[t] += part[t + s];
    CU_SYNC();
  }
  if (t == 0)
    sum_out[block_index()] = part[0];
}

static void test_reduction(void) {
  static const unsigned shapes[][4] = {{64, 1, 1, 256}, {2, 2, 2, 1024}, {3, 1, 1, 1000}, {2, 3, 2, 37}, {5, 1, 1, 1}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const unsigned *g = shapes[s];
    size_t blocks = (size_t)g[0] * g[1] * g[2], n = blocks * g[3];
    int *in = malloc(n * sizeof *in);
    long long *want = calloc(blocks, sizeof *want), *got[2];
    for (size_t i = 0; i < n; i++) {
      in[i] = (int)((i * 2654435761u) % 2000001) - 1000000;
      want[i / g[3]] += in[i];
    }
    sum_in = in;
    for (int threads = 1; threads <= 2; threads++) {
      omp_set_num_threads(threads);
      sum_out = got[threads - 1] = calloc(blocks, sizeof *want);
      launch(block_sum, "block_sum", g[0], g[1], g[2], g[3]);
      CHECK(!memcmp(sum_out, want, blocks * sizeof *want), "block sums of grid (%u,%u,%u) of %u threads, %d threads",
            g[0], g[1], g[2], g[3], threads);
    }
    for (int i = 0; i < 2; i++)
      free(got[i]);
    free(want);
    free(in);
  }
}

// ---- many barriers in a loop ----

static unsigned ring_rounds;
static unsigned *ring_out;

// Each round, every thread takes the value of the next thread around the ring.
CU_KERNEL(ring) {
  (void)A;
  CU_SHARED unsigned slot[1024];
  unsigned t = threadIdx.x, n = blockDim.x, x = t + 1000 * blockIdx.x;
  for (unsigned r = 0; r < ring_rounds; r++) {
    slot[t] = x;
    CU_SYNC();
    x = slot[(t + 1) % n] * 3 + r;
    CU_SYNC();
  }
  ring_out[blockIdx.x * n + t] = x;
}

// Runs ring on `blocks` blocks of n threads and compares with the same on the host; the seconds it took.
static double check_ring(unsigned blocks, unsigned n, unsigned rounds) {
  unsigned *want = malloc((size_t)blocks * n * sizeof *want), *next = malloc(n * sizeof *next);
  for (unsigned b = 0; b < blocks; b++) {
    unsigned *x = want + (size_t)b * n;
    for (unsigned t = 0; t < n; t++)
      x[t] = t + 1000 * b;
    for (unsigned r = 0; r < rounds; r++) {
      for (unsigned t = 0; t < n; t++)
        next[t] = x[(t + 1) % n] * 3 + r;
      memcpy(x, next, n * sizeof *x);
    }
  }
  ring_rounds = rounds;
  ring_out = calloc((size_t)blocks * n, sizeof *ring_out);
  double t0 = now();
  launch(ring, "ring", blocks, 1, 1, n);
  double seconds = now() - t0;
  CHECK(!memcmp(ring_out, want, (size_t)blocks * n * sizeof *want), "ring of %u blocks of %u threads, %u rounds",
        blocks, n, rounds);
  free(ring_out);
  free(next);
  free(want);
  return seconds;
}

static void test_barrier_loops(void) {
  omp_set_num_threads(2);
  check_ring(4, 1024, 50);
  check_ring(7, 3, 1000);
  check_ring(3, 1, 100);
  check_ring(2, 2, 1);
}

// ---- a host thread that launches and exits (its stacks are unmapped) ----

static void *launch_and_exit(void *unused) {
  (void)unused;
  check_ring(3, 64, 10);
  return NULL;
}

static void test_thread_exit(void) {
  for (int i = 0; i < 2; i++) {
    pthread_t thread;
    CHECK(!pthread_create(&thread, NULL, launch_and_exit, NULL) && !pthread_join(thread, NULL), "thread %d", i);
  }
}

// ---- a kernel's stack ----

static int deep(int depth) {
  volatile char frame[1024]; // keeps 1 KiB per call on the stack (a variable index keeps all of it)
  frame[depth % 1024] = 1;
  return depth ? deep(depth - 1) + frame[depth % 1024] : 0;
}

static int deep_depth, deep_wrong;

CU_KERNEL(recurse) {
  (void)A;
  int want = deep_depth;
  CU_SYNC();
  if (deep(deep_depth) != want)
    __atomic_fetch_add(&deep_wrong, 1, __ATOMIC_RELAXED);
  CU_SYNC();
}

static void test_stack(void) {
  deep_depth = 24; // 24 KiB and more, on each of 64 suspended stacks
  deep_wrong = 0;
  launch(recurse, "recurse", 4, 1, 1, 64);
  CHECK(deep_wrong == 0, "%d threads of deep recursion went wrong", deep_wrong);
}

// ---- what it costs ----

static float *touched;

CU_KERNEL(touch) {
  (void)A;
  touched[block_index() * blockDim.x + threadIdx.x] = 1;
}

static void measure(void) {
  omp_set_num_threads(1);
  unsigned blocks = 4096, n = 256, rounds = 2000;
  touched = calloc((size_t)blocks * n, sizeof *touched);
  launch(touch, "touch", blocks, 1, 1, n);
  double t0 = now();
  launch(touch, "touch", blocks, 1, 1, n);
  double plain = now() - t0;
  free(touched);
  double ring = check_ring(1, n, rounds);
  printf("one host thread: %.1f ns per thread of a kernel without barriers, %.1f ns per thread per barrier\n",
         1e9 * plain / ((double)blocks * n), 1e9 * ring / ((double)n * rounds * 2));
}

// ---- what aborts: the cases run in a child process ----

CU_KERNEL(diverge_early) {
  (void)A;
  if (blockIdx.x == 1 && blockIdx.y == 2 && threadIdx.x >= 5)
    return;
  CU_SYNC();
}

CU_KERNEL(diverge_late) {
  (void)A;
  CU_SYNC();
  if (threadIdx.x == 0)
    return;
  CU_SYNC();
}

CU_KERNEL(launch_inside) {
  (void)A;
  launch(touch, "touch", 1, 1, 1, 1);
}

static const struct {
  const char *name, *message; // message: what stderr must hold
  int status;                 // exit status, 128 + signal
} cases[] = {
    {"diverge_early",
     "cu_emu: kernel diverge_early: block (1,2,0): divergent __syncthreads: 3 of 8 threads returned while others "
     "wait at a barrier\n",
     128 + SIGABRT},
    {"diverge_late",
     "cu_emu: kernel diverge_late: block (0,0,0): divergent __syncthreads: 1 of 4 threads returned while others "
     "wait at a barrier\n",
     128 + SIGABRT},
    {"threads_0", "cu_emu: kernel touch: 0 threads per block (must be 1 to 1024)\n", 128 + SIGABRT},
    {"threads_1025", "cu_emu: kernel touch: 1025 threads per block (must be 1 to 1024)\n", 128 + SIGABRT},
    {"grid_x_0", "cu_emu: kernel touch: grid (0,1,1) (x must be 1 to 2147483647, y and z 1 to 65535)\n", 128 + SIGABRT},
    {"grid_y_65536", "cu_emu: kernel touch: grid (1,65536,1) (x must be 1 to 2147483647, y and z 1 to 65535)\n",
     128 + SIGABRT},
    {"grid_z_0", "cu_emu: kernel touch: grid (1,1,0) (x must be 1 to 2147483647, y and z 1 to 65535)\n", 128 + SIGABRT},
    {"sync_outside", "cu_emu: __syncthreads outside a kernel launch\n", 128 + SIGABRT},
    {"nested", "cu_emu: kernel touch launched from kernel launch_inside\n", 128 + SIGABRT},
    {"overflow", NULL, 0}, // a crash: SIGSEGV, or AddressSanitizer's report
};

static void run_case(const char *name) {
  omp_set_num_threads(2);
  if (!strcmp(name, "diverge_early"))
    launch(diverge_early, "diverge_early", 2, 3, 1, 8);
  else if (!strcmp(name, "diverge_late"))
    launch(diverge_late, "diverge_late", 1, 1, 1, 4);
  else if (!strcmp(name, "threads_0"))
    launch(touch, "touch", 1, 1, 1, 0);
  else if (!strcmp(name, "threads_1025"))
    launch(touch, "touch", 1, 1, 1, 1025);
  else if (!strcmp(name, "grid_x_0"))
    launch(touch, "touch", 0, 1, 1, 1);
  else if (!strcmp(name, "grid_y_65536"))
    launch(touch, "touch", 1, 65536, 1, 1);
  else if (!strcmp(name, "grid_z_0"))
    launch(touch, "touch", 1, 1, 0, 1);
  else if (!strcmp(name, "sync_outside"))
    cu_emu_sync();
  else if (!strcmp(name, "nested"))
    launch(launch_inside, "launch_inside", 1, 1, 1, 1);
  else if (!strcmp(name, "overflow")) {
    deep_depth = 2048; // 2 MiB: past the guard page of any stack
    launch(recurse, "recurse", 1, 1, 1, 2);
  }
  printf("%s: survived\n", name);
}

static void test_aborts(void) {
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *argv[] = {"emu_test", (char *)cases[i].name, NULL};
    int status = exit_status(spawn("/proc/self/exe", argv, "out.txt"));
    const char *out = output();
    if (cases[i].message)
      CHECK(status == cases[i].status && strstr(out, cases[i].message), "%s: exit status %d, output:\n%s",
            cases[i].name, status, out);
    else
      CHECK(status != 0 && status != 125 && status != 126 && !strstr(out, "survived"),
            "%s: exit status %d, output:\n%s", cases[i].name, status, out);
  }
}

int main(int argc, char **argv) {
  if (argc == 2) {
    run_case(argv[1]);
    return 0;
  }
  make_dir("emu_test");
  test_indices();
  test_reduction();
  test_barrier_loops();
  test_thread_exit();
  test_stack();
  test_aborts();
  measure();
  return finish();
}
