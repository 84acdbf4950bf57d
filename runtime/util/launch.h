// launch.h: runs a program and waits for it, as caec build runs the C compiler
// and caec experiment the trainers.
#ifndef CAEC_LAUNCH_H
#define CAEC_LAUNCH_H

// Runs argv (NULL-terminated; argv[0] is looked up on PATH unless it holds a
// '/') and waits: its exit status, 128 + the signal that ended it, or -1 with
// errno set when it cannot start. Ctrl-C goes to the whole foreground group:
// the program gets it (a trainer saves its run and exits 130) while the caller
// ignores it, and goes on to see how the program ended.
int launch(char *const argv[]);

#endif
