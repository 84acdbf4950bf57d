// kern_optim.c: (being written)
#include "kern.h"
