// kern_conv.c: (being written)
#include "kern.h"
