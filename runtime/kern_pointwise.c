// kern_pointwise.c: (being written)
#include "kern.h"
