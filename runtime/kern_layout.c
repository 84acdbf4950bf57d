// kern_layout.c: (being written)
#include "kern.h"
