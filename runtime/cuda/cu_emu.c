// cu_emu.c: the CUDA emulator (cu.h): runs the CUDA back end's kernels as host
// C, with CUDA's semantics for grids, blocks, threads and __syncthreads.
//
// Blocks are shared out over OpenMP threads. A block's threads are coroutines
// on one host thread, each on a stack of its own while it waits at a barrier:
//   - Threads start in index order, and each runs until it returns or reaches a
//     barrier. One that returns leaves its stack to the next thread to start,
//     so a kernel without barriers runs all of a block's threads one after
//     another on one stack, a function call each. One that reaches a barrier
//     is suspended there, and the next thread starts on a fresh stack.
//   - Suspended threads queue in the order they reached the barrier. When no
//     thread is left to run (every one has reached the barrier or returned),
//     the queued ones resume in that order, each up to its next barrier, where
//     it queues again; and so on until all have returned.
// A switch from one thread to the next is one call of a few instructions on
// x86-64 (caec_emu_swap), and glibc's swapcontext elsewhere. Each host thread
// keeps its stacks from launch to launch: 64 KiB each (256 KiB under
// AddressSanitizer), above a guard page.
#include "cu.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

// AddressSanitizer must be told about every switch of stacks, or it takes the
// frames of one stack for overflows of another.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#endif
#if defined(EMU_ASAN)
#include <sanitizer/common_interface_defs.h>
enum { STACK_BYTES = 256 << 10 }; // instrumented frames are several times larger
// A stack is given up for good (its threads have returned) inside run and
// jump, whose frames are so never left: their redzones would stay poisoned, to
// be taken for overflows by the next contexts on that stack. They have none.
#define NO_REDZONES __attribute__((no_sanitize_address))
#else
enum { STACK_BYTES = 64 << 10 };
#define NO_REDZONES
#endif

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  abort();
}

_Thread_local CuDim3 cu_emu_thread_idx, cu_emu_block_idx, cu_emu_block_dim, cu_emu_grid_dim;

// A suspended context: one of a block's threads, on one of the pool's stacks,
// or the host thread that runs the block; and its stack's lowest address and
// size (where a new context starts, and the bounds ASan is told).
typedef struct Ctx {
#if defined(__x86_64__)
  void *sp; // where caec_emu_swap pushed its registers
#else
  ucontext_t uc;
#endif
  const void *bottom;
  size_t size;
} Ctx;

#if defined(__x86_64__)
// caec_emu_swap(save, load): pushes the callee-saved registers and the SSE and
// x87 control words (the state a function call must preserve), stores the
// stack pointer in *save, and pops the same from the stack at load, returning
// to the context saved there. No system call, unlike swapcontext's sigprocmask.
__attribute__((visibility("hidden"))) void caec_emu_swap(void **save, void *load);
__asm__(".text\n"
        ".globl caec_emu_swap\n"
        ".hidden caec_emu_swap\n"
        ".type caec_emu_swap, @function\n"
        ".p2align 4\n"
        "caec_emu_swap:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  subq $8, %rsp\n"
        "  stmxcsr (%rsp)\n"
        "  fnstcw 4(%rsp)\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  ldmxcsr (%rsp)\n"
        "  fldcw 4(%rsp)\n"
        "  addq $8, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size caec_emu_swap, .-caec_emu_swap\n");

// Makes c start entry at the top of its stack: the frame that caec_emu_swap
// pops (zero registers, this thread's control words), whose return address is
// entry's first instruction, above a null return address for entry that ends
// backtraces. The stack's top is 16-byte aligned, so entry finds the stack
// pointer 8 below a multiple of 16, as after a call.
static void ctx_start(Ctx *c, void (*entry)(void)) {
  void **top = (void **)((char *)c->bottom + c->size);
  struct {
    uint32_t mxcsr;
    uint16_t x87, pad;
  } ctrl = {0};
  __asm__("stmxcsr %0\n\tfnstcw %1" : "=m"(ctrl.mxcsr), "=m"(ctrl.x87));
  memset(top - 9, 0, 9 * sizeof *top);
  memcpy(top - 9, &ctrl, sizeof ctrl);
  top[-2] = (void *)(uintptr_t)entry;
  c->sp = top - 9;
}

static void ctx_swap(Ctx *save, Ctx *load) { caec_emu_swap(&save->sp, load->sp); }
#else
// The same with glibc's ucontext (a system call per switch).
static void ctx_start(Ctx *c, void (*entry)(void)) {
  if (getcontext(&c->uc)) {
    perror("cu_emu: getcontext");
    abort();
  }
  c->uc.uc_stack.ss_sp = (void *)c->bottom;
  c->uc.uc_stack.ss_size = c->size;
  c->uc.uc_link = NULL;
  makecontext(&c->uc, entry, 0);
}

static void ctx_swap(Ctx *save, Ctx *load) { swapcontext(&save->uc, &load->uc); }
#endif

// A host thread's stacks, kept from launch to launch and grown when a launch
// has more threads per block than any before. One mapping holds the contexts,
// the barrier's queue and the stacks, each above a guard page, so that a
// thread overflowing its stack crashes instead of overwriting another's.
typedef struct Pool {
  char *map;
  size_t map_bytes;
  unsigned cap;    // stacks
  Ctx *stack;      // [cap] the context suspended on each stack
  unsigned *queue; // [cap] stacks queued at a barrier (Block says which)
  Ctx host;        // the host thread, while it runs a block
} Pool;

static _Thread_local Pool pool;

// The block a host thread is running.
typedef struct Block {
  CuKernelFn *fn;
  CuArenas A;
  const char *name;
  unsigned n;        // threads
  unsigned started;  // threads started, in index order
  unsigned returned; // threads that have returned
  unsigned stacks;   // stacks used
  unsigned running;  // the stack of the running thread
  // The stacks that reached the current barrier are queue[pos, len), still to
  // resume; those that have reached the next barrier since are queue[0, arrived),
  // which never overtakes pos (a thread queues only after it has resumed).
  unsigned pos, len, arrived;
} Block;

static _Thread_local Block *current;

// Suspends the running context into save (NULL: it has ended for good) and
// resumes load.
NO_REDZONES static void jump(Ctx *save, Ctx *load) {
  Ctx ended; // what an ended context saves, never resumed
#if defined(EMU_ASAN)
  void *fake_stack = NULL;
  __sanitizer_start_switch_fiber(save ? &fake_stack : NULL, load->bottom, load->size);
#endif
  ctx_swap(save ? save : &ended, load);
#if defined(EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
#endif
}

NO_REDZONES static void run(void);

static void divergent(const Block *b) {
  die("cu_emu: kernel %s: block (%u,%u,%u): divergent __syncthreads: %u of %u threads returned while others wait at "
      "a barrier\n",
      b->name, cu_emu_block_idx.x, cu_emu_block_idx.y, cu_emu_block_idx.z, b->returned, b->n);
}

// The context to resume when the running thread stops (it has reached a
// barrier, or it has returned and none is left to start on its stack): a new
// stack for the next thread to start; else the next thread queued at the
// barrier; else, when every thread has reached the barrier or returned, the
// first to reach it, or the host thread when all have returned.
static Ctx *next(Block *b) {
  unsigned k;
  if (b->started < b->n) {
    k = b->stacks++;
    ctx_start(&pool.stack[k], run);
  } else {
    if (b->pos == b->len) {
      if (b->arrived && b->returned)
        divergent(b);
      if (!b->arrived)
        return &pool.host;
      b->len = b->arrived;
      b->pos = b->arrived = 0;
    }
    k = pool.queue[b->pos++];
  }
  b->running = k;
  return &pool.stack[k];
}

// A new stack's first and only function: starts threads until one stays
// suspended at a barrier on it (then it goes on only when that thread
// resumes), and leaves the stack for good when no thread is left to start.
NO_REDZONES static void run(void) {
  Block *b = current;
#if defined(EMU_ASAN)
  const void *bottom;
  size_t size;
  __sanitizer_finish_switch_fiber(NULL, &bottom, &size);
  if (b->running == 0) { // the host thread starts a block on stack 0: these are its bounds
    pool.host.bottom = bottom;
    pool.host.size = size;
  }
#endif
  while (b->started < b->n) {
    cu_emu_thread_idx.x = b->started++;
    b->fn(b->A);
    b->returned++;
  }
  jump(NULL, next(b));
}

void cu_emu_sync(void) {
  Block *b = current;
  if (!b)
    die("cu_emu: __syncthreads outside a kernel launch\n");
  unsigned thread = cu_emu_thread_idx.x, k = b->running;
  pool.queue[b->arrived++] = k;
  Ctx *to = next(b);
  if (to != &pool.stack[k]) // a block of one thread passes its barriers at once
    jump(&pool.stack[k], to);
  cu_emu_thread_idx.x = thread; // the threads run since have set their own
}

// Unmaps an exiting thread's stacks (a destructor of thread-specific data,
// which runs in the exiting thread and so finds its pool).
static void pool_free(void *map) {
  munmap(map, pool.map_bytes);
  pool = (Pool){0};
}

static pthread_key_t pool_key;
static void pool_key_create(void) {
  if (pthread_key_create(&pool_key, pool_free))
    die("cu_emu: pthread_key_create failed\n");
}

// Makes room for blocks of n threads.
static void pool_reserve(unsigned n) {
  if (n <= pool.cap)
    return;
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, pool_key_create);
  if (pool.map)
    munmap(pool.map, pool.map_bytes);
  size_t page = (size_t)sysconf(_SC_PAGESIZE), slot = page + STACK_BYTES;
  size_t meta = ((size_t)n * (sizeof(Ctx) + sizeof(unsigned)) + page - 1) / page * page;
  size_t bytes = meta + n * slot;
  char *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (map == MAP_FAILED)
    die("cu_emu: cannot map %zu bytes for the stacks of %u threads: %s\n", bytes, n, strerror(errno));
  pool.map = map;
  pool.map_bytes = bytes;
  pool.cap = n;
  pool.stack = (Ctx *)map;
  pool.queue = (unsigned *)(pool.stack + n);
  for (unsigned k = 0; k < n; k++) {
    char *guard = map + meta + k * slot;
    if (mprotect(guard, page, PROT_NONE))
      die("cu_emu: cannot protect a stack's guard page: %s\n", strerror(errno));
    pool.stack[k].bottom = guard + page;
    pool.stack[k].size = STACK_BYTES;
  }
  pthread_setspecific(pool_key, map);
}

void cu_emu_launch(CuKernelFn *fn, const char *name, const unsigned grid[3], unsigned threads, CuArenas A) {
  if (threads < 1 || threads > 1024)
    die("cu_emu: kernel %s: %u threads per block (must be 1 to 1024)\n", name, threads);
  if (grid[0] < 1 || grid[0] > CU_MAX_GRID_X || grid[1] < 1 || grid[1] > CU_MAX_GRID_YZ || grid[2] < 1 ||
      grid[2] > CU_MAX_GRID_YZ)
    die("cu_emu: kernel %s: grid (%u,%u,%u) (x must be 1 to %d, y and z 1 to %d)\n", name, grid[0], grid[1], grid[2],
        CU_MAX_GRID_X, CU_MAX_GRID_YZ);
  if (current) // it would reuse the stacks of the running kernel
    die("cu_emu: kernel %s launched from kernel %s\n", name, current->name);
  int64_t blocks = (int64_t)grid[0] * grid[1] * grid[2];
#pragma omp parallel if (blocks > 1)
  {
    Block b = {.fn = fn, .A = A, .name = name, .n = threads};
    pool_reserve(threads);
    cu_emu_grid_dim = (CuDim3){grid[0], grid[1], grid[2]};
    cu_emu_block_dim = (CuDim3){threads, 1, 1};
    cu_emu_thread_idx = (CuDim3){0, 0, 0};
    current = &b;
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < blocks; i++) {
      cu_emu_block_idx =
          (CuDim3){(unsigned)(i % grid[0]), (unsigned)(i / grid[0] % grid[1]), (unsigned)(i / grid[0] / grid[1])};
      b.started = b.returned = b.stacks = b.pos = b.len = b.arrived = 0;
      jump(&pool.host, next(&b));
    }
    current = NULL;
  }
}
