// kern_loss.c: (being written)
#include "kern.h"
