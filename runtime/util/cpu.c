// cpu.c: the processor's model name (Linux's /proc/cpuinfo).
#include "cpu.h"

#include <stdio.h>
#include <string.h>

const char *cpu_model(void) {
  static char name[128];
  if (name[0])
    return name;
  snprintf(name, sizeof name, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    const char *colon = strchr(line, ':');
    if (strncmp(line, "model name", 10) || !colon)
      continue;
    colon += strspn(colon + 1, " \t") + 1;
    snprintf(name, sizeof name, "%.*s", (int)strcspn(colon, "\n"), colon);
    break;
  }
  if (f)
    fclose(f);
  return name;
}
