// cpu.h: the processor's model name, which keys caec tune's files (a winner on
// one CPU need not win on another).
#ifndef CAEC_CPU_H
#define CAEC_CPU_H

// /proc/cpuinfo's first "model name" (e.g. "AMD EPYC"), or "unknown CPU".
const char *cpu_model(void);

#endif
