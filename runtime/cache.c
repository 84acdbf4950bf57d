// cache.c: (being written)
#include <stddef.h>
