// launch.c: runs a program and waits for it (see launch.h).
#include "launch.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

extern char **environ;

int launch(char *const argv[]) {
  fflush(NULL); // the caller's output comes before the program's
  posix_spawnattr_t attr;
  sigset_t sigint;
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigdefault(&attr, &sigint);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  void (*old)(int) = signal(SIGINT, SIG_IGN);
  pid_t pid;
  int err = posix_spawnp(&pid, argv[0], NULL, &attr, argv, environ), status = 0;
  while (!err && waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      err = errno;
  signal(SIGINT, old);
  posix_spawnattr_destroy(&attr);
  if (err) {
    errno = err;
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
