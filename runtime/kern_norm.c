// kern_norm.c: (being written)
#include "kern.h"
